package protocol

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testNow is the receive time of every test frame: 2025-11-23T12:53:20Z.
var testNow = time.UnixMilli(1763900000000)

// counterIDs returns a newID function giving n-1, n-2, ...
func counterIDs() func() string {
	n := 0
	return func() string {
		n++
		return "n-" + strconv.Itoa(n)
	}
}

// summary renders a Parsed compactly for comparison: items as
// "id|type|ts|data", errors as "id|code", results as "id|ok|data|error".
type summary struct {
	items, errs, results []string
	pings                int
}

func summarize(p Parsed) summary {
	var s summary
	for _, it := range p.Items {
		s.items = append(s.items, fmt.Sprintf("%s|%s|%d|%s", it.ID, it.Type, it.TS, it.Data))
	}
	for _, e := range p.Errors {
		s.errs = append(s.errs, e.ID+"|"+e.Code)
	}
	for _, r := range p.Results {
		s.results = append(s.results, fmt.Sprintf("%s|%t|%s|%s", r.ID, r.OK, r.Data, r.Error))
	}
	s.pings = p.Pings
	return s
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

const (
	nowMS  = "1763900000000"
	loc1   = `{"lat":31.2304,"lng":121.4737}`
	locAll = `{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8}`
)

func TestParse(t *testing.T) {
	long := strings.Repeat("x", 65)
	deep := strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200)
	tooDeep := strings.Repeat("[", 20000) + strings.Repeat("]", 20000)
	var big strings.Builder
	big.WriteString(`{"type":"batch","items":[`)
	for i := range 501 {
		if i > 0 {
			big.WriteByte(',')
		}
		big.WriteString(`{"type":"ping"}`)
	}
	big.WriteString(`]}`)

	tests := []struct {
		name    string
		limits  Limits
		in      string
		items   []string
		errs    []string
		msg     string // substring of the first error's message
		pings   int
		results []string
	}{
		// Accepted frames.
		{name: "contract location",
			in:    `{"type":"location","id":"m-17","ts":1763900000000,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8,"crs":"wgs84"}}`,
			items: []string{"m-17|location|" + nowMS + "|" + locAll}},
		{name: "contract log",
			in:    `{"type":"log","id":"m-18","ts":1763900000123,"data":{"level":"warn","message":"door 2 opened","fields":{"door":2}}}`,
			items: []string{`m-18|log|1763900000123|{"level":"warn","message":"door 2 opened","fields":{"door":2}}`}},
		{name: "no id no ts", in: `{"type":"location","data":` + loc1 + `}`,
			items: []string{"n-1|location|" + nowMS + "|" + loc1}},
		{name: "null and empty id", in: `[{"type":"location","id":null,"ts":null,"data":` + loc1 + `},{"type":"location","id":"","data":` + loc1 + `}]`,
			items: []string{"n-1|location|" + nowMS + "|" + loc1, "n-2|location|" + nowMS + "|" + loc1}},
		{name: "whitespace and unknown keys dropped",
			in:    " \n\t{ \"type\" : \"location\", \"id\":\"a\", \"extra\":[1,2], \"data\": {\"lat\": 31.2304, \"lng\": 121.4737, \"foo\": {\"x\":1}, \"orig_lat\": 1} }\r\n",
			items: []string{"a|location||" + loc1}},
		{name: "escaped id", in: `{"type":"location","id":"a\u00e9\"b","data":` + loc1 + `}`,
			items: []string{`aé"b|location|` + nowMS + "|" + loc1}},
		{name: "integral float ts", in: `{"type":"location","id":"a","ts":1763900000000.0,"data":` + loc1 + `}`,
			items: []string{"a|location|" + nowMS + "|" + loc1}},
		{name: "ts at the limits", in: `[{"type":"location","id":"a","ts":1763900600000,"data":` + loc1 + `},{"type":"location","id":"b","ts":1761308000000,"data":` + loc1 + `}]`,
			items: []string{"a|location|1763900600000|" + loc1, "b|location|1761308000000|" + loc1}},
		{name: "heading 360 is 0, zero values kept", in: `{"type":"location","id":"a","data":{"lat":0,"lng":-180,"heading":360,"speed":0,"accuracy":0,"altitude":-12.5}}`,
			items: []string{`a|location|` + nowMS + `|{"lat":0,"lng":-180,"accuracy":0,"speed":0,"heading":0,"altitude":-12.5}`}},
		{name: "extremes", in: `{"type":"location","id":"a","data":{"lat":-90,"lng":180,"altitude":1e300}}`,
			items: []string{`a|location|` + nowMS + `|{"lat":-90,"lng":180,"altitude":1e+300}`}},
		{name: "duplicate keys: last wins", in: `{"type":"log","type":"location","id":"x","id":"a","data":{"lat":1,"lat":2,"lng":3}}`,
			items: []string{`a|location|` + nowMS + `|{"lat":2,"lng":3}`}},
		{name: "log level aliases", in: `[{"type":"log","id":"a","data":{"level":"WARNING","message":"m"}},{"type":"log","id":"b","data":{"level":"Err","message":""}},{"type":"log","id":"c","data":{"level":"trace","message":"m","fields":null}}]`,
			items: []string{`a|log|` + nowMS + `|{"level":"warn","message":"m"}`, `b|log|` + nowMS + `|{"level":"error","message":""}`, `c|log|` + nowMS + `|{"level":"debug","message":"m"}`}},
		{name: "log fields compacted, NUL replaced", in: `{"type":"log","id":"a","data":{"level":"info","message":"a\u0000b <x>","fields":{ "k" : "v\u0000", "e":"\\u0000", "n":[1, 2] }}}`,
			items: []string{`a|log|` + nowMS + `|{"level":"info","message":"a` + "\ufffd" + `b \u003cx\u003e","fields":{"k":"v\ufffd","e":"\\u0000","n":[1,2]}}`}},
		{name: "deep fields", in: `{"type":"log","id":"a","data":{"level":"info","message":"m","fields":` + deep + `}}`,
			items: []string{`a|log|` + nowMS + `|{"level":"info","message":"m","fields":` + deep + `}`}},
		{name: "ping", in: `{"type":"ping"}`, pings: 1},
		{name: "ping with junk", in: `{"type":"ping","id":"p","ts":"x","data":5}`, pings: 1},
		{name: "command result", in: `{"type":"command_result","id":"c-3","ok":true,"data":{"v":1}}`,
			results: []string{`c-3|true|{"v":1}|`}},
		{name: "command result failed", in: `{"type":"command_result","id":"c-4","ok":false,"error":"no such command"}`,
			results: []string{`c-4|false||no such command`}},
		{name: "empty batch", in: `{"type":"batch","items":[]}`},
		{name: "empty array", in: `[]`},
		{name: "batch", in: `{"type":"batch","items":[{"type":"location","id":"a","data":` + loc1 + `},{"type":"log","id":"b","data":{"level":"info","message":"hi"}}]}`,
			items: []string{"a|location|" + nowMS + "|" + loc1, `b|log|` + nowMS + `|{"level":"info","message":"hi"}`}},
		{name: "array with ping and result", in: `[{"type":"ping"},{"type":"location","id":"a","data":` + loc1 + `},{"type":"command_result","id":"c","ok":true}]`,
			items: []string{"a|location|" + nowMS + "|" + loc1}, pings: 1, results: []string{"c|true||"}},

		// Whole message refused.
		{name: "not json", in: `hello`, errs: []string{"|invalid_json"}},
		{name: "empty", in: ``, errs: []string{"|invalid_json"}},
		{name: "json string", in: `"location"`, errs: []string{"|invalid_json"}, msg: "object or array"},
		{name: "json number", in: `42`, errs: []string{"|invalid_json"}},
		{name: "json null", in: `null`, errs: []string{"|invalid_json"}},
		{name: "truncated", in: `{"type":"location","id":"a"`, errs: []string{"|invalid_json"}},
		{name: "trailing garbage", in: `{"type":"ping"} x`, errs: []string{"|invalid_json"}},
		{name: "two objects", in: `{"type":"ping"}{"type":"ping"}`, errs: []string{"|invalid_json"}},
		{name: "bad array", in: `[{"type":"ping"},]`, errs: []string{"|invalid_json"}},
		{name: "too deep", in: tooDeep, limits: Limits{MaxFrameBytes: 1 << 20}, errs: []string{"|invalid_json"}},
		{name: "too large", limits: Limits{MaxFrameBytes: 20}, in: `{"type":"location","data":` + loc1 + `}`,
			errs: []string{"|too_large"}},
		{name: "batch too large", in: big.String(), errs: []string{"|too_large"}},
		{name: "array too large", limits: Limits{MaxBatch: 2}, in: `[{"type":"ping"},{"type":"ping"},{"type":"ping"}]`,
			errs: []string{"|too_large"}},

		// One frame refused.
		{name: "missing type", in: `{"id":"a","data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}, msg: "type is missing"},
		{name: "type not string", in: `{"type":1,"id":"a"}`, errs: []string{"a|invalid_frame"}},
		{name: "unknown type", in: `{"type":"locaton","id":"a"}`, errs: []string{"a|invalid_frame"}, msg: `unknown frame type "locaton"`},
		{name: "ack from device", in: `{"type":"ack","ids":["a"]}`, errs: []string{"|invalid_frame"}},
		{name: "id number", in: `{"type":"location","id":17,"data":` + loc1 + `}`, errs: []string{"|invalid_frame"}, msg: "id must be a string"},
		{name: "id too long", in: `{"type":"location","id":"` + long + `","data":` + loc1 + `}`, errs: []string{"|invalid_frame"}, msg: "65 bytes"},
		{name: "id short limit", limits: Limits{MaxIDLen: 2}, in: `{"type":"location","id":"abc","data":` + loc1 + `}`, errs: []string{"|invalid_frame"}},
		{name: "id control", in: `{"type":"location","id":"a\nb","data":` + loc1 + `}`, errs: []string{"|invalid_frame"}, msg: "control"},
		{name: "id C1 control", in: `{"type":"location","id":"a\u0085","data":` + loc1 + `}`, errs: []string{"|invalid_frame"}},
		{name: "id bad utf8", in: "{\"type\":\"location\",\"id\":\"a\xffb\",\"data\":" + loc1 + "}", errs: []string{"|invalid_frame"}, msg: "UTF-8"},
		{name: "ts string", in: `{"type":"location","id":"a","ts":"1763900000000","data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}, msg: "integer"},
		{name: "ts fraction", in: `{"type":"location","id":"a","ts":1763900000000.5,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}},
		{name: "ts bool", in: `{"type":"location","id":"a","ts":true,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}},
		{name: "ts huge", in: `{"type":"location","id":"a","ts":1e999,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}},
		{name: "ts int64 overflow", in: `{"type":"location","id":"a","ts":99999999999999999999,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}},
		{name: "ts future", in: `{"type":"location","id":"a","ts":1763907200000,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}, msg: "is 2h0m0s in the future"},
		{name: "ts past", in: `{"type":"location","id":"a","ts":1000,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}, msg: "in the past"},
		{name: "ts most negative", in: `{"type":"location","id":"a","ts":-9223372036854775808,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}, msg: "in the past"},
		{name: "ts custom future", limits: Limits{MaxFuture: time.Second}, in: `{"type":"location","id":"a","ts":1763900002000,"data":` + loc1 + `}`, errs: []string{"a|invalid_frame"}},
		{name: "location no data", in: `{"type":"location","id":"a"}`, errs: []string{"a|invalid_frame"}, msg: "data is required"},
		{name: "location data array", in: `{"type":"location","id":"a","data":[1,2]}`, errs: []string{"a|invalid_frame"}, msg: "data must be an object"},
		{name: "location no lng", in: `{"type":"location","id":"a","data":{"lat":1}}`, errs: []string{"a|invalid_frame"}},
		{name: "lat NaN string", in: `{"type":"location","id":"a","data":{"lat":"NaN","lng":1}}`, errs: []string{"a|invalid_frame"}, msg: "data.lat must be a finite number, not string"},
		{name: "lat 1e999", in: `{"type":"location","id":"a","data":{"lat":1e999,"lng":1}}`, errs: []string{"a|invalid_frame"}},
		{name: "lat out of range", in: `{"type":"location","id":"a","data":{"lat":90.0001,"lng":1}}`, errs: []string{"a|invalid_frame"}, msg: "data.lat"},
		{name: "lng out of range", in: `{"type":"location","id":"a","data":{"lat":0,"lng":-180.5}}`, errs: []string{"a|invalid_frame"}, msg: "data.lng"},
		{name: "accuracy negative", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"accuracy":-1}}`, errs: []string{"a|invalid_frame"}},
		{name: "speed negative is unknown", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"speed":-1}}`,
			items: []string{`a|location||{"lat":0,"lng":0}`}},
		{name: "latitude, longitude and horizontalAccuracy", in: `{"type":"location","id":"a","data":{"latitude":31.2304,"longitude":121.4737,"accuracy":65,"horizontalAccuracy":12.5,"verticalAccuracy":3}}`,
			items: []string{`a|location||{"lat":31.2304,"lng":121.4737,"accuracy":12.5}`}},
		{name: "latitude not a number", in: `{"type":"location","id":"a","data":{"latitude":"31","longitude":121}}`, errs: []string{"a|invalid_frame"}, msg: "data.latitude must be a finite number"},
		{name: "bare location refused without the option", in: `{"latitude":31.2304,"longitude":121.4737}`, errs: []string{"|invalid_frame"}, msg: "type is missing"},
		{name: "speed string", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"speed":"1"}}`, errs: []string{"a|invalid_frame"}},
		{name: "heading over 360", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"heading":360.5}}`, errs: []string{"a|invalid_frame"}},
		{name: "heading negative", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"heading":-1}}`, errs: []string{"a|invalid_frame"}},
		{name: "altitude huge", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"altitude":-1e400}}`, errs: []string{"a|invalid_frame"}},
		{name: "unknown crs", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"crs":"utm"}}`, errs: []string{"a|invalid_frame"}, msg: `"utm"`},
		{name: "crs number", in: `{"type":"location","id":"a","data":{"lat":0,"lng":0,"crs":4326}}`, errs: []string{"a|invalid_frame"}},
		{name: "log no level", in: `{"type":"log","id":"a","data":{"message":"m"}}`, errs: []string{"a|invalid_frame"}, msg: "level is required"},
		{name: "log bad level", in: `{"type":"log","id":"a","data":{"level":"verbose","message":"m"}}`, errs: []string{"a|invalid_frame"}, msg: "verbose"},
		{name: "log level number", in: `{"type":"log","id":"a","data":{"level":3,"message":"m"}}`, errs: []string{"a|invalid_frame"}},
		{name: "log no message", in: `{"type":"log","id":"a","data":{"level":"info"}}`, errs: []string{"a|invalid_frame"}},
		{name: "log message object", in: `{"type":"log","id":"a","data":{"level":"info","message":{"a":1}}}`, errs: []string{"a|invalid_frame"}},
		{name: "log message too long", limits: Limits{MaxMessageLen: 3}, in: `{"type":"log","id":"a","data":{"level":"info","message":"abcd"}}`, errs: []string{"a|invalid_frame"}, msg: "4 bytes"},
		{name: "log message bad utf8", in: "{\"type\":\"log\",\"id\":\"a\",\"data\":{\"level\":\"info\",\"message\":\"\xc3\x28\"}}", errs: []string{"a|invalid_frame"}, msg: "UTF-8"},
		{name: "log fields array", in: `{"type":"log","id":"a","data":{"level":"info","message":"m","fields":[1]}}`, errs: []string{"a|invalid_frame"}, msg: "object"},
		{name: "log fields string", in: `{"type":"log","id":"a","data":{"level":"info","message":"m","fields":"{}"}}`, errs: []string{"a|invalid_frame"}},
		{name: "log fields too big", limits: Limits{MaxFieldsLen: 8}, in: `{"type":"log","id":"a","data":{"level":"info","message":"m","fields":{"abc":"def"}}}`, errs: []string{"a|invalid_frame"}},
		{name: "log fields bad utf8", in: "{\"type\":\"log\",\"id\":\"a\",\"data\":{\"level\":\"info\",\"message\":\"m\",\"fields\":{\"k\":\"\xff\"}}}", errs: []string{"a|invalid_frame"}},
		{name: "log data string", in: `{"type":"log","id":"a","data":"hello"}`, errs: []string{"a|invalid_frame"}},
		{name: "command result no id", in: `{"type":"command_result","ok":true}`, errs: []string{"|invalid_frame"}},
		{name: "command result ok string", in: `{"type":"command_result","id":"c","ok":"yes"}`, errs: []string{"c|invalid_frame"}},
		{name: "command result error number", in: `{"type":"command_result","id":"c","error":5}`, errs: []string{"c|invalid_frame"}},
		{name: "batch items object", in: `{"type":"batch","items":{"type":"ping"}}`, errs: []string{"|invalid_frame"}},
		{name: "batch no items", in: `{"type":"batch"}`, errs: []string{"|invalid_frame"}},

		// Mixed: the good frames still come through.
		{name: "batch with bad items",
			in: `{"type":"batch","items":[` +
				`{"type":"location","id":"a","data":` + loc1 + `},` +
				`{"type":"location","id":"b","data":{"lat":100,"lng":0}},` +
				`5,` +
				`{"type":"batch","id":"c","items":[]},` +
				`{"type":"ping","id":"d"},` +
				`{"type":"log","id":"e","data":{"level":"info","message":"ok"}},` +
				`{"type":"log","id":"f","data":{"level":"info"}}` +
				`]}`,
			items: []string{"a|location|" + nowMS + "|" + loc1, `e|log|` + nowMS + `|{"level":"info","message":"ok"}`},
			errs:  []string{"b|invalid_frame", "|invalid_frame", "c|invalid_frame", "d|invalid_frame", "f|invalid_frame"},
			msg:   "frame 1: data.lat 100"},
		{name: "array with nested batch",
			in:    `[{"type":"batch","items":[]},{"type":"location","data":` + loc1 + `},"x",{"type":"log","id":"z","ts":"now"}]`,
			items: []string{"n-1|location|" + nowMS + "|" + loc1},
			errs:  []string{"|invalid_frame", "|invalid_frame", "z|invalid_frame"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.limits.Parse([]byte(tt.in), testNow, counterIDs())
			s := summarize(got)
			// A "||" in a wanted item means "ts is now".
			for i, it := range tt.items {
				tt.items[i] = strings.Replace(it, "||", "|"+nowMS+"|", 1)
			}
			if !equalStrings(s.items, tt.items) {
				t.Errorf("items:\n got %q\nwant %q", s.items, tt.items)
			}
			if !equalStrings(s.errs, tt.errs) {
				t.Errorf("errors:\n got %q\nwant %q\n(%v)", s.errs, tt.errs, got.Errors)
			}
			if tt.msg != "" && (len(got.Errors) == 0 || !strings.Contains(got.Errors[0].Message, tt.msg)) {
				t.Errorf("first error %v does not mention %q", got.Errors, tt.msg)
			}
			if s.pings != tt.pings {
				t.Errorf("pings = %d, want %d", s.pings, tt.pings)
			}
			if !equalStrings(s.results, tt.results) {
				t.Errorf("results:\n got %q\nwant %q", s.results, tt.results)
			}
			for _, it := range got.Items {
				if it.V != ItemVersion || it.Device != "" || it.ReceivedAt != 0 {
					t.Errorf("item %+v: want V=%d and Device, ReceivedAt unset", it, ItemVersion)
				}
				if !json.Valid(it.Data) {
					t.Errorf("item %s: invalid data %s", it.ID, it.Data)
				}
			}
		})
	}
}

func TestParseCRS(t *testing.T) {
	wLat, wLng := 31.2304, 121.4737
	gLat, gLng := WGS84ToGCJ02(wLat, wLng)
	bLat, bLng := WGS84ToBD09(wLat, wLng)
	in := fmt.Sprintf(`[{"type":"location","id":"g","data":{"lat":%v,"lng":%v,"crs":"gcj02"}},`+
		`{"type":"location","id":"b","data":{"lat":%v,"lng":%v,"crs":"BD09"}},`+
		`{"type":"location","id":"w","data":{"lat":%v,"lng":%v,"crs":"WGS84"}}]`,
		gLat, gLng, bLat, bLng, wLat, wLng)
	got := Limits{}.Parse([]byte(in), testNow, nil)
	if len(got.Errors) != 0 || len(got.Items) != 3 {
		t.Fatalf("got %+v", got)
	}
	for i, want := range []struct {
		crs              string
		origLat, origLng float64
	}{{CRSGCJ02, gLat, gLng}, {CRSBD09, bLat, bLng}, {"", 0, 0}} {
		var loc Location
		if err := json.Unmarshal(got.Items[i].Data, &loc); err != nil {
			t.Fatal(err)
		}
		if d := distance(loc.Lat, loc.Lng, wLat, wLng); d > 0.5 {
			t.Errorf("%s: converted position is %.2f m off", want.crs, d)
		}
		if loc.CRS != want.crs {
			t.Errorf("crs = %q, want %q", loc.CRS, want.crs)
		}
		if want.crs == "" {
			if loc.OrigLat != nil || loc.OrigLng != nil {
				t.Errorf("wgs84: orig set: %s", got.Items[i].Data)
			}
			continue
		}
		if loc.OrigLat == nil || loc.OrigLng == nil || *loc.OrigLat != want.origLat || *loc.OrigLng != want.origLng {
			t.Errorf("%s: orig not kept: %s", want.crs, got.Items[i].Data)
		}
	}
}

// A mini-program's location object, posted as it is, is a location frame
// with the receive time and a new id; with the device's default crs it is
// converted like a frame that names it.
func TestParseBareLocations(t *testing.T) {
	wLat, wLng := 31.2304, 121.4737
	gLat, gLng := WGS84ToGCJ02(wLat, wLng)
	obj := fmt.Sprintf(`{"latitude":%v,"longitude":%v,"speed":-1,"accuracy":65,"altitude":8,"horizontalAccuracy":30,"verticalAccuracy":3,"errMsg":"getLocation:ok"}`, gLat, gLng)
	opts := Options{DefaultCRS: CRSGCJ02, BareLocations: true}
	for _, tc := range []struct {
		name, in string
		items    int
		errs     []string
	}{
		{"object", obj, 1, nil},
		{"array of objects", "[" + obj + "," + obj + "]", 2, nil},
		{"mixed with frames", `[` + obj + `,{"type":"log","id":"l","data":{"level":"info","message":"hi"}}]`, 2, nil},
		{"not in a batch", `{"type":"batch","items":[` + obj + `]}`, 0, []string{"|invalid_frame"}},
		{"no longitude", `{"latitude":31}`, 0, []string{"|invalid_frame"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Limits{}.ParseWith([]byte(tc.in), testNow, counterIDs(), opts)
			if s := summarize(got); len(got.Items) != tc.items || !equalStrings(s.errs, tc.errs) {
				t.Fatalf("items %q, errors %q (%v); want %d items, errors %q", s.items, s.errs, got.Errors, tc.items, tc.errs)
			}
			for _, it := range got.Items {
				if it.Type != TypeLocation {
					continue
				}
				var loc Location
				if err := json.Unmarshal(it.Data, &loc); err != nil {
					t.Fatal(err)
				}
				if it.TS != testNow.UnixMilli() || !strings.HasPrefix(it.ID, "n-") {
					t.Errorf("ts %d, id %q: want the receive time and a new id", it.TS, it.ID)
				}
				if d := distance(loc.Lat, loc.Lng, wLat, wLng); d > 0.5 || loc.CRS != CRSGCJ02 || loc.OrigLat == nil || *loc.OrigLat != gLat {
					t.Errorf("%s: want WGS-84 within 0.5 m (%.2f m off) with the GCJ-02 original", it.Data, d)
				}
				if loc.Speed != nil || loc.Accuracy == nil || *loc.Accuracy != 30 || loc.Altitude == nil || *loc.Altitude != 8 {
					t.Errorf("%s: want no speed (-1 is unknown), accuracy 30 (horizontalAccuracy), altitude 8", it.Data)
				}
			}
		})
	}
	// A crs in the data wins over the device's default.
	got := Limits{}.ParseWith([]byte(fmt.Sprintf(`{"latitude":%v,"longitude":%v,"crs":"wgs84"}`, wLat, wLng)), testNow, nil, opts)
	if len(got.Items) != 1 || !strings.HasPrefix(string(got.Items[0].Data), fmt.Sprintf(`{"lat":%v,"lng":%v}`, wLat, wLng)) {
		t.Errorf("crs wgs84 named: %+v", got)
	}
}

func TestParseDefaultIDs(t *testing.T) {
	got := Limits{}.Parse([]byte(`[{"type":"location","data":`+loc1+`},{"type":"location","data":`+loc1+`}]`), testNow, nil)
	if len(got.Items) != 2 {
		t.Fatalf("got %+v", got)
	}
	a, b := got.Items[0].ID, got.Items[1].ID
	if a == b || !strings.HasPrefix(a, "g-") || len(a) > DefaultMaxIDLen {
		t.Errorf("generated ids %q, %q", a, b)
	}
}

// TestParseDataIsolated checks that the Data of items sharing the parser's
// arena cannot be overwritten through one another.
func TestParseDataIsolated(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := range 100 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"type":"location","id":"%d","data":{"lat":%d,"lng":%d}}`, i, i%90, i)
	}
	b.WriteString("]")
	raw := []byte(b.String())
	got := Limits{}.Parse(raw, testNow, nil)
	clear(raw) // Parse's output must not alias its input
	if len(got.Items) != 100 {
		t.Fatalf("got %d items, errors %v", len(got.Items), got.Errors)
	}
	for _, it := range got.Items {
		_ = append(it.Data, "garbage"...)
	}
	for i, it := range got.Items {
		want := fmt.Sprintf(`{"lat":%d,"lng":%d}`, i%90, i)
		if string(it.Data) != want {
			t.Fatalf("item %d data %s, want %s", i, it.Data, want)
		}
	}
}

func TestAppendLocationMatchesMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := []float64{0, math.Copysign(0, -1), 1e-7, -1e-7, 1e-6, 1e20, 1e21, 123456789.123, 5e-324, math.MaxFloat64, 31.2304, 1.0 / 3}
	pick := func() *float64 {
		if r.IntN(4) == 0 {
			return nil
		}
		var v float64
		if r.IntN(2) == 0 {
			v = vals[r.IntN(len(vals))]
		} else {
			v = (r.Float64() - 0.5) * math.Pow(10, float64(r.IntN(40)-20))
		}
		return &v
	}
	for range 10000 {
		loc := Location{Accuracy: pick(), Speed: pick(), Heading: pick(), Altitude: pick(), OrigLat: pick(), OrigLng: pick()}
		if p := pick(); p != nil {
			loc.Lat = *p
		}
		if p := pick(); p != nil {
			loc.Lng = *p
		}
		loc.CRS = []string{"", CRSGCJ02, CRSBD09, CRSWGS84}[r.IntN(4)]
		want, err := json.Marshal(&loc)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendLocation(nil, new(fieldsOf(&loc))); string(got) != string(want) {
			t.Fatalf("appendLocation = %s, json.Marshal = %s", got, want)
		}
	}
}

func TestNormalizeLevel(t *testing.T) {
	for in, want := range map[string]string{
		"debug": "debug", "INFO": "info", "Warn": "warn", "warning": "warn", "ERR": "error",
		"error": "error", "fatal": "fatal", "CRITICAL": "fatal", "": "", "verbose": "", "informational": "",
		// Monolog's eight levels, as its LineFormatter and JsonFormatter spell them.
		"DEBUG": "debug", "NOTICE": "info", "WARNING": "warn", "ERROR": "error",
		"ALERT": "fatal", "EMERGENCY": "fatal", "Emergency": "fatal", "emerg": "fatal", "emergencyy": "",
	} {
		got, ok := NormalizeLevel(in)
		if got != want || ok != (want != "") {
			t.Errorf("NormalizeLevel(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, lv := range Levels {
		if got, ok := NormalizeLevel(lv); !ok || got != lv {
			t.Errorf("level %q not accepted as itself", lv)
		}
	}
}

func TestFrameError(t *testing.T) {
	e := FrameError{ID: "m-1", Code: CodeInvalidFrame, Message: "data is required"}
	var err error = e
	if got := err.Error(); got != "invalid_frame: frame m-1: data is required" {
		t.Errorf("Error() = %q", got)
	}
	b, _ := json.Marshal(e.Frame())
	if string(b) != `{"type":"error","id":"m-1","code":"invalid_frame","message":"data is required"}` {
		t.Errorf("Frame() = %s", b)
	}
	b, _ = json.Marshal(FrameError{Code: CodeInvalidJSON, Message: "x"}.Frame())
	if string(b) != `{"type":"error","code":"invalid_json","message":"x"}` {
		t.Errorf("Frame() = %s", b)
	}
}

package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"unicode/utf8"
)

// FuzzParse feeds arbitrary messages to Parse and checks that it never
// panics and that everything it accepts is something a worker accepts too.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"type":"location","id":"m-17","ts":1763900000000,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8,"crs":"wgs84"}}`,
		`{"type":"log","id":"m-18","ts":1763900000123,"data":{"level":"warn","message":"door 2 opened","fields":{"door":2}}}`,
		`{"type":"batch","items":[{"type":"location","data":{"lat":1,"lng":2,"crs":"gcj02"}},{"type":"log","data":{"level":"ERR","message":"x\u0000"}},{"type":"batch","items":[]}]}`,
		`[{"type":"ping"},{"type":"location","id":"a","data":{"lat":39.9,"lng":116.4,"crs":"bd09"}},{"type":"command_result","id":"c-3","ok":true,"data":{"a":1}}]`,
		`{"type":"ping"}`,
		`{"type":"command_result","id":"c","ok":false,"error":"nope"}`,
		`{"type":"location","id":"x","data":{"lat":"NaN","lng":1e999}}`,
		`{"type":"location","id":"x","ts":1.5,"data":{"lat":91,"lng":0,"heading":360}}`,
		`{"type":"log","id":"\u0001","data":{"level":"info","message":"\ud800","fields":{"k":"\\u0000"}}}`,
		`{"type":"log","type":"location","id":"a","id":"b","data":{"lat":1,"lat":2,"lng":3}}`,
		"{\"type\":\"log\",\"data\":{\"level\":\"info\",\"message\":\"\xff\"}}",
		`[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]`,
		`{"type":"location","data":{"lat":55.8271,"lng":137.8347,"crs":"gcj02"}}`,
		`{"type":"location","data":{"lat":-90,"lng":-180,"crs":"bd09"}}`,
		`{"type":"location","data":{"lat":90,"lng":180,"crs":"BD09"}}`,
		`{"type":"location","data":{"lat":-0,"lng":1e-7,"speed":0}}`,
		`{"type":"location","ts":-9223372036854775808}`,
		`{"latitude":31.2,"longitude":121.5,"speed":-1,"accuracy":65,"horizontalAccuracy":30,"errMsg":"getLocation:ok"}`,
		`[{"latitude":31.2,"longitude":121.5},{"type":"ping"},{"latitude":"x"}]`,
		`"x"`, `null`, `[]`, `{}`, ``, `{"type":`,
	} {
		f.Add([]byte(seed))
	}
	limits := Limits{}.WithDefaults()
	f.Fuzz(func(t *testing.T, raw []byte) {
		// As a native device sends, and as the HTTP ingest of a device
		// with a default crs parses it (bare mini-program objects too).
		for _, opts := range []Options{{}, {DefaultCRS: CRSGCJ02, BareLocations: true}} {
			checkParsed(t, limits, limits.ParseWith(raw, testNow, genIDs(), opts))
		}
	})
}

// genIDs returns a newID function giving gen-1, gen-2, ...
func genIDs() func() string {
	n := 0
	return func() string { n++; return "gen-" + strconv.Itoa(n) }
}

// checkParsed checks what every Parse result must be.
func checkParsed(t *testing.T, limits Limits, p Parsed) {
	t.Helper()
	for _, it := range p.Items {
		if it.ID == "" || len(it.ID) > limits.MaxIDLen {
			t.Fatalf("item id %q", it.ID)
		}
		if it.Type != TypeLocation && it.Type != TypeLog {
			t.Fatalf("item type %q", it.Type)
		}
		if it.V != ItemVersion {
			t.Fatalf("item version %d", it.V)
		}
		if !json.Valid(it.Data) || !utf8.Valid(it.Data) {
			t.Fatalf("item data %q", it.Data)
		}
		it.Device = "dev-1"
		it.ReceivedAt = testNow.UnixMilli()
		b, err := json.Marshal(it)
		if err != nil {
			t.Fatalf("marshal %+v: %v", it, err)
		}
		back, err := DecodeItem(b)
		if err != nil {
			t.Fatalf("DecodeItem(%s): %v", b, err)
		}
		if back.ID != it.ID || back.TS != it.TS || string(back.Data) != string(it.Data) {
			t.Fatalf("DecodeItem changed the item:\n got %+v\nwant %+v", back, it)
		}
		checkAppendLive(t, back)
	}
	for _, e := range p.Errors {
		switch e.Code {
		case CodeInvalidJSON, CodeInvalidFrame, CodeTooLarge:
		default:
			t.Fatalf("error code %q", e.Code)
		}
		if !utf8.ValidString(e.Message) || len(e.ID) > limits.MaxIDLen {
			t.Fatalf("error %+v", e)
		}
		if _, err := json.Marshal(e.Frame()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range p.Results {
		if r.ID == "" {
			t.Fatal("command result without id")
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
	}
	if len(p.Items)+len(p.Errors)+len(p.Results)+p.Pings > limits.MaxBatch+1 {
		t.Fatalf("%d outcomes from one message", len(p.Items)+len(p.Errors)+len(p.Results)+p.Pings)
	}
}

// FuzzValidJSON checks that the hand-written scanner accepts exactly what
// encoding/json accepts, and that the iterators and helpers built on it
// agree with encoding/json on valid input.
func FuzzValidJSON(f *testing.F) {
	for _, seed := range []string{
		`{"a":1}`, ` [1, 2.5e-3, -0, "x\u00e9\n", true, false, null, {}] `, `{"a":{"b":[{}]}}`,
		`01`, `1.`, `-`, `1e`, `"\x"`, `"\u12"`, "\"\x01\"", `{"a" 1}`, `{"a":1,}`, `[1,]`, `nul`, `{} {}`,
		"\"\xff\"", `[[[[[[[[[[]]]]]]]]]]`, `{"k\"ey":"v","k\\u0000":"\\\u0000"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := json.Valid(b)
		if got := validJSON(b) == nil; got != want {
			t.Fatalf("validJSON = %v, json.Valid = %v for %q", got, want, b)
		}
		if !want {
			return
		}
		switch firstByte(b) {
		case '{':
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			n := 0
			it := newObjectIter(b)
			for k, v, ok := it.next(); ok; k, v, ok = it.next() {
				n++
				if !json.Valid(v) {
					t.Fatalf("member %q value %q not valid", k, v)
				}
			}
			if n < len(m) {
				t.Fatalf("iterated %d members, encoding/json found %d distinct", n, len(m))
			}
		case '[':
			var list []json.RawMessage
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			if n := countElements(b); n != len(list) {
				t.Fatalf("countElements = %d, want %d", n, len(list))
			}
		case '"':
			var s string
			if err := json.Unmarshal(b, &s); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(s)
			if got := appendString(nil, s); string(got) != string(want) {
				t.Fatalf("appendString(%q) = %s, json.Marshal = %s", s, got, want)
			}
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, b); err != nil {
			t.Fatal(err)
		}
		var esc bytes.Buffer
		json.HTMLEscape(&esc, buf.Bytes())
		want2 := bytes.ReplaceAll(esc.Bytes(), []byte(`\u0000`), []byte(`\ufffd`))
		got := appendCompact(nil, b)
		if !bytes.Contains(b, []byte(`\\u0000`)) && string(got) != string(want2) {
			t.Fatalf("appendCompact = %s, want %s", got, want2)
		}
		if !json.Valid(got) {
			t.Fatalf("appendCompact gave invalid JSON %s", got)
		}
		// Fixed point of json.Marshal, as Item.Data must be.
		if m, err := json.Marshal(json.RawMessage(got)); err != nil || string(m) != string(got) {
			t.Fatalf("json.Marshal changed appendCompact's %s to %s (%v)", got, m, err)
		}
	})
}

// FuzzDecodeQueueItem checks that scanItemIn, where it reads an item
// itself, reads exactly what json.Unmarshal reads (so DecodeQueueItem
// accepts, refuses and reports as it did with json.Unmarshal alone), and
// that DecodeQueueItem never panics and AppendLive of what it decodes is
// json.Marshal of its LiveOf.
func FuzzDecodeQueueItem(f *testing.F) {
	for _, seed := range []string{
		`{"v":1,"device":"dev-1","id":"m-17","type":"location","ts":1763900000000,"received_at":1763900000100,"gateway":"gw-1","data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5}}`,
		`{"device":"d","id":"m","type":"log","data":{"level":"info","message":"abc","fields":{"a":[1,{}]}}}`,
		`{"Device":"d","id":"m","type":"log","data":{"level":"info","message":"abc"}}`,
		`{"device":"d","device":"e","id":"m","type":"log","data":{"level":"info","message":"abc"}}`,
		`{"d\u0065vice":"d","id":"m","type":"log","data":{}}`, `{"RECEIVED_AT":5,"ſ":1,"K":2}`,
		`{"v":1.0,"ts":1e3,"received_at":"5"}`, `{"ts":-0,"received_at":9223372036854775808}`,
		`{"v":null,"ts":null,"device":null,"data":null}`, ` {"x":[1,2],"type":"location"} `, `{"ts":true}`,
		`{"device":"<d&>\u2028é","id":"m\"1","type":"log","ts":-5,"data":{"level":"info","message":"a<b\u2029"}}`,
		`{"device":"d",}`, `{"id":"\ud800"}`, `{}`, `[]`, `{"gateway":{"a":1},"v":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := (Limits{}).DecodeQueueItem(b); err == nil {
			checkAppendLive(t, d.Item)
		}
		got, ok := scanItemIn(b)
		if !ok {
			return
		}
		var want itemIn
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("scanItemIn read %q, json.Unmarshal refuses it: %v", b, err)
		}
		if got.V != want.V || got.TS != want.TS || got.ReceivedAt != want.ReceivedAt {
			t.Fatalf("scanItemIn(%q) numbers %d %d %d, json.Unmarshal %d %d %d",
				b, got.V, got.TS, got.ReceivedAt, want.V, want.TS, want.ReceivedAt)
		}
		for _, m := range []struct {
			name      string
			got, want []byte
		}{
			{"device", got.Device, want.Device}, {"id", got.ID, want.ID}, {"type", got.Type, want.Type},
			{"gateway", got.Gateway, want.Gateway}, {"data", got.Data, want.Data},
		} {
			if !bytes.Equal(m.got, m.want) || (m.got == nil) != (m.want == nil) {
				t.Fatalf("scanItemIn(%q) %s = %q, json.Unmarshal %q", b, m.name, m.got, m.want)
			}
		}
	})
}

// checkAppendLive checks AppendLive against json.Marshal for a decoded item.
func checkAppendLive(t *testing.T, it Item) {
	t.Helper()
	want, err := json.Marshal(LiveOf(it))
	if err != nil {
		t.Fatalf("marshal live %+v: %v", it, err)
	}
	if got := AppendLive([]byte("x"), it); string(got[1:]) != string(want) || got[0] != 'x' {
		t.Fatalf("AppendLive = %s, json.Marshal = %s", got, want)
	}
}

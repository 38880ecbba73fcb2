package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/google/go-cmp/cmp"
)

type fakeQueue struct{ items [][]byte }

func (q *fakeQueue) Push(_ context.Context, items ...[]byte) error {
	q.items = append(q.items, items...)
	return nil
}

type fakeDevices map[string]storage.Device

func (f fakeDevices) Device(_ context.Context, id string) (storage.Device, error) {
	d, ok := f[id]
	if !ok {
		return storage.Device{}, storage.ErrNotFound
	}
	return d, nil
}

var devs = fakeDevices{"van-1": {ID: "van-1"}, "17": {ID: "17", CRS: "gcj02"}, "old": {ID: "old", RevokedAt: 1}}

func TestParseMappingRefuses(t *testing.T) {
	for _, tc := range []struct{ spec, typ, template, want string }{
		{"lat=a,lng=b", "", "", "map: device=PATH is required"},
		{"device=d,lat=a", "", "", "map: lng=PATH is required"},
		{"device=d,lat=a,lng=b,colour=c", "", "", `map "colour=c": colour is not a location field; want one of device, id, ts, lat, lng, accuracy, speed, heading, altitude, crs`},
		{"device=d,lat=a,lng=b,lat=c", "", "", "map: lat is mapped twice"},
		{"device=d,lat=a..b,lng=b", "", "", `map "lat=a..b": path "a..b" has an empty segment`},
		{"device=d,lat", "", "", `map "lat": want target=PATH`},
		{"device=d", "log", "", "a log needs map message=PATH or a message template"},
		{"device=d,message=m", "log", "x {y}", "map message=PATH and a message template exclude each other"},
		{"device=d", "status", "", `type "status": want location or log`},
	} {
		_, err := ParseMapping(tc.spec, tc.typ, tc.template, "")
		if err == nil || err.Error() != tc.want {
			t.Errorf("ParseMapping(%q, %q): %v; want %s", tc.spec, tc.typ, err, tc.want)
		}
	}
}

// item runs one message through a bridge with fake queue and devices and
// returns the pushed item.
func handle(t *testing.T, m Mapping, body, msgID string) (protocol.Item, error) {
	t.Helper()
	q := &fakeQueue{}
	b, err := New(Config{Mapping: m, ID: "b1", ReportEvery: -1}, q, devs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Handle(context.Background(), []byte(body), msgID); err != nil {
		return protocol.Item{}, err
	}
	if len(q.items) != 1 {
		t.Fatalf("%d items pushed", len(q.items))
	}
	it, err := protocol.DecodeItem(q.items[0])
	if err != nil {
		t.Fatalf("pushed item %s: %v", q.items[0], err)
	}
	return it, nil
}

func TestLocationMapping(t *testing.T) {
	m, err := ParseMapping("device=uid,lat=latitude,lng=longitude,id=mid,ts=at,speed=v", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	ts := time.Now().Add(-time.Minute).Unix()
	body := `{"uid":17,"latitude":"31.2304","longitude":121.4737,"mid":"m-1","at":` + jsonInt(ts) + `,"v":3.5}`
	it, err := handle(t, m, body, "")
	if err != nil {
		t.Fatal(err)
	}
	if it.Device != "17" || it.ID != "m-1" || it.TS != ts*1000 || it.Gateway != "b1" || it.Type != protocol.TypeLocation {
		t.Errorf("item %+v", it)
	}
	var loc protocol.Location
	_ = json.Unmarshal(it.Data, &loc)
	// Device 17's default crs is gcj02: converted, the original kept.
	if loc.CRS != "gcj02" || loc.OrigLat == nil || *loc.OrigLat != 31.2304 || loc.Lat == 31.2304 || loc.Speed == nil || *loc.Speed != 3.5 {
		t.Errorf("location %s", it.Data)
	}
	// No id mapped: the AMQP message-id, else a hash of the body.
	m2, _ := ParseMapping("device=uid,lat=latitude,lng=longitude", "", "", "")
	if it, _ := handle(t, m2, body, "amqp-7"); it.ID != "amqp-7" {
		t.Errorf("id %q; want the message id", it.ID)
	}
	if it, _ := handle(t, m2, body, ""); it.ID != bodyID([]byte(body)) || !strings.HasPrefix(it.ID, "b-") {
		t.Errorf("id %q; want the body hash", it.ID)
	}
}

func jsonInt(v int64) string { b, _ := json.Marshal(v); return string(b) }

// The RabbitMQ status message {"from","to","vehicleId"} as a log: a
// template for the message, what no mapping reads kept in fields.
func TestLogMapping(t *testing.T) {
	m, err := ParseMapping("device=vehicleId,level=sev", "log", "status {from} -> {to}", "")
	if err != nil {
		t.Fatal(err)
	}
	it, err := handle(t, m, `{"from":"parked","to":"moving","vehicleId":"van-1","odometer":12034}`, "")
	if err != nil {
		t.Fatal(err)
	}
	var lg protocol.Log
	_ = json.Unmarshal(it.Data, &lg)
	var fields map[string]any
	_ = json.Unmarshal(lg.Fields, &fields)
	if lg.Level != "info" || lg.Message != "status parked -> moving" {
		t.Errorf("log %s", it.Data)
	}
	if diff := cmp.Diff(map[string]any{"from": "parked", "to": "moving", "odometer": 12034.0}, fields); diff != "" {
		t.Errorf("fields (-want +got):\n%s", diff)
	}
	it, err = handle(t, m, `{"from":"a","to":"b","vehicleId":"van-1","sev":"WARNING"}`, "")
	if err != nil || !strings.Contains(string(it.Data), `"level":"warn"`) {
		t.Errorf("level alias: %s, %v", it.Data, err)
	}
}

func TestRefusalsNameTheirReason(t *testing.T) {
	m, _ := ParseMapping("device=user.username,lat=latitude,lng=longitude,ts=time", "", "", "")
	for _, tc := range []struct{ body, want string }{
		{malformed[0], "malformed message: not JSON"},
		{malformed[1], "malformed message: not a JSON object"},
		{malformed[2], `device "van-1": malformed message: no lat at latitude`},
		{malformed[3], `device "van-1": malformed message: invalid_frame`},
		{malformed[4], `device "van-1": malformed message: lat (latitude) is an object, want a number`},
		{malformed[5], `device "van-1": malformed message: lat (latitude) is "north", want a number`},
		{malformed[6], "malformed message: no device at user.username"},
		{malformed[7], "malformed message: device (user.username) is an array, want a string or a number"},
		{malformed[8], `device "van-1": malformed message: ts (time) -5 is negative`},
		{malformed[9], `device "van-1": malformed message: invalid_frame`},
		{`{"user":{"username":"ghost"},"latitude":31,"longitude":121}`, `unknown device "ghost": not registered`},
		{`{"user":{"username":"old"},"latitude":31,"longitude":121}`, `unknown device "old": revoked`},
	} {
		_, err := handle(t, m, tc.body, "")
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %s...", tc.body, err, tc.want)
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownDevice) {
			t.Errorf("%s: %v is not a refusal", tc.body, err)
		}
	}
}

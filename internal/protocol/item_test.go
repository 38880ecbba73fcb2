package protocol

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestDecodeItemFromParse(t *testing.T) {
	in := `[{"type":"location","id":"a","data":{"lat":31.2,"lng":121.4,"crs":"gcj02","speed":1}},` +
		`{"type":"log","id":"b","data":{"level":"INFO","message":"m","fields":{"x":[1,{"y":null}]}}}]`
	got := Limits{}.Parse([]byte(in), testNow, nil)
	if len(got.Items) != 2 {
		t.Fatalf("parse: %+v", got)
	}
	for _, it := range got.Items {
		it.Device = "dev-1"
		it.ReceivedAt = testNow.UnixMilli()
		it.Gateway = "gw-1"
		raw, err := json.Marshal(it)
		if err != nil {
			t.Fatal(err)
		}
		back, err := DecodeItem(raw)
		if err != nil {
			t.Fatalf("DecodeItem(%s): %v", raw, err)
		}
		again, _ := json.Marshal(back)
		if string(again) != string(raw) {
			t.Errorf("round trip changed the item:\n got %s\nwant %s", again, raw)
		}
	}
}

func TestDecodeItem(t *testing.T) {
	const okLoc = `"data":{"lat":31.2304,"lng":121.4737}`
	tests := []struct {
		name string
		in   string
		want string // the re-marshalled item, or "" when an error is expected
		err  string // substring of the error
	}{
		{name: "location",
			in:   `{"v":1,"device":"d1","id":"m-1","type":"location","ts":5,"received_at":6,"gateway":"g",` + okLoc + `}`,
			want: `{"v":1,"device":"d1","id":"m-1","type":"location","ts":5,"received_at":6,"gateway":"g","data":{"lat":31.2304,"lng":121.4737}}`},
		{name: "v0 and missing ts",
			in:   `{"device":"d1","id":"m-1","type":"location","received_at":6,` + okLoc + `}`,
			want: `{"v":1,"device":"d1","id":"m-1","type":"location","ts":6,"received_at":6,"data":{"lat":31.2304,"lng":121.4737}}`},
		{name: "log normalised, unknown keys dropped",
			in:   `{"v":1,"device":"d1","id":"m-1","type":"log","ts":5,"extra":1,"data":{"level":"Warning","message":"x","fields":{ "a" : 1 },"junk":2}}`,
			want: `{"v":1,"device":"d1","id":"m-1","type":"log","ts":5,"received_at":0,"data":{"level":"warn","message":"x","fields":{"a":1}}}`},
		{name: "third-party gcj02 converted",
			in:   `{"device":"d1","id":"m-1","type":"location","ts":5,"data":{"lat":31.2284,"lng":121.4781,"crs":"gcj02"}}`,
			want: `"orig_lat":31.2284,"orig_lng":121.4781`},
		{name: "already converted kept",
			in:   `{"device":"d1","id":"m-1","type":"location","ts":5,"data":{"lat":31.23,"lng":121.47,"crs":"gcj02","orig_lat":31.2284,"orig_lng":121.4781}}`,
			want: `{"v":1,"device":"d1","id":"m-1","type":"location","ts":5,"received_at":0,"data":{"lat":31.23,"lng":121.47,"crs":"gcj02","orig_lat":31.2284,"orig_lng":121.4781}}`},

		{name: "not json", in: `nope`, err: "not a JSON object"},
		{name: "array", in: `[]`, err: "not a JSON object"},
		{name: "truncated", in: `{"v":1`, err: "invalid queue item"},
		{name: "version 2", in: `{"v":2,"device":"d1","id":"m","type":"location",` + okLoc + `}`, err: "version 2"},
		{name: "version string", in: `{"v":"1","device":"d1","id":"m","type":"location",` + okLoc + `}`, err: "item.v must be an integer"},
		{name: "no device", in: `{"v":1,"id":"m","type":"location",` + okLoc + `}`, err: "device is missing"},
		{name: "empty device", in: `{"v":1,"device":"","id":"m","type":"location",` + okLoc + `}`, err: "device is empty"},
		{name: "device number", in: `{"v":1,"device":7,"id":"m","type":"location",` + okLoc + `}`, err: "device must be a string"},
		{name: "device bad utf8", in: "{\"v\":1,\"device\":\"\xff\",\"id\":\"m\",\"type\":\"location\"," + okLoc + "}", err: "UTF-8"},
		{name: "device too long", in: `{"v":1,"device":"` + strings.Repeat("d", MaxDeviceIDLen+1) + `","id":"m","type":"location",` + okLoc + `}`, err: "device is 129 bytes"},
		{name: "no id", in: `{"v":1,"device":"d1","type":"location",` + okLoc + `}`, err: "id is missing"},
		{name: "id too long", in: `{"v":1,"device":"d1","id":"` + strings.Repeat("i", 65) + `","type":"location",` + okLoc + `}`, err: "id is 65 bytes"},
		{name: "id control", in: `{"v":1,"device":"d1","id":"a\tb","type":"location",` + okLoc + `}`, err: "control"},
		{name: "type ping", in: `{"v":1,"device":"d1","id":"m","type":"ping",` + okLoc + `}`, err: "type must be"},
		{name: "no type", in: `{"v":1,"device":"d1","id":"m",` + okLoc + `}`, err: "type must be"},
		{name: "ts float", in: `{"v":1,"device":"d1","id":"m","type":"location","ts":1.5,` + okLoc + `}`, err: "item.ts must be an integer"},
		{name: "gateway number", in: `{"v":1,"device":"d1","id":"m","type":"location","gateway":1,` + okLoc + `}`, err: "gateway"},
		{name: "no data", in: `{"v":1,"device":"d1","id":"m","type":"location"}`, err: "data is required"},
		{name: "lat out of range", in: `{"v":1,"device":"d1","id":"m","type":"location","data":{"lat":-91,"lng":0}}`, err: "data.lat"},
		{name: "lat string", in: `{"v":1,"device":"d1","id":"m","type":"location","data":{"lat":"1","lng":0}}`, err: "data.lat must be a finite number"},
		{name: "bad crs", in: `{"v":1,"device":"d1","id":"m","type":"location","data":{"lat":1,"lng":0,"crs":"x"}}`, err: "data.crs"},
		{name: "orig out of range", in: `{"v":1,"device":"d1","id":"m","type":"location","data":{"lat":1,"lng":0,"crs":"bd09","orig_lat":100,"orig_lng":0}}`, err: "orig"},
		{name: "log bad level", in: `{"v":1,"device":"d1","id":"m","type":"log","data":{"level":"loud","message":"x"}}`, err: "data.level"},
		{name: "log fields scalar", in: `{"v":1,"device":"d1","id":"m","type":"log","data":{"level":"info","message":"x","fields":1}}`, err: "data.fields"},
		{name: "log message too long", in: `{"v":1,"device":"d1","id":"m","type":"log","data":{"level":"info","message":"` + strings.Repeat("x", DefaultMaxMessageLen+1) + `"}}`, err: "data.message is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			it, err := DecodeItem([]byte(tt.in))
			if tt.err != "" {
				if err == nil {
					t.Fatalf("no error, got %+v", it)
				}
				if !errors.Is(err, ErrInvalidItem) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %q: want ErrInvalidItem mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(it)
			if !strings.Contains(string(got), tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDecodeQueueItemData(t *testing.T) {
	d, err := Limits{}.DecodeQueueItem([]byte(`{"device":"d","id":"m","type":"location","ts":1,"data":{"lat":39.9,"lng":116.4,"crs":"bd09"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if d.Log != nil || d.Location == nil || d.Location.CRS != CRSBD09 || *d.Location.OrigLat != 39.9 {
		t.Fatalf("got %+v", d)
	}
	if dist := distance(d.Location.Lat, d.Location.Lng, 39.9, 116.4); dist < 100 || dist > 2000 {
		t.Errorf("BD-09 conversion moved the point %.0f m", dist)
	}
	d, err = Limits{MaxMessageLen: 2}.DecodeQueueItem([]byte(`{"device":"d","id":"m","type":"log","data":{"level":"info","message":"abc"}}`))
	if err == nil {
		t.Fatalf("message over a custom limit accepted: %+v", d)
	}
	d, err = Limits{}.DecodeQueueItem([]byte(`{"device":"d","id":"m","type":"log","data":{"level":"info","message":"abc"}}`))
	if err != nil || d.Location != nil || d.Log == nil || d.Log.Message != "abc" {
		t.Fatalf("got %+v, %v", d, err)
	}
}

// Monolog's eight levels map the same way in a device frame and in a queue
// item pushed by a PHP backend.
func TestMonologLevelsAreTheSameForFramesAndItems(t *testing.T) {
	want := map[string]string{"DEBUG": "debug", "INFO": "info", "NOTICE": "info", "WARNING": "warn",
		"ERROR": "error", "CRITICAL": "fatal", "ALERT": "fatal", "EMERGENCY": "fatal"}
	for monolog, lv := range want {
		frame := `{"type":"log","id":"a","data":{"level":"` + monolog + `","message":"m"}}`
		got := Limits{}.Parse([]byte(frame), testNow, nil)
		if len(got.Items) != 1 {
			t.Errorf("frame with level %s refused: %+v", monolog, got.Errors)
			continue
		}
		var fromFrame Log
		if err := json.Unmarshal(got.Items[0].Data, &fromFrame); err != nil || fromFrame.Level != lv {
			t.Errorf("frame level %s stored as %q (%v); want %q", monolog, fromFrame.Level, err, lv)
		}
		item := `{"v":1,"device":"d1","id":"a","type":"log","ts":5,"data":{"level":"` + monolog + `","message":"m"}}`
		d, err := Limits{}.DecodeQueueItem([]byte(item))
		if err != nil || d.Log.Level != lv {
			t.Errorf("item level %s: %+v, %v; want %q", monolog, d.Log, err, lv)
		}
	}
}

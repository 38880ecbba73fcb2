package wsgateway

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
)

func testCodec() *legacyCodec {
	cfg := LegacyConfig{Types: map[int64]string{4: protocol.TypeLog, 5: protocol.TypeLocation}}
	if err := cfg.setDefaults(); err != nil {
		panic(err)
	}
	return &legacyCodec{types: cfg.Types, location: cfg.Location}
}

func TestLegacyTranslate(t *testing.T) {
	lc := testCodec()
	for _, c := range []struct {
		name, in       string
		device, native string // native "" with code: refused
		code           string
	}{
		{"log with msg", `{"deviceId":"D123","type":4,"data":{"msg":"door opened","door":2}}`,
			"D123", `{"type":"log","data":{"level":"info","message":"door opened","fields":{"door":2}}}`, ""},
		{"message wins over msg; level read and kept", `{"deviceId":"D1","type":"4","data":{"msg":"a","level":"Error","message":"b"}}`,
			"D1", `{"type":"log","data":{"level":"error","message":"b","fields":{"msg":"a","level":"Error"}}}`, ""},
		{"a message that is no string stays in fields", `{"deviceId":"D1","type":4.0,"data":{"message":{"x":1}}}`,
			"D1", `{"type":"log","data":{"level":"info","message":"","fields":{"message":{"x":1}}}}`, ""},
		{"no data", `{"deviceId":42,"type":4}`, "42", `{"type":"log","data":{"level":"info","message":""}}`, ""},
		{"repeated key: first place, last value", `{"deviceId":"D1","type":4,"data":{"a":1,"b":2,"a":3}}`,
			"D1", `{"type":"log","data":{"level":"info","message":"","fields":{"a":3,"b":2}}}`, ""},
		{"location by the default keys", `{"deviceId":"D1","type":5,"data":{"longitude":121.5,"latitude":31.2,"lat":null,"speed":1,"x":0}}`,
			"D1", `{"type":"location","data":{"lat":31.2,"lng":121.5,"speed":1}}`, ""},
		{"location without lat", `{"deviceId":"D1","type":5,"data":{"lng":1}}`, "D1", "", protocol.CodeInvalidFrame},
		{"command result", `{"deviceId":"D1","type":"command_result","id":"c-1","ok":true,"data":{"up":1}}`,
			"D1", `{"type":"command_result","id":"c-1","ok":true,"data":{"up":1}}`, ""},
		{"unmapped type keeps the device", `{"deviceId":"D1","type":7,"data":{}}`, "D1", "", protocol.CodeInvalidFrame},
		{"no device", `{"type":4,"data":{}}`, "", "", protocol.CodeInvalidFrame},
		{"device not a string", `{"deviceId":true,"type":4}`, "", "", protocol.CodeInvalidFrame},
		{"data not an object", `{"deviceId":"D1","type":4,"data":"x"}`, "D1", "", protocol.CodeInvalidFrame},
		{"not an object", `[1]`, "", "", protocol.CodeInvalidJSON},
		{"null", `null`, "", "", protocol.CodeInvalidJSON},
	} {
		f, fe := lc.translate([]byte(c.in))
		if f.device != c.device {
			t.Errorf("%s: device %q, want %q", c.name, f.device, c.device)
		}
		if c.code != "" {
			if fe == nil || fe.Code != c.code {
				t.Errorf("%s: refusal %+v, want code %s", c.name, fe, c.code)
			}
			continue
		}
		if fe != nil || string(f.native) != c.native {
			t.Errorf("%s: %s, %+v\nwant %s", c.name, f.native, fe, c.native)
		}
	}
}

// FuzzLegacyFrame checks the translator against encoding/json: it never
// panics; what it accepts is a frame that Parse reads as JSON and turns into
// exactly one item, result or refusal; the device is deviceId as decoded;
// and an accepted log holds the message (data.message, else data.msg, when
// a string), the level, and every other key of data in fields, by value.
func FuzzLegacyFrame(f *testing.F) {
	for _, s := range []string{
		`{"deviceId":"D123","type":4,"data":{"msg":"door opened","door":2}}`,
		`{"deviceId":"D1","type":"4","data":{"msg":"a","level":"warn","message":"b","x":[1,{"y":null}]}}`,
		`{"deviceId":7,"type":5,"data":{"latitude":31.2,"longitude":121.5,"crs":"gcj02","speed":-1}}`,
		`{"deviceId":"D1","type":"command_result","id":"c-1","ok":false,"error":"no"}`,
		`{"deviceId":"D1","type":4,"data":{"a":1,"a":"\u0000","\ud800":2}}`,
		`{"deviceId":"D1","type":4,"data":null}`, `[]`, `{}`, `"x"`,
	} {
		f.Add([]byte(s))
	}
	lc := testCodec()
	now := time.Now()
	f.Fuzz(func(t *testing.T, raw []byte) {
		fr, fe := lc.translate(raw)
		if fe != nil {
			if fe.Code != protocol.CodeInvalidJSON && fe.Code != protocol.CodeInvalidFrame {
				t.Fatalf("refusal code %q for %q", fe.Code, raw)
			}
			return
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(raw, &top); err != nil {
			t.Fatalf("accepted %q, which encoding/json refuses: %v", raw, err)
		}
		var id string
		if json.Unmarshal(top["deviceId"], &id) != nil {
			id = string(bytes.TrimSpace(top["deviceId"]))
		}
		if fr.device != id || id == "" {
			t.Fatalf("device %q of %q, want %q", fr.device, raw, id)
		}
		p := protocol.Limits{}.Parse(fr.native, now, nil)
		if n := len(p.Items) + len(p.Errors) + len(p.Results); n != 1 || p.Pings != 0 {
			t.Fatalf("%q became %s: %d items, %d results, %d errors, %d pings; want one", raw, fr.native, len(p.Items), len(p.Results), len(p.Errors), p.Pings)
		}
		if len(p.Errors) == 1 && p.Errors[0].Code == protocol.CodeInvalidJSON {
			t.Fatalf("%q became %s, which is not JSON: %v", raw, fr.native, p.Errors[0])
		}
		if len(p.Items) == 0 || p.Items[0].Type != protocol.TypeLog {
			return
		}
		data := map[string]any{}
		if d := bytes.TrimSpace(top["data"]); len(d) > 0 && string(d) != "null" {
			if err := decodeNumbers(d, &data); err != nil {
				t.Fatalf("data of %q: %v", raw, err)
			}
		}
		msgKey := ""
		for _, k := range []string{"message", "msg"} {
			if _, ok := data[k].(string); ok {
				msgKey = k
				break
			}
		}
		wantMsg := ""
		if msgKey != "" {
			wantMsg = data[msgKey].(string)
			delete(data, msgKey)
		}
		wantLevel := "info"
		if s, ok := data["level"].(string); ok {
			if lv, ok := protocol.NormalizeLevel(s); ok {
				wantLevel = lv
			}
		}
		var got protocol.Log
		if err := json.Unmarshal(p.Items[0].Data, &got); err != nil {
			t.Fatal(err)
		}
		fields := map[string]any{}
		if len(got.Fields) > 0 {
			if err := decodeNumbers(got.Fields, &fields); err != nil {
				t.Fatal(err)
			}
		}
		// The store cannot hold NUL: Parse writes U+FFFD instead (two keys
		// that differ only so become one: which value wins is not checked).
		wantMsg, _ = noNUL(wantMsg)
		wantFields, merged := noNUL(data)
		if merged {
			return
		}
		if got.Message != wantMsg || got.Level != wantLevel || !reflect.DeepEqual(fields, wantFields) {
			t.Fatalf("%q became %s; want message %q, level %s, fields %v", raw, p.Items[0].Data, wantMsg, wantLevel, data)
		}
	})
}

func decodeNumbers(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

// noNUL replaces NUL with U+FFFD in every string and key of v; merged
// reports keys of an object that became one.
func noNUL[T any](v T) (_ T, merged bool) {
	var walk func(any) any
	walk = func(x any) any {
		switch x := x.(type) {
		case string:
			return strings.ReplaceAll(x, "\x00", "\uFFFD")
		case []any:
			out := make([]any, len(x))
			for i, e := range x {
				out[i] = walk(e)
			}
			return out
		case map[string]any:
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[walk(k).(string)] = walk(e)
			}
			merged = merged || len(out) != len(x)
			return out
		}
		return x
	}
	return walk(v).(T), merged
}

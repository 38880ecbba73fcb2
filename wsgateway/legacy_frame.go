package wsgateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/devtrack/devtrack/internal/protocol"
)

// The legacy frame translator: one message of legacy firmware,
// {"deviceId":"ID","type":N,"data":{...}}, becomes one frame of the device
// protocol, which the connection then handles exactly like a native one
// (Limits.Parse validates it, the rate limit, the push and the ack follow).
// It only moves keys around; every check of the data is Parse's.
//
// encoding/json rather than the hand-written scanner of internal/protocol:
// legacy firmware sends a few frames a minute, and the translated frame goes
// through that scanner anyway.

// legacyCodec translates legacy frames by the listener's configuration.
type legacyCodec struct {
	types    map[int64]string    // numeric type -> protocol.TypeLog or TypeLocation
	location map[string][]string // location field -> data keys to read it from, first present wins
}

// legacyFrame is one legacy message translated.
type legacyFrame struct {
	device string // its deviceId ("" when it has none)
	typ    string // protocol.TypeLog, TypeLocation or TypeCommandResult
	native []byte // the device protocol frame
}

// legacyLocationFields are the fields of a location, in the order written.
var legacyLocationFields = []string{"lat", "lng", "accuracy", "speed", "heading", "altitude", "crs"}

// translate reads one legacy message. A frame whose deviceId could be read
// keeps it in the result even when it is refused (err != nil): fleet mode
// binds a connection by it.
//
// The numeric type picks the mapping (legacyCodec.types). A log takes its
// message from data.message, else data.msg (the first that is a string), its
// level from data.level when that names a level (else info), and keeps every
// other key of data, level included, in fields, in the order sent. A
// location reads each field from the first of its data keys that is present
// (DefaultLegacyLocation); other keys are dropped, as for native locations.
// A frame whose type is the string "command_result" is passed on as the
// device protocol's command_result (id, ok, data, error), for firmware that
// learnt to answer commands. Frames carry no id or ts: the gateway assigns
// an id, and ts is the receive time.
func (lc *legacyCodec) translate(raw []byte) (legacyFrame, *protocol.FrameError) {
	var f legacyFrame
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil || top == nil {
		return f, legacyRefusal(protocol.CodeInvalidJSON, `a legacy frame is a JSON object {"deviceId":...,"type":N,"data":{...}}`)
	}
	var problem string
	for k, v := range top {
		top[k] = bytes.TrimSpace(v)
	}
	if f.device, problem = legacyDeviceID(top["deviceId"]); problem != "" {
		return f, legacyRefusal(protocol.CodeInvalidFrame, problem)
	}
	typRaw := top["type"]
	if string(typRaw) == `"`+protocol.TypeCommandResult+`"` {
		f.typ = protocol.TypeCommandResult
		f.native = commandResultFrame(top)
		return f, nil
	}
	n, ok := legacyType(typRaw)
	if !ok {
		return f, legacyRefusal(protocol.CodeInvalidFrame, "type must be an integer, not "+truncateRaw(typRaw))
	}
	if f.typ, ok = lc.types[n]; !ok {
		return f, legacyRefusal(protocol.CodeInvalidFrame, fmt.Sprintf("type %d is not mapped (--legacy-types)", n))
	}
	data := top["data"]
	if len(data) == 0 || string(data) == "null" {
		data = []byte("{}")
	}
	if data[0] != '{' {
		return f, legacyRefusal(protocol.CodeInvalidFrame, "data must be an object, not "+truncateRaw(data))
	}
	keys, vals, err := orderedMembers(data)
	if err != nil {
		return f, legacyRefusal(protocol.CodeInvalidJSON, "data: "+err.Error())
	}
	var native struct {
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	native.Type = f.typ
	switch f.typ {
	case protocol.TypeLog:
		native.Data = legacyLog(keys, vals)
	default: // protocol.TypeLocation
		if native.Data, problem = lc.legacyLocation(keys, vals); problem != "" {
			return f, legacyRefusal(protocol.CodeInvalidFrame, problem)
		}
	}
	b, err := json.Marshal(native)
	if err != nil {
		// Every part is valid JSON: this cannot happen.
		return f, legacyRefusal(protocol.CodeInternal, "cannot encode the frame: "+err.Error())
	}
	f.native = b
	return f, nil
}

func legacyRefusal(code, msg string) *protocol.FrameError {
	return &protocol.FrameError{Code: code, Message: msg}
}

// legacyDeviceID reads deviceId: a string, or an integer (firmware that
// numbers its devices), at most protocol.MaxDeviceIDLen bytes.
func legacyDeviceID(raw json.RawMessage) (string, string) {
	var id string
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return "", "deviceId is missing"
	case raw[0] == '"':
		if err := json.Unmarshal(raw, &id); err != nil {
			return "", "deviceId must be a string"
		}
	case isDigits(string(raw)):
		id = string(raw)
	default:
		return "", "deviceId must be a string, not " + truncateRaw(raw)
	}
	if id == "" {
		return "", "deviceId is empty"
	}
	if len(id) > protocol.MaxDeviceIDLen {
		return "", fmt.Sprintf("deviceId is %d bytes, the limit is %d", len(id), protocol.MaxDeviceIDLen)
	}
	return id, ""
}

// legacyType reads the numeric type: a JSON integer (4, also 4.0) or a string
// holding one ("4", as PHP may encode it).
func legacyType(raw json.RawMessage) (int64, bool) {
	s := string(raw)
	if len(raw) > 0 && raw[0] == '"' {
		if json.Unmarshal(raw, &s) != nil {
			return 0, false
		}
		s = strings.TrimSpace(s)
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// truncateRaw quotes a raw JSON value shortly for an error message.
func truncateRaw(raw []byte) string {
	if len(raw) == 0 {
		return "nothing"
	}
	if len(raw) > 32 {
		return string(raw[:32]) + "..."
	}
	return string(raw)
}

// orderedMembers splits a JSON object (valid JSON) into its keys and raw
// values in the order sent; a repeated key keeps its first place and its
// last value, as encoding/json keeps the last.
func orderedMembers(obj []byte) ([]string, []json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return nil, nil, err
	}
	var keys []string
	var vals []json.RawMessage
	at := map[string]int{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, nil, err
		}
		k, _ := t.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, nil, err
		}
		v = bytes.TrimSpace(v)
		if i, ok := at[k]; ok {
			vals[i] = v
			continue
		}
		at[k] = len(keys)
		keys = append(keys, k)
		vals = append(vals, v)
	}
	return keys, vals, nil
}

// legacyLog is the data of a native log: level, message, and the other keys
// in fields.
func legacyLog(keys []string, vals []json.RawMessage) json.RawMessage {
	msgAt := -1
	for _, name := range []string{"message", "msg"} {
		for i, k := range keys {
			if k == name && len(vals[i]) > 0 && vals[i][0] == '"' {
				msgAt = i
				break
			}
		}
		if msgAt >= 0 {
			break
		}
	}
	level := "info"
	for i, k := range keys {
		var s string
		if k == "level" && json.Unmarshal(vals[i], &s) == nil {
			if lv, ok := protocol.NormalizeLevel(s); ok {
				level = lv
			}
		}
	}
	b := []byte(`{"level":"` + level + `","message":`)
	if msgAt >= 0 {
		b = append(b, vals[msgAt]...)
	} else {
		b = append(b, `""`...)
	}
	if len(keys) > 1 || (len(keys) == 1 && msgAt < 0) {
		b = append(b, `,"fields":{`...)
		first := true
		for i, k := range keys {
			if i == msgAt {
				continue
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			kb, _ := json.Marshal(k)
			b = append(b, kb...)
			b = append(b, ':')
			b = append(b, vals[i]...)
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// legacyLocation is the data of a native location, each field read from the
// first of its data keys present (not null). It names the keys it looked
// for when lat or lng is missing.
func (lc *legacyCodec) legacyLocation(keys []string, vals []json.RawMessage) (json.RawMessage, string) {
	b := []byte{'{'}
	for _, field := range legacyLocationFields {
		v, found := json.RawMessage(nil), false
		for _, want := range lc.location[field] {
			for i, k := range keys {
				if k == want && string(vals[i]) != "null" {
					v, found = vals[i], true
					break
				}
			}
			if found {
				break
			}
		}
		if !found {
			if field == "lat" || field == "lng" {
				return nil, fmt.Sprintf("data has none of %s (the %s of a location; --legacy-location)",
					strings.Join(lc.location[field], ", "), field)
			}
			continue
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, `"`+field+`":`...)
		b = append(b, v...)
	}
	return append(b, '}'), ""
}

// commandResultFrame is the device protocol's command_result made of a
// legacy frame's id, ok, data and error (Parse checks them).
func commandResultFrame(top map[string]json.RawMessage) []byte {
	b := []byte(`{"type":"command_result"`)
	for _, k := range []string{"id", "ok", "data", "error"} {
		if v, ok := top[k]; ok {
			b = append(b, `,"`+k+`":`...)
			b = append(b, v...)
		}
	}
	return append(b, '}')
}

package bridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
)

// ErrMalformed is wrapped by the refusal of a message that cannot become a
// valid frame.
var ErrMalformed = errors.New("malformed message")

// Targets of a mapping: the frame fields a PATH may fill. device is always
// required; lat and lng for locations; message (or a template) for logs.
var (
	locationTargets = []string{"device", "id", "ts", "lat", "lng", "accuracy", "speed", "heading", "altitude", "crs"}
	logTargets      = []string{"device", "id", "ts", "message", "level"}
)

// Mapping says where, in a message, each frame field is. The zero value is
// not usable: build one with ParseMapping.
type Mapping struct {
	// Type is protocol.TypeLocation or protocol.TypeLog.
	Type string
	// Paths maps a target (device, lat, ...) to its dotted JSON path.
	Paths map[string][]string
	// Template, for logs without a message path, builds the message:
	// each {PATH} is replaced by the value at PATH ("" when absent).
	Template string
	// Level is the level of a log whose level path is absent or unmapped.
	Level string
}

var placeholder = regexp.MustCompile(`\{([^{}]+)\}`)

// ParseMapping reads the --map flag: comma-separated target=PATH pairs,
// PATH a dotted JSON path (user.username; an array element is a number:
// points.0.lat). typ is location (default when "") or log; template and
// level are the log's --message-template and --level.
func ParseMapping(spec, typ, template, level string) (Mapping, error) {
	if typ == "" {
		typ = protocol.TypeLocation
	}
	var targets []string
	switch typ {
	case protocol.TypeLocation:
		targets = locationTargets
	case protocol.TypeLog:
		targets = logTargets
	default:
		return Mapping{}, fmt.Errorf("type %q: want %s or %s", typ, protocol.TypeLocation, protocol.TypeLog)
	}
	m := Mapping{Type: typ, Paths: map[string][]string{}, Template: template, Level: level}
	for pair := range strings.SplitSeq(spec, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		target, path, ok := strings.Cut(pair, "=")
		target, path = strings.TrimSpace(target), strings.TrimSpace(path)
		if !ok || path == "" {
			return Mapping{}, fmt.Errorf("map %q: want target=PATH", pair)
		}
		if !contains(targets, target) {
			return Mapping{}, fmt.Errorf("map %q: %s is not a %s field; want one of %s", pair, target, typ, strings.Join(targets, ", "))
		}
		if _, dup := m.Paths[target]; dup {
			return Mapping{}, fmt.Errorf("map: %s is mapped twice", target)
		}
		segs, err := splitPath(path)
		if err != nil {
			return Mapping{}, fmt.Errorf("map %q: %w", pair, err)
		}
		m.Paths[target] = segs
	}
	need := []string{"device"}
	if typ == protocol.TypeLocation {
		need = append(need, "lat", "lng")
		if template != "" {
			return Mapping{}, errors.New("a message template is for --type log")
		}
	}
	for _, n := range need {
		if _, ok := m.Paths[n]; !ok {
			return Mapping{}, fmt.Errorf("map: %s=PATH is required", n)
		}
	}
	if typ == protocol.TypeLog {
		_, hasMessage := m.Paths["message"]
		switch {
		case hasMessage && template != "":
			return Mapping{}, errors.New("map message=PATH and a message template exclude each other")
		case !hasMessage && template == "":
			return Mapping{}, errors.New("a log needs map message=PATH or a message template")
		}
		for _, ph := range placeholder.FindAllStringSubmatch(template, -1) {
			if _, err := splitPath(ph[1]); err != nil {
				return Mapping{}, fmt.Errorf("message template {%s}: %w", ph[1], err)
			}
		}
		if m.Level == "" {
			m.Level = "info"
		}
		if _, ok := protocol.NormalizeLevel(m.Level); !ok {
			return Mapping{}, fmt.Errorf("level %q: want one of %s", m.Level, strings.Join(protocol.Levels, ", "))
		}
	}
	return m, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func splitPath(path string) ([]string, error) {
	segs := strings.Split(path, ".")
	for _, s := range segs {
		if s == "" {
			return nil, fmt.Errorf("path %q has an empty segment", path)
		}
	}
	return segs, nil
}

// message is one decoded message of the other system.
type message struct {
	root any // from encoding/json with UseNumber
	body []byte
}

func decodeMessage(body []byte) (message, error) {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var root any
	if err := d.Decode(&root); err != nil {
		return message{}, fmt.Errorf("%w: not JSON: %v", ErrMalformed, err)
	}
	if d.More() {
		return message{}, fmt.Errorf("%w: not JSON: data after the value", ErrMalformed)
	}
	if _, ok := root.(map[string]any); !ok {
		return message{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	return message{root: root, body: body}, nil
}

// lookup returns the value at path, or false when some segment is absent
// (or the value is null).
func (m message) lookup(path []string) (any, bool) {
	v := m.root
	for _, seg := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(x) {
				return nil, false
			}
			v = x[i]
		default:
			return nil, false
		}
	}
	return v, v != nil
}

// text reads a string or a number (a uid of 17) as text.
func (m message) text(target string, path []string) (string, bool, error) {
	v, ok := m.lookup(path)
	if !ok {
		return "", false, nil
	}
	switch x := v.(type) {
	case string:
		return x, true, nil
	case json.Number:
		return x.String(), true, nil
	}
	return "", false, fmt.Errorf("%w: %s (%s) is %s, want a string or a number", ErrMalformed, target, strings.Join(path, "."), kind(v))
}

// number reads a number, or a string holding one ("31.23"), as many APIs
// send coordinates.
func (m message) number(target string, path []string) (float64, bool, error) {
	v, ok := m.lookup(path)
	if !ok {
		return 0, false, nil
	}
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	default:
		return 0, false, fmt.Errorf("%w: %s (%s) is %s, want a number", ErrMalformed, target, strings.Join(path, "."), kind(v))
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, false, fmt.Errorf("%w: %s (%s) is %q, want a number", ErrMalformed, target, strings.Join(path, "."), s)
	}
	return f, true, nil
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	}
	return "null"
}

// secondsBelow: a ts below it is in seconds (1e11 ms is March 1973, 1e11 s
// the year 5138), the rule the worker applies to producer items.
const secondsBelow = 1e11

// ts reads the mapped time: Unix seconds or milliseconds (a number, or a
// string holding one), or an RFC 3339 string. 0 when unmapped or absent,
// and the parser then takes the receive time.
func (m message) ts(path []string) (int64, error) {
	if path == nil {
		return 0, nil
	}
	if v, ok := m.lookup(path); ok {
		if s, isStr := v.(string); isStr {
			if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
				return t.UnixMilli(), nil
			}
		}
	}
	f, ok, err := m.number("ts", path)
	if err != nil || !ok {
		return 0, err
	}
	if f < 0 {
		return 0, fmt.Errorf("%w: ts (%s) %v is negative", ErrMalformed, strings.Join(path, "."), f)
	}
	if f < secondsBelow {
		f *= 1000
	}
	return int64(math.Round(f)), nil
}

// frame is what a device would have sent for this message.
type frame struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	TS   int64           `json:"ts,omitempty"`
	Data json.RawMessage `json:"data"`
}

// device returns the device id the message names.
func (mp *Mapping) device(m message) (string, error) {
	d, ok, err := m.text("device", mp.Paths["device"])
	if err != nil {
		return "", err
	}
	if !ok || d == "" {
		return "", fmt.Errorf("%w: no device at %s", ErrMalformed, strings.Join(mp.Paths["device"], "."))
	}
	return d, nil
}

// build returns the frame for message m. fallbackID is its id when the
// mapping names none (or the message has none there).
func (mp *Mapping) build(m message, fallbackID string) ([]byte, error) {
	f := frame{Type: mp.Type, ID: fallbackID}
	if p, mapped := mp.Paths["id"]; mapped {
		id, ok, err := m.text("id", p)
		if err != nil {
			return nil, err
		}
		if ok && id != "" {
			f.ID = id
		}
	}
	var err error
	if f.TS, err = m.ts(mp.Paths["ts"]); err != nil {
		return nil, err
	}
	data := map[string]any{}
	switch mp.Type {
	case protocol.TypeLocation:
		for _, t := range []string{"lat", "lng", "accuracy", "speed", "heading", "altitude"} {
			p, mapped := mp.Paths[t]
			if !mapped {
				continue
			}
			v, ok, err := m.number(t, p)
			if err != nil {
				return nil, err
			}
			if !ok {
				if t == "lat" || t == "lng" {
					return nil, fmt.Errorf("%w: no %s at %s", ErrMalformed, t, strings.Join(p, "."))
				}
				continue
			}
			data[t] = v
		}
		if p, mapped := mp.Paths["crs"]; mapped {
			crs, ok, err := m.text("crs", p)
			if err != nil {
				return nil, err
			}
			if ok {
				data["crs"] = strings.ToLower(crs)
			}
		}
	case protocol.TypeLog:
		if err := mp.logData(m, data); err != nil {
			return nil, err
		}
	}
	if f.Data, err = json.Marshal(data); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return json.Marshal(f)
}

func (mp *Mapping) logData(m message, data map[string]any) error {
	if p, mapped := mp.Paths["message"]; mapped {
		msg, ok, err := m.text("message", p)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: no message at %s", ErrMalformed, strings.Join(p, "."))
		}
		data["message"] = msg
	} else {
		data["message"] = placeholder.ReplaceAllStringFunc(mp.Template, func(ph string) string {
			segs, _ := splitPath(ph[1 : len(ph)-1])
			s, _, err := m.text("", segs)
			if err != nil {
				// An object or array: its JSON.
				v, _ := m.lookup(segs)
				b, _ := json.Marshal(v)
				return string(b)
			}
			return s
		})
	}
	data["level"] = mp.Level
	if p, mapped := mp.Paths["level"]; mapped {
		if lvl, ok, err := m.text("level", p); err != nil {
			return err
		} else if ok {
			data["level"] = lvl
		}
	}
	// Every top-level member that no mapping reads is kept in fields.
	used := map[string]bool{}
	for _, p := range mp.Paths {
		used[p[0]] = true
	}
	fields := map[string]any{}
	for k, v := range m.root.(map[string]any) {
		if !used[k] {
			fields[k] = v
		}
	}
	if len(fields) > 0 {
		data["fields"] = fields
	}
	return nil
}

// bodyID is the id of a message that carries none: a hash of its body, so
// that a redelivered message gets the same id and is stored once.
func bodyID(body []byte) string {
	sum := sha256.Sum256(body)
	return "b-" + hex.EncodeToString(sum[:16])
}

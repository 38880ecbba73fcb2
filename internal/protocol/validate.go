package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the checks shared by Parse (device frames) and DecodeItem
// (queue items): both must accept exactly the same data, so that whatever the
// gateway puts on the ingest list a worker takes off it. The data given to
// decodeLocation and decodeLog is always valid JSON already.

// isNull reports whether a raw JSON value is absent or null.
func isNull(raw []byte) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// jsonString decodes a raw JSON value that must be a string. ok is false for
// any other JSON type. Invalid UTF-8 in the raw bytes is reported through
// validUTF8 rather than silently replaced, so that ids stay byte-exact.
func jsonString(raw []byte) (s string, validUTF8, ok bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false, false
	}
	validUTF8 = utf8.Valid(raw)
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return string(body), validUTF8, true
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, false
	}
	return s, validUTF8, true
}

// idProblem returns what is wrong with a message or device id, or "".
func idProblem(what, id string, maxLen int) string {
	if len(id) > maxLen {
		return fmt.Sprintf("%s is %d bytes, the limit is %d", what, len(id), maxLen)
	}
	for _, r := range id {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return what + " contains control characters"
		}
	}
	return ""
}

// typeProblem turns an encoding/json decoding error into a message that
// names the field, without Go type names.
func typeProblem(prefix string, err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		want := jsonKind(te.Type)
		if te.Field == "" {
			return fmt.Sprintf("%s must be %s, not %s", prefix, want, te.Value)
		}
		return fmt.Sprintf("%s.%s must be %s, not %s", prefix, te.Field, want, te.Value)
	}
	return prefix + ": " + err.Error()
}

func jsonKind(t reflect.Type) string {
	if t == nil {
		return "a value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Float32, reflect.Float64:
		return "a finite number"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "a " + t.Kind().String()
}

// optFloat is an optional number, kept by value so that decoding a location
// allocates nothing.
type optFloat struct {
	v  float64
	ok bool
}

func (o optFloat) ptr() *float64 {
	if !o.ok {
		return nil
	}
	v := o.v
	return &v
}

func opt(p *float64) optFloat {
	if p == nil {
		return optFloat{}
	}
	return optFloat{*p, true}
}

// locFields is a normalised location: the value form of Location.
type locFields struct {
	lat, lng                           float64
	accuracy, speed, heading, altitude optFloat
	crs                                string // "" (WGS-84), CRSGCJ02 or CRSBD09
	origLat, origLng                   optFloat
}

func (f *locFields) location() Location {
	return Location{
		Lat: f.lat, Lng: f.lng,
		Accuracy: f.accuracy.ptr(), Speed: f.speed.ptr(), Heading: f.heading.ptr(), Altitude: f.altitude.ptr(),
		CRS:     f.crs,
		OrigLat: f.origLat.ptr(), OrigLng: f.origLng.ptr(),
	}
}

func fieldsOf(loc *Location) locFields {
	return locFields{
		lat: loc.Lat, lng: loc.Lng,
		accuracy: opt(loc.Accuracy), speed: opt(loc.Speed), heading: opt(loc.Heading), altitude: opt(loc.Altitude),
		crs:     loc.CRS,
		origLat: opt(loc.OrigLat), origLng: opt(loc.OrigLng),
	}
}

// decodeLocation checks a location's data and returns it normalised: WGS-84
// lat/lng, crs "" for WGS-84, heading in [0, 360). Unknown members are
// dropped; so are orig_lat/orig_lng from a device, which reports one
// position in one CRS. fromItem selects the queue item form, where a
// non-WGS-84 crs with orig_lat/orig_lng present means that the conversion
// was already done. defaultCRS is the crs of a location that names none
// (Options.DefaultCRS; "" is WGS-84).
func decodeLocation(data []byte, fromItem bool, defaultCRS string) (locFields, string) {
	var f locFields
	if isNull(data) {
		return f, "data is required"
	}
	if data[0] != '{' {
		return f, "data must be an object, not " + kindOf(data)
	}
	var lat, lng, hAccuracy optFloat
	var crsRaw []byte
	it := newObjectIter(data)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		var dst *optFloat
		var name string
		switch k := unescapeKey(k); string(k) {
		case "lat", "latitude":
			// latitude, longitude and horizontalAccuracy are the names of
			// the location object of WeChat and uni-app mini-programs
			// (wx.onLocationChange), which can be posted as it is.
			dst, name = &lat, string(k)
		case "lng", "longitude":
			dst, name = &lng, string(k)
		case "accuracy":
			dst, name = &f.accuracy, "accuracy"
		case "horizontalAccuracy":
			dst, name = &hAccuracy, "horizontalAccuracy"
		case "speed":
			dst, name = &f.speed, "speed"
		case "heading":
			dst, name = &f.heading, "heading"
		case "altitude":
			dst, name = &f.altitude, "altitude"
		case "orig_lat":
			if fromItem {
				dst, name = &f.origLat, "orig_lat"
			}
		case "orig_lng":
			if fromItem {
				dst, name = &f.origLng, "orig_lng"
			}
		case "crs":
			crsRaw = v
		}
		if dst == nil {
			continue
		}
		if isNull(v) {
			*dst = optFloat{}
			continue
		}
		x, ok := jsonFloat(v)
		if !ok {
			if kindOf(v) == "number" {
				return f, fmt.Sprintf("data.%s %s is out of range", name, truncate(string(v), 32))
			}
			return f, fmt.Sprintf("data.%s must be a finite number, not %s", name, kindOf(v))
		}
		*dst = optFloat{x, true}
	}
	if !lat.ok || !lng.ok {
		return f, "data.lat and data.lng (or latitude and longitude) are required"
	}
	if hAccuracy.ok {
		// The radius of the position, which is what accuracy means here; a
		// mini-program's accuracy may be another estimate.
		f.accuracy = hAccuracy
	}
	f.lat, f.lng = lat.v, lng.v
	if p := checkLatLng("data.", f.lat, f.lng); p != "" {
		return f, p
	}
	if v := f.accuracy; v.ok && !(v.v >= 0) {
		return f, fmt.Sprintf("data.accuracy %g is negative", v.v)
	}
	if v := f.speed; v.ok && v.v < 0 {
		// iOS and the mini-program APIs report an unknown speed as -1.
		f.speed = optFloat{}
	}
	if v := f.heading; v.ok {
		if !(v.v >= 0 && v.v <= 360) {
			return f, fmt.Sprintf("data.heading %g is outside [0, 360]", v.v)
		}
		if v.v == 360 {
			f.heading.v = 0
		}
	}

	if isNull(crsRaw) {
		f.crs = defaultCRS
	} else {
		body, ok := stringBody(crsRaw)
		if !ok {
			return f, "data.crs must be a string, not " + kindOf(crsRaw)
		}
		switch {
		case len(body) == 0 || strings.EqualFold(string(body), CRSWGS84):
			// f.crs stays "": WGS-84 needs no note.
		case strings.EqualFold(string(body), CRSGCJ02):
			f.crs = CRSGCJ02
		case strings.EqualFold(string(body), CRSBD09):
			f.crs = CRSBD09
		default:
			return f, fmt.Sprintf("data.crs %q is not one of wgs84, gcj02, bd09", truncate(string(body), 16))
		}
	}
	if f.crs == "" {
		f.origLat, f.origLng = optFloat{}, optFloat{}
		return f, ""
	}
	if fromItem && f.origLat.ok && f.origLng.ok {
		// Already converted by whoever produced the item.
		if p := checkLatLng("data.orig_", f.origLat.v, f.origLng.v); p != "" {
			return f, p
		}
		return f, ""
	}
	f.origLat, f.origLng = optFloat{f.lat, true}, optFloat{f.lng, true}
	f.lat, f.lng, _ = ToWGS84(f.crs, f.lat, f.lng)
	if p := checkLatLng("data.", f.lat, f.lng); p != "" {
		return f, "converted to WGS-84, " + p
	}
	return f, ""
}

// stringBody returns the bytes between the quotes of a raw JSON string with
// escapes resolved (allocating only if there are any).
func stringBody(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return nil, false
	}
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return body, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return nil, false
	}
	return []byte(s), true
}

func checkLatLng(prefix string, lat, lng float64) string {
	if !(lat >= -90 && lat <= 90) {
		return fmt.Sprintf("%slat %g is outside [-90, 90]", prefix, lat)
	}
	if !(lng >= -180 && lng <= 180) {
		return fmt.Sprintf("%slng %g is outside [-180, 180]", prefix, lng)
	}
	return ""
}

// appendLocation appends f as JSON, byte for byte what json.Marshal of the
// equivalent Location produces, without reflection or allocation.
func appendLocation(b []byte, f *locFields) []byte {
	b = append(b, `{"lat":`...)
	b = appendFloat(b, f.lat)
	b = append(b, `,"lng":`...)
	b = appendFloat(b, f.lng)
	b = appendOptFloat(b, `,"accuracy":`, f.accuracy)
	b = appendOptFloat(b, `,"speed":`, f.speed)
	b = appendOptFloat(b, `,"heading":`, f.heading)
	b = appendOptFloat(b, `,"altitude":`, f.altitude)
	if f.crs != "" {
		b = append(b, `,"crs":`...)
		b = appendString(b, f.crs)
	}
	b = appendOptFloat(b, `,"orig_lat":`, f.origLat)
	b = appendOptFloat(b, `,"orig_lng":`, f.origLng)
	return append(b, '}')
}

func appendOptFloat(b []byte, key string, v optFloat) []byte {
	if !v.ok {
		return b
	}
	return appendFloat(append(b, key...), v.v)
}

// appendFloat formats f as encoding/json does (its float64 encoder).
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

// appendString appends s as a JSON string the way json.Marshal does: HTML
// characters and U+2028/U+2029 escaped, invalid UTF-8 replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// appendCompact appends valid JSON src as json.Marshal would embed it as a
// json.RawMessage: without insignificant whitespace, with <, >, & and
// U+2028/U+2029 escaped inside strings. That makes the result a fixed point
// of marshalling, so Data stays byte-identical through the queue. It also
// rewrites every \u0000 escape as \ufffd: PostgreSQL text and jsonb cannot
// hold NUL.
func appendCompact(b, src []byte) []byte {
	const hex = "0123456789abcdef"
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch c {
			case '"':
				inString = false
			case '\\':
				if i+5 < len(src) && string(src[i+1:i+6]) == "u0000" {
					b = append(b, `\ufffd`...)
					i += 5
					continue
				}
				if i+1 < len(src) {
					b = append(b, c, src[i+1])
					i++
					continue
				}
			case '<', '>', '&':
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
				continue
			case 0xe2:
				if i+2 < len(src) && src[i+1] == 0x80 && src[i+2]&^1 == 0xa8 {
					b = append(b, '\\', 'u', '2', '0', '2', hex[src[i+2]&0xf])
					i += 2
					continue
				}
			}
			b = append(b, c)
			continue
		}
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '"':
			inString = true
		}
		b = append(b, c)
	}
	return b
}

// levelAliases maps common spellings from logging libraries to Levels, the
// same for device frames and queue items. Monolog's (and syslog's) eight
// levels map onto the five: NOTICE ("normal but significant") is info,
// since devtrack has nothing between info and warn; CRITICAL, ALERT and
// EMERGENCY all need someone at once and are fatal. The README lists them.
var levelAliases = map[string]string{
	"debug": "debug", "trace": "debug",
	"info": "info", "notice": "info",
	"warn": "warn", "warning": "warn",
	"error": "error", "err": "error",
	"fatal": "fatal", "critical": "fatal", "crit": "fatal", "panic": "fatal",
	"alert": "fatal", "emergency": "fatal", "emerg": "fatal",
}

// maxLevelLen is the longest key of levelAliases ("emergency").
const maxLevelLen = 9

// NormalizeLevel returns the canonical level (one of Levels) for s, accepting
// any case and the aliases of common logging libraries ("warning", "err",
// "trace", "critical", Monolog's "NOTICE", "ALERT", "EMERGENCY").
func NormalizeLevel(s string) (string, bool) {
	return normalizeLevel([]byte(s))
}

func normalizeLevel(s []byte) (string, bool) {
	var buf [maxLevelLen]byte
	if len(s) > len(buf) {
		return "", false
	}
	for i, c := range s {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	lv, ok := levelAliases[string(buf[:len(s)])]
	return lv, ok
}

// logFields is a normalised log.
type logFields struct {
	level   string // one of Levels
	message string
	fields  []byte // raw JSON object from the input, or nil
}

// decodeLog checks a log's data: a known level, a UTF-8 message within
// MaxMessageLen, fields an object within MaxFieldsLen.
func decodeLog(data []byte, l *Limits) (logFields, string) {
	var f logFields
	if isNull(data) {
		return f, "data is required"
	}
	if data[0] != '{' {
		return f, "data must be an object, not " + kindOf(data)
	}
	var level, message, fields []byte
	it := newObjectIter(data)
	for k, v, ok := it.next(); ok; k, v, ok = it.next() {
		switch string(unescapeKey(k)) {
		case "level":
			level = v
		case "message":
			message = v
		case "fields":
			fields = v
		}
	}
	if isNull(level) {
		return f, "data.level is required"
	}
	lv, ok := stringBody(level)
	if !ok {
		return f, "data.level must be a string, not " + kindOf(level)
	}
	if f.level, ok = normalizeLevel(lv); !ok {
		return f, fmt.Sprintf("data.level %q is not one of %s", truncate(string(lv), 16), strings.Join(Levels, ", "))
	}
	if isNull(message) {
		return f, "data.message is required"
	}
	msg, valid, ok := jsonString(message)
	switch {
	case !ok:
		return f, "data.message must be a string, not " + kindOf(message)
	case !valid:
		return f, "data.message is not valid UTF-8"
	case len(msg) > l.MaxMessageLen:
		return f, fmt.Sprintf("data.message is %d bytes, the limit is %d", len(msg), l.MaxMessageLen)
	}
	if strings.IndexByte(msg, 0) >= 0 {
		msg = strings.ReplaceAll(msg, "\x00", "\uFFFD")
	}
	f.message = msg
	if !isNull(fields) {
		switch {
		case fields[0] != '{':
			return f, "data.fields must be an object, not " + kindOf(fields)
		case len(fields) > l.MaxFieldsLen:
			return f, fmt.Sprintf("data.fields is %d bytes, the limit is %d", len(fields), l.MaxFieldsLen)
		case !utf8.Valid(fields):
			return f, "data.fields is not valid UTF-8"
		}
		f.fields = fields
	}
	return f, ""
}

// maxJSON bounds the size of appendLog's output for f: every message byte
// may become a 6-byte escape; compacting never grows fields.
func (f *logFields) maxJSON() int {
	return 48 + 6*len(f.message) + len(f.fields)
}

// appendLog appends f as the JSON of a Log.
func appendLog(b []byte, f *logFields) []byte {
	b = append(b, `{"level":"`...)
	b = append(b, f.level...) // a Levels constant: no escaping
	b = append(b, `","message":`...)
	b = appendString(b, f.message)
	if f.fields != nil {
		b = append(b, `,"fields":`...)
		b = appendCompact(b, f.fields)
	}
	return append(b, '}')
}

// truncate shortens s for quoting in an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

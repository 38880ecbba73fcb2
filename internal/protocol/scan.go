package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// A minimal JSON scanner for the device frame hot path. encoding/json spends
// most of a frame's time validating and re-scanning json.RawMessage fields
// (six passes over a batch item, with reflection); device frames have a tiny
// fixed schema, so Parse validates the message once with validJSON (which
// accepts exactly what json.Valid accepts: FuzzValidJSON checks it) and then
// walks the already-valid bytes with objectIter and arrayIter, decoding only
// the members it knows. Nothing here allocates except unescaping a string
// that contains a backslash.

// maxNesting matches encoding/json's depth limit, so that validJSON and
// json.Valid agree on every input.
const maxNesting = 10000

// scanner walks b from pos. Its methods return false on a syntax error,
// leaving pos at the offending byte.
type scanner struct {
	b   []byte
	pos int
}

func (s *scanner) ws() {
	for s.pos < len(s.b) {
		switch s.b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one value starting at pos (no leading whitespace). depth is
// the nesting level of the value's container.
func (s *scanner) value(depth int) bool {
	if s.pos >= len(s.b) {
		return false
	}
	switch c := s.b[s.pos]; {
	case c == '"':
		return s.str()
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	}
	return false
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.pos < len(lit) || string(s.b[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// str skips a string; pos is at its opening quote.
func (s *scanner) str() bool {
	s.pos++ // opening quote
	for s.pos < len(s.b) {
		c := s.b[s.pos]
		switch {
		case c == '"':
			s.pos++
			return true
		case c == '\\':
			s.pos++
			if s.pos >= len(s.b) {
				return false
			}
			switch s.b[s.pos] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for range 4 {
					if s.pos >= len(s.b) || !isHex(s.b[s.pos]) {
						return false
					}
					s.pos++
				}
			default:
				return false
			}
		case c < 0x20:
			return false
		default:
			s.pos++
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func (s *scanner) digits() int {
	n := 0
	for s.pos < len(s.b) && s.b[s.pos] >= '0' && s.b[s.pos] <= '9' {
		s.pos++
		n++
	}
	return n
}

// number skips -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() bool {
	if s.b[s.pos] == '-' {
		s.pos++
	}
	if s.pos >= len(s.b) {
		return false
	}
	if s.b[s.pos] == '0' {
		s.pos++
	} else if s.digits() == 0 {
		return false
	}
	if s.pos < len(s.b) && s.b[s.pos] == '.' {
		s.pos++
		if s.digits() == 0 {
			return false
		}
	}
	if s.pos < len(s.b) && (s.b[s.pos] == 'e' || s.b[s.pos] == 'E') {
		s.pos++
		if s.pos < len(s.b) && (s.b[s.pos] == '+' || s.b[s.pos] == '-') {
			s.pos++
		}
		if s.digits() == 0 {
			return false
		}
	}
	return true
}

func (s *scanner) object(depth int) bool {
	if depth > maxNesting {
		return false
	}
	s.pos++ // {
	s.ws()
	if s.pos < len(s.b) && s.b[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		if s.pos >= len(s.b) || s.b[s.pos] != '"' || !s.str() {
			return false
		}
		s.ws()
		if s.pos >= len(s.b) || s.b[s.pos] != ':' {
			return false
		}
		s.pos++
		s.ws()
		if !s.value(depth) {
			return false
		}
		s.ws()
		if s.pos >= len(s.b) {
			return false
		}
		switch s.b[s.pos] {
		case ',':
			s.pos++
			s.ws()
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) array(depth int) bool {
	if depth > maxNesting {
		return false
	}
	s.pos++ // [
	s.ws()
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		s.pos++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.ws()
		if s.pos >= len(s.b) {
			return false
		}
		switch s.b[s.pos] {
		case ',':
			s.pos++
			s.ws()
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// validJSON checks that b is exactly one JSON value with optional
// surrounding whitespace, as json.Valid does, and describes the first error.
func validJSON(b []byte) error {
	s := scanner{b: b}
	s.ws()
	if s.value(0) {
		s.ws()
		if s.pos == len(b) {
			return nil
		}
		return fmt.Errorf("unexpected %s after the top-level value at offset %d", describeByte(b, s.pos), s.pos)
	}
	if s.pos >= len(b) {
		return fmt.Errorf("unexpected end of JSON input at offset %d", s.pos)
	}
	return fmt.Errorf("invalid JSON: unexpected %s at offset %d", describeByte(b, s.pos), s.pos)
}

func describeByte(b []byte, i int) string {
	if i >= len(b) {
		return "end of input"
	}
	if c := b[i]; c >= 0x20 && c < 0x7f {
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", b[i])
}

// objectIter walks the members of a valid JSON object.
type objectIter struct {
	s scanner
}

func newObjectIter(obj []byte) objectIter {
	return objectIter{s: scanner{b: obj}}
}

// next returns the next member's raw key (without quotes, escapes intact)
// and raw value, or ok=false at the end of the object.
func (it *objectIter) next() (key, val []byte, ok bool) {
	s := &it.s
	s.ws()
	if s.pos >= len(s.b) {
		return nil, nil, false
	}
	switch s.b[s.pos] {
	case '{', ',':
		s.pos++
		s.ws()
	default:
		return nil, nil, false
	}
	if s.pos >= len(s.b) || s.b[s.pos] != '"' {
		return nil, nil, false // "{}" or not an object
	}
	ks := s.pos
	if !s.str() {
		return nil, nil, false
	}
	key = s.b[ks+1 : s.pos-1]
	s.ws()
	if s.pos >= len(s.b) || s.b[s.pos] != ':' {
		return nil, nil, false
	}
	s.pos++
	s.ws()
	vs := s.pos
	if !s.value(0) {
		return nil, nil, false
	}
	return key, s.b[vs:s.pos], true
}

// arrayIter walks the elements of a valid JSON array.
type arrayIter struct {
	s scanner
}

func newArrayIter(arr []byte) arrayIter {
	return arrayIter{s: scanner{b: arr}}
}

func (it *arrayIter) next() ([]byte, bool) {
	s := &it.s
	s.ws()
	if s.pos >= len(s.b) {
		return nil, false
	}
	switch s.b[s.pos] {
	case '[', ',':
		s.pos++
		s.ws()
	default:
		return nil, false
	}
	if s.pos < len(s.b) && s.b[s.pos] == ']' {
		return nil, false
	}
	vs := s.pos
	if !s.value(0) {
		return nil, false
	}
	return s.b[vs:s.pos], true
}

// countElements returns the number of elements of a valid JSON array.
func countElements(arr []byte) int {
	n := 0
	it := newArrayIter(arr)
	for _, ok := it.next(); ok; _, ok = it.next() {
		n++
	}
	return n
}

// unescapeKey returns a member key with escapes resolved: the key itself
// when it has none (almost always), else a decoded copy ("" if broken).
func unescapeKey(key []byte) []byte {
	if bytes.IndexByte(key, '\\') < 0 {
		return key
	}
	var s string
	quoted := make([]byte, 0, len(key)+2)
	quoted = append(append(append(quoted, '"'), key...), '"')
	if json.Unmarshal(quoted, &s) != nil {
		return nil
	}
	return []byte(s)
}

// kindOf names the JSON type of a valid raw value, for error messages.
func kindOf(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch c := v[0]; {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "bool"
	case c == 'n':
		return "null"
	}
	return "number"
}

// jsonFloat decodes a raw value that must be a finite number.
func jsonFloat(v []byte) (float64, bool) {
	if len(v) == 0 || (v[0] != '-' && (v[0] < '0' || v[0] > '9')) {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

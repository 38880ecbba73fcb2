package storage

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Page sizes of Locations and Logs.
const (
	DefaultPageLimit = 100  // when a query asks for 0 or less
	MaxPageLimit     = 1000 // larger requests are cut to this
)

// PageLimit applies the default and the cap to a requested page size.
func PageLimit(n int) int {
	switch {
	case n <= 0:
		return DefaultPageLimit
	case n > MaxPageLimit:
		return MaxPageLimit
	}
	return n
}

// EncodeCursor makes the opaque cursor of the position after a row: pages
// are ordered by (ts DESC, seq DESC), seq being the store's row number, so
// the next page starts below (ts, seq). The form is base64url("ts:seq") on
// every store; a cursor names a position in one store and is not meant to
// move between them.
func EncodeCursor(ts, seq int64) string {
	var b [48]byte
	s := strconv.AppendInt(b[:0], ts, 10)
	s = append(s, ':')
	s = strconv.AppendInt(s, seq, 10)
	return base64.RawURLEncoding.EncodeToString(s)
}

// DecodeCursor parses a cursor made by EncodeCursor; anything else is
// ErrBadCursor.
func DecodeCursor(s string) (ts, seq int64, err error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: not base64", ErrBadCursor)
	}
	tsStr, seqStr, ok := strings.Cut(string(raw), ":")
	if !ok {
		return 0, 0, fmt.Errorf("%w: malformed", ErrBadCursor)
	}
	ts, err1 := strconv.ParseInt(tsStr, 10, 64)
	seq, err2 := strconv.ParseInt(seqStr, 10, 64)
	if err1 != nil || err2 != nil || seq <= 0 {
		return 0, 0, fmt.Errorf("%w: malformed", ErrBadCursor)
	}
	return ts, seq, nil
}

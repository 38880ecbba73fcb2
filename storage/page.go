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

// Cursor is the position after a row of a page: pages are ordered by
// (ts DESC, seq DESC), so the next page starts below (TS, Seq). A store
// scans the last row of a page into it and hands Encode to the client.
type Cursor struct {
	TS  int64 // the row's ts, Unix ms
	Seq int64 // the row's number in its store, at least 1
}

// Encode makes the opaque form that clients hold: base64url("ts:seq")
// without padding, on every store. Clients keep cursors across releases, so
// this form must not change. A cursor names a position in one store and is
// not meant to move between them.
func (c Cursor) Encode() string {
	var b [48]byte
	s := strconv.AppendInt(b[:0], c.TS, 10)
	s = append(s, ':')
	s = strconv.AppendInt(s, c.Seq, 10)
	return base64.RawURLEncoding.EncodeToString(s)
}

// DecodeCursor parses a cursor made by Cursor.Encode; anything else is
// ErrBadCursor.
func DecodeCursor(s string) (Cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, fmt.Errorf("%w: not base64", ErrBadCursor)
	}
	tsStr, seqStr, ok := strings.Cut(string(raw), ":")
	if !ok {
		return Cursor{}, fmt.Errorf("%w: malformed", ErrBadCursor)
	}
	ts, err1 := strconv.ParseInt(tsStr, 10, 64)
	seq, err2 := strconv.ParseInt(seqStr, 10, 64)
	if err1 != nil || err2 != nil || seq <= 0 {
		return Cursor{}, fmt.Errorf("%w: malformed", ErrBadCursor)
	}
	return Cursor{TS: ts, Seq: seq}, nil
}

package storage

import (
	"errors"
	"math"
	"testing"
)

// TestCursorForm pins the form of a cursor: clients hold cursors across
// releases, so a change here breaks their next page.
func TestCursorForm(t *testing.T) {
	for _, tc := range []struct {
		c    Cursor
		want string
	}{
		{Cursor{TS: 0, Seq: 1}, "MDox"},                                    // "0:1"
		{Cursor{TS: 1_700_000_000_000, Seq: 42}, "MTcwMDAwMDAwMDAwMDo0Mg"}, // "1700000000000:42"
		{Cursor{TS: -5, Seq: 1 << 62}, "LTU6NDYxMTY4NjAxODQyNzM4NzkwNA"},   // "-5:4611686018427387904"
		{Cursor{TS: math.MinInt64, Seq: math.MaxInt64}, "LTkyMjMzNzIwMzY4NTQ3NzU4MDg6OTIyMzM3MjAzNjg1NDc3NTgwNw"},
	} {
		if got := tc.c.Encode(); got != tc.want {
			t.Errorf("%+v.Encode() = %q, want %q", tc.c, got, tc.want)
		}
		got, err := DecodeCursor(tc.want)
		if err != nil || got != tc.c {
			t.Errorf("DecodeCursor(%q) = %+v, %v; want %+v", tc.want, got, err, tc.c)
		}
	}
}

func TestDecodeCursorRefused(t *testing.T) {
	for _, s := range []string{
		"", "!!!", "not a cursor", "==",
		"MDox==",                       // padded
		"MTIzOmFiYw",                   // "123:abc"
		"eHl6",                         // "xyz"
		"MTIz",                         // "123"
		"MTow",                         // "1:0": seq starts at 1
		"MTotMQ",                       // "1:-1"
		"OTIyMzM3MjAzNjg1NDc3NTgwODox", // "9223372036854775808:1": ts out of range
	} {
		if c, err := DecodeCursor(s); !errors.Is(err, ErrBadCursor) {
			t.Errorf("DecodeCursor(%q) = %+v, %v; want ErrBadCursor", s, c, err)
		}
	}
}

func FuzzCursor(f *testing.F) {
	f.Add(int64(0), int64(1))
	f.Add(int64(math.MinInt64), int64(math.MaxInt64))
	f.Fuzz(func(t *testing.T, ts, seq int64) {
		c := Cursor{TS: ts, Seq: seq}
		got, err := DecodeCursor(c.Encode())
		switch {
		case seq <= 0 && !errors.Is(err, ErrBadCursor):
			t.Fatalf("DecodeCursor(%+v.Encode()) = %+v, %v; want ErrBadCursor", c, got, err)
		case seq > 0 && (err != nil || got != c):
			t.Fatalf("DecodeCursor(%+v.Encode()) = %+v, %v", c, got, err)
		}
	})
}

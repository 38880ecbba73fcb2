package main

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSafeEscapesWhatRewritesTheTerminal(t *testing.T) {
	tests := []struct{ in, want string }{
		{"door 2 opened", "door 2 opened"},
		{"日本語 ✓ émoji 🚚", "日本語 ✓ émoji 🚚"},
		{"\x1b[2Jgone", `\x1b[2Jgone`},
		{"a\rb", `a\rb`},
		{"line\nbreak", `line\nbreak`},
		{"\u009b31m", `\u009b31m`},
		{"admin\u202e\u2066txt.exe", `admin\u202e\u2066txt.exe`},
		{"\u202a\u202b\u202c\u202d", `\u202a\u202b\u202c\u202d`},
		{"\u2067\u2068\u2069", `\u2067\u2068\u2069`},
		{"l\u200er\u200fa\u061c", `l\u200er\u200fa\u061c`},
		{"zero\u200bwidth\u200c\u200d\u2060\ufeff", `zero\u200bwidth\u200c\u200d\u2060\ufeff`},
		{"sep\u2028\u2029", `sep\u2028\u2029`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"quote \" and \\ kept when safe", "quote \" and \\ kept when safe"},
	}
	for _, tc := range tests {
		if got := safe(tc.in); got != tc.want {
			t.Errorf("safe(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzSafe checks safe's promise for any text: nothing it returns can act on
// a terminal (valid UTF-8, no control, format or separator character), and
// text without such characters is left alone.
func FuzzSafe(f *testing.F) {
	for _, s := range []string{"ok", "\x1b]0;t\a", "a\u202eb", "\ufeff", "\xff", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := safe(s)
		if !utf8.ValidString(got) {
			t.Fatalf("safe(%q) = %q is not UTF-8", s, got)
		}
		if i := strings.IndexFunc(got, unsafeRune); i >= 0 {
			t.Fatalf("safe(%q) = %q keeps %q", s, got, got[i:])
		}
		if utf8.ValidString(s) && strings.IndexFunc(s, unsafeRune) < 0 && got != s {
			t.Fatalf("safe(%q) = %q changed harmless text", s, got)
		}
	})
}

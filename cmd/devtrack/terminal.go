package main

import (
	"strconv"
	"unicode"
	"unicode/utf8"
)

// safe makes device-provided text harmless on a terminal. Text holding a
// character that could change what the terminal shows is printed in Go's
// quoted form (without the outer quotes), so that character appears as an
// escape like \x1b or \u202e instead of acting:
//   - C0 and C1 controls and DEL (escape sequences, carriage returns);
//   - format characters (Unicode Cf): the bidi embeddings, overrides and
//     isolates U+202A-U+202E and U+2066-U+2069, the marks U+200E, U+200F
//     and U+061C, and the zero-width U+200B-U+200D, U+2060 and U+FEFF, which
//     reorder or hide text ("Trojan Source");
//   - line and paragraph separators U+2028, U+2029;
//   - bytes that are not UTF-8.
//
// Other text, including any script and emoji, is printed as it is.
func safe(s string) string {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return quoteInner(s)
			}
		}
		if unsafeRune(r) {
			return quoteInner(s)
		}
	}
	return s
}

// unsafeRune reports whether r must not reach a terminal as it is.
func unsafeRune(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029'
}

// quoteInner is strconv.Quote without the surrounding quotes: it escapes every
// rune that strconv.IsPrint rejects, which includes all unsafeRune runes.
func quoteInner(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

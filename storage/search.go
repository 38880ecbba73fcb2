package storage

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Log search, the same on every store (LogQuery.Text):
//
//   - The text is split into terms at white space. A part in double quotes is
//     one term, white space included ("door open" must occur as written); an
//     unterminated quote runs to the end of the text.
//   - A log matches when its message contains every term as a substring,
//     ignoring case (both compared in lower case, Unicode mapping: Fold).
//     Words need no spaces around them, so 開門 is found inside 設備開門失敗
//     and fail inside failed.
//   - Nothing else is syntax: AND, OR, NOT, *, -, NEAR(...), %, _ and quotes
//     of SQL are plain text to look for.
//
// A text of only white space searches for nothing (every log matches).

// Search limits. A longer query is refused (ErrBadQuery) rather than cut, so
// that what is searched is always what was asked.
const (
	MaxSearchTerms = 16
	MaxSearchBytes = 512
)

// ErrBadQuery marks a query that a store refuses as asked (too many search
// terms, a text too long). The API answers it with 400.
var ErrBadQuery = fmt.Errorf("bad query")

// SearchTerms parses a LogQuery.Text into its terms, in order, duplicates
// kept. It is hand-written (the grammar is two rules) and fuzzed
// (FuzzSearchTerms).
func SearchTerms(text string) ([]string, error) {
	if len(text) > MaxSearchBytes {
		return nil, fmt.Errorf("%w: search text is %d bytes, at most %d", ErrBadQuery, len(text), MaxSearchBytes)
	}
	if !utf8.ValidString(text) {
		return nil, fmt.Errorf("%w: search text is not UTF-8", ErrBadQuery)
	}
	var terms []string
	rest := text
	for {
		rest = strings.TrimLeftFunc(rest, unicode.IsSpace)
		if rest == "" {
			break
		}
		var term string
		if rest[0] == '"' {
			var ok bool
			term, rest, ok = strings.Cut(rest[1:], `"`)
			if !ok {
				rest = ""
			}
		} else {
			end := strings.IndexFunc(rest, func(r rune) bool { return unicode.IsSpace(r) || r == '"' })
			if end < 0 {
				end = len(rest)
			}
			term, rest = rest[:end], rest[end:]
		}
		if term == "" {
			continue
		}
		terms = append(terms, term)
		if len(terms) > MaxSearchTerms {
			return nil, fmt.Errorf("%w: more than %d search terms", ErrBadQuery, MaxSearchTerms)
		}
	}
	return terms, nil
}

// MatchesSearch reports whether message contains every term, ignoring case,
// by the rules above. It is the reference the stores are tested against.
func MatchesSearch(message string, terms []string) bool {
	folded := Fold(message)
	for _, t := range terms {
		if !strings.Contains(folded, Fold(t)) {
			return false
		}
	}
	return true
}

// Fold is the case folding of search: every rune in lower case
// (unicode.ToLower), which is what PostgreSQL's ILIKE compares under a
// UTF-8 locale.
func Fold(s string) string { return strings.Map(unicode.ToLower, s) }

package storage

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestSearchTerms(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   \t\n", nil},
		{"door", []string{"door"}},
		{"  door   open ", []string{"door", "open"}},
		{`"door open" fail`, []string{"door open", "fail"}},
		{`a"b c"d`, []string{"a", "b c", "d"}},
		{`"unterminated phrase`, []string{"unterminated phrase"}},
		{`"" x`, []string{"x"}},
		{"設備開門失敗　門", []string{"設備開門失敗", "門"}}, // ideographic space
		{`x' OR '1'='1`, []string{"x'", "OR", "'1'='1"}},
		{`NEAR(a b) * -c %_`, []string{"NEAR(a", "b)", "*", "-c", "%_"}},
	} {
		got, err := SearchTerms(tc.in)
		if err != nil {
			t.Errorf("SearchTerms(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("SearchTerms(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestSearchTermsRefused(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("a ", MaxSearchTerms+1),
		strings.Repeat("a", MaxSearchBytes+1),
		"bad \xff utf8",
	} {
		if _, err := SearchTerms(in); !errors.Is(err, ErrBadQuery) {
			t.Errorf("SearchTerms(%.20q...): err = %v, want ErrBadQuery", in, err)
		}
	}
	if _, err := SearchTerms(strings.TrimSpace(strings.Repeat("a ", MaxSearchTerms))); err != nil {
		t.Errorf("%d terms: %v", MaxSearchTerms, err)
	}
}

func TestMatchesSearch(t *testing.T) {
	for _, tc := range []struct {
		msg, q string
		want   bool
	}{
		{"設備開門失敗", "開門", true},
		{"設備開門失敗", "開門 失敗", true},
		{"設備開門失敗", "閉門", false},
		{"upload FAILED twice", "fail", true},
		{"upload FAILED twice", "Failed TWICE", true},
		{"upload FAILED twice", `"failed twice"`, true},
		{"upload FAILED twice", `"twice failed"`, false},
		{"Ошибка ДАТЧИКА двери", "датчик", true},
		{"ドアが開きませんでした", "開き", true},
		{"mixed 混合 Смесь text", "混合 смесь", true},
		{"100% done", "%", true},
		{"100 done", "%", false},
	} {
		terms, err := SearchTerms(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := MatchesSearch(tc.msg, terms); got != tc.want {
			t.Errorf("MatchesSearch(%q, %q) = %v, want %v", tc.msg, tc.q, got, tc.want)
		}
	}
}

// FuzzSearchTerms checks the parser's promises on any input: no error but
// ErrBadQuery, terms that are non-empty substrings of the text, and no term
// holding a quote; unquoted terms hold no white space.
func FuzzSearchTerms(f *testing.F) {
	for _, s := range []string{"", "a b", `"a b" c`, `"x`, `a"b"c`, "設備 開門", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		terms, err := SearchTerms(s)
		if err != nil {
			if !errors.Is(err, ErrBadQuery) {
				t.Fatalf("error %v is not ErrBadQuery", err)
			}
			if utf8.ValidString(s) && len(s) <= MaxSearchBytes && len(strings.Fields(s)) <= MaxSearchTerms && !strings.Contains(s, `"`) {
				t.Fatalf("refused %q: %v", s, err)
			}
			return
		}
		if len(terms) > MaxSearchTerms {
			t.Fatalf("%d terms", len(terms))
		}
		for _, term := range terms {
			if term == "" || !strings.Contains(s, term) || strings.Contains(term, `"`) {
				t.Fatalf("term %q of %q", term, s)
			}
		}
		if !strings.Contains(s, `"`) && !slices.Equal(terms, nilIfEmpty(strings.Fields(s))) {
			t.Fatalf("unquoted %q: terms %q, want %q", s, terms, strings.Fields(s))
		}
	})
}

func nilIfEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

package wsgateway

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestCSVCell(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"", ""},
		{"=1+1", "'=1+1"},
		{"+cmd", "'+cmd"},
		{"-2", "'-2"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\t=x", "'\t=x"},
		{"\rx", "'\rx"},
		{"\nx", "'\nx"},
		{"   =HYPERLINK(\"x\")", "'   =HYPERLINK(\"x\")"},
		{"\u3000\u00a0=x", "'\u3000\u00a0=x"},
		{"＝1+1", "'＝1+1"},
		{"＋1", "'＋1"},
		{"－1", "'－1"},
		{"＠x", "'＠x"},
		{"a=b", "a=b"},
		{"door 2 opened", "door 2 opened"},
		{"   ", "   "},
	}
	for _, tc := range tests {
		if got := csvCell(tc.in); got != tc.want {
			t.Errorf("csvCell(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzCSVCell checks csvCell's promise for any text: the cell is kept
// unchanged or prefixed with one quote, and what a spreadsheet sees first
// (after spaces) is never a formula trigger.
func FuzzCSVCell(f *testing.F) {
	for _, s := range []string{"=1", " +1", "\u3000－1", "ok", "\t", "'=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := csvCell(s)
		if got != s && got != "'"+s {
			t.Fatalf("csvCell(%q) = %q: neither unchanged nor quoted", s, got)
		}
		first, _ := utf8.DecodeRuneInString(strings.TrimLeftFunc(got, func(r rune) bool {
			return unicode.IsSpace(r) && r != '\t' && r != '\r' && r != '\n'
		}))
		if isFormulaTrigger(first) {
			t.Fatalf("csvCell(%q) = %q starts with the trigger %q", s, got, first)
		}
	})
}

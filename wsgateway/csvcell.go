package wsgateway

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// csvCell defuses spreadsheet formulas in a CSV cell (OWASP, "CSV
// Injection"): a cell whose first character, after leading spaces, is one
// that Excel, LibreOffice or Google Sheets read as the start of a formula or
// a cell break (= + - @ tab CR LF, or the fullwidth ＝ ＋ － ＠ that some of
// them fold to ASCII) is prefixed with a single quote, which they show as
// text. Other cells are returned unchanged; csv.Writer does the CSV quoting.
func csvCell(s string) string {
	t := strings.TrimLeftFunc(s, func(r rune) bool {
		// Spaces are skipped, but tab, CR and LF are triggers themselves.
		return unicode.IsSpace(r) && r != '\t' && r != '\r' && r != '\n'
	})
	r, _ := utf8.DecodeRuneInString(t)
	if isFormulaTrigger(r) {
		return "'" + s
	}
	return s
}

func isFormulaTrigger(r rune) bool {
	switch r {
	case '=', '+', '-', '@', '\t', '\r', '\n', '＝', '＋', '－', '＠':
		return true
	}
	return false
}

package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// searchCases: Log search (storage.SearchTerms semantics), the same answers on every store.
//
// Expectations are not written by hand: every answer is compared with
// storage.MatchesSearch (and the filters) applied to the fixture, the
// reference that storage's own tests pin down. What the cases add by hand is
// that the queries which must find something do.
var searchCases = []testCase{
	{"SearchMatchesReference", testSearchMatchesReference},
	{"SearchPages", testSearchPages},
	{"SearchRefused", testSearchRefused},
	{"SearchWhiteSpaceOnly", testSearchWhiteSpaceOnly},
}

// RunSearch runs only the search cases, for a store that wants to run them
// under more than one setting (SQLite forces each of its query plans).
func RunSearch(t *testing.T, open func(t *testing.T) storage.Store) {
	runCases(t, searchCases, open)
}

func runCases(t *testing.T, cases []testCase, open func(t *testing.T) storage.Store) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			tc.fn(t, st)
		})
	}
}

// searchMessages are the messages of the search fixture, one log each, in
// this order of ts. They hold words inside words, scripts written without
// spaces, cases beyond ASCII, and text that is syntax to SQL, LIKE and FTS
// engines, all of which must be plain text to a search.
var searchMessages = []string{
	"upload failed twice",
	"Upload FAILED: retry later",
	"failure of door sensor",
	"設備開門失敗",
	"設備關門成功",
	"門",
	"ドアが開きませんでした（エラー）",
	"ドアが開いた",
	"Ошибка ДАТЧИКА двери",
	"датчик в норме",
	"mixed 混合 Смесь text",
	"混合モード ok",
	"door open failed",
	"open door failed",
	"please do not '; DROP TABLE logs; -- here",
	"100% done",
	"100 done",
	`under_score and back\slash`,
	`a OR b NEAR(a b) fail* -x "quoted" ^caret col:val`,
	"Straße ΣΟΦΊΑ İstanbul",
	"engine ok",
	"",
}

// searchFixture is the logs of searchMessages over three devices and three
// levels, with distinct ts (t0+1, t0+2, ...) so that the order is fixed.
func searchFixture() []storage.LogEntry {
	levels := []string{"info", "warn", "error"}
	logs := make([]storage.LogEntry, len(searchMessages))
	for i, m := range searchMessages {
		logs[i] = logEntry(fmt.Sprintf("d%d", i%3+1), fmt.Sprintf("s%02d", i), t0+int64(i)+1, levels[i%len(levels)], m)
	}
	return logs
}

// searchTexts are the queries: each must give what storage.MatchesSearch
// gives. found marks those that must find at least one log of the fixture
// without filters, so that a case cannot pass by finding nothing anywhere.
var searchTexts = []struct {
	text  string
	found bool
}{
	// Parts of words, any case.
	{"fail", true}, {"FAIL", true}, {"failed", true}, {"Fail twice", true}, {"ail", true},
	{"upload failed", true}, {"fail retry", true}, {"failing", false},
	// Quoted phrases, as written.
	{`"failed twice"`, true}, {`"twice failed"`, false}, {`"door open"`, true}, {`"open door"`, true},
	{"door open", true}, {`"door open`, true}, {`"upload failed" twice`, true}, {`"FAILED: retry"`, true},
	// Chinese without spaces: 1, 2 and more characters.
	{"開門", true}, {"門", true}, {"設備", true}, {"開門失敗", true}, {"關門", true}, {"設備 成功", true},
	{"閉門", false}, {"設備開門失敗", true},
	// Japanese, kana and kanji.
	{"開き", true}, {"ドア", true}, {"エラー", true}, {"ドアが開", true}, {"（エラー）", true}, {"ドア 失敗", false},
	// Cyrillic in both cases.
	{"ДАТЧИК", true}, {"датчик", true}, {"Датчика", true}, {"ошибка двери", true}, {"норме", true},
	// Mixed scripts, other letters with case.
	{"混合 смесь", true}, {"混合", true}, {"смесь text", true}, {"mixed モード", false}, {"モード OK", true},
	{"straße", true}, {"STRASSE", false}, {"σοφία", true}, {"istanbul", true}, {"İSTANBUL", true},
	// SQL and LIKE syntax as text.
	{`'; DROP TABLE logs; --`, true}, {`"'; DROP TABLE logs; --"`, true}, {`' OR 1=1 --`, false},
	{"%", true}, {"100%", true}, {"_", true}, {"under_score", true}, {`\`, true}, {`back\slash`, true},
	{"'", true}, {"--", true}, {"%%", false}, {"_x", false},
	// FTS syntax as text.
	{"a OR b", true}, {"OR", true}, {"NEAR(a b)", true}, {`"NEAR(a b)"`, true}, {"NEAR(a", true},
	{"fail*", true}, {"*", true}, {"-x", true}, {`"`, false}, {`""`, false}, {`"quoted"`, true}, {"^", true},
	{"^caret", true}, {":", true}, {"col:val", true}, {"(", true}, {"{message}", false}, {"AND", true},
	{"NOT", true},
	// Short Latin terms (below a trigram) and terms absent from everything.
	{"ok", true}, {"x", true}, {"OK engine", true}, {"satellite", false}, {"zz", false},
}

// searchFilters are combined with every text.
var searchFilters = []storage.LogQuery{
	{},
	{Device: "d2"},
	{Devices: []string{"d1", "d3"}},
	{Level: "error"},
	{FromMS: t0 + 5, ToMS: t0 + 15},
	{Device: "d1", Level: "info", FromMS: t0 + 2},
}

// wantLogs is the reference answer of q over logs (sorted by ts): the
// filters and storage.MatchesSearch, newest first.
func wantLogs(t *testing.T, logs []storage.LogEntry, q storage.LogQuery) []string {
	t.Helper()
	terms, err := storage.SearchTerms(q.Text)
	if err != nil {
		t.Fatalf("SearchTerms(%q): %v", q.Text, err)
	}
	var ids []string
	for _, e := range slices.Backward(logs) {
		switch {
		case q.Device != "" && e.Device != q.Device,
			q.Devices != nil && !slices.Contains(q.Devices, e.Device),
			q.Level != "" && e.Level != q.Level,
			q.FromMS > 0 && e.TS < q.FromMS,
			q.ToMS > 0 && e.TS > q.ToMS,
			!storage.MatchesSearch(e.Message, terms):
			continue
		}
		ids = append(ids, e.ID)
	}
	return ids
}

func testSearchMatchesReference(t *testing.T, st storage.Store) {
	logs := searchFixture()
	save(t, st, storage.Batch{Logs: logs})
	for _, st2 := range searchTexts {
		for _, f := range searchFilters {
			q := f
			q.Text = st2.text
			want := wantLogs(t, logs, q)
			if st2.found && q.Device == "" && q.Devices == nil && q.Level == "" && q.FromMS == 0 && len(want) == 0 {
				t.Fatalf("fixture: %q finds nothing in the reference; the case would test nothing", st2.text)
			}
			// Small pages once per text; the filters in one page each.
			limits := []int{1000}
			if f.Device == "" && f.Devices == nil && f.Level == "" && f.FromMS == 0 {
				limits = append(limits, 3)
			}
			for _, limit := range limits {
				q.Limit = limit
				got := logIDs(allLogs(t, st, q))
				if diff := cmp.Diff(want, got, cmpOpts); diff != "" {
					t.Errorf("Logs(%+v): ids (-want +got):\n%s", q, diff)
				}
			}
		}
	}
}

// testSearchPages: a search paged with cursors gives every match once,
// newest first, with ties on ts, for terms the index can look up, short
// terms and phrases, whatever the page size.
func testSearchPages(t *testing.T, st storage.Store) {
	words := []string{"門 open failed", "sensor FAILED", "датчик ok", "設備開門失敗 x", "door open"}
	var logs []storage.LogEntry
	for i := range 120 {
		// Ties on ts: four logs share each one.
		logs = append(logs, logEntry(fmt.Sprintf("d%d", i%4), fmt.Sprintf("p%03d", i), t0+int64(i/4),
			[]string{"info", "warn"}[i%2], fmt.Sprintf("%s #%d", words[i%len(words)], i)))
	}
	for chunk := range slices.Chunk(logs, 50) {
		save(t, st, storage.Batch{Logs: chunk})
	}
	for _, q := range []storage.LogQuery{
		{Text: "fail"},
		{Text: "門"},
		{Text: "開門"},
		{Text: `"open failed"`},
		{Text: "ДАТЧИК"},
		{Text: "fail", Devices: []string{"d0", "d2"}},
		{Text: "open", Level: "warn", FromMS: t0 + 10, ToMS: t0 + 60},
	} {
		want := wantLogs(t, logs, q)
		slices.Sort(want)
		if len(want) == 0 {
			t.Fatalf("fixture: %+v matches nothing", q)
		}
		for _, limit := range []int{1, 9, len(want), len(want) + 1} {
			q.Limit = limit
			got := allLogs(t, st, q)
			checkNewestFirst(t, got, func(e storage.LogEntry) int64 { return e.TS })
			ids := logIDs(got)
			slices.Sort(ids)
			if diff := cmp.Diff(want, ids); diff != "" {
				t.Errorf("%+v: every match once (-want +got):\n%s", q, diff)
			}
		}
	}
}

// testSearchRefused: what storage.SearchTerms refuses, every store refuses
// with ErrBadQuery (the API's 400), rather than searching for something else.
func testSearchRefused(t *testing.T, st storage.Store) {
	save(t, st, storage.Batch{Logs: searchFixture()})
	for _, text := range []string{
		strings.Repeat("fail ", storage.MaxSearchTerms+1),
		strings.Repeat(`"a b" `, storage.MaxSearchTerms+1),
		strings.Repeat("x", storage.MaxSearchBytes+1),
		"fail \xff",
	} {
		_, _, err := st.Logs(context.Background(), storage.LogQuery{Text: text})
		if !errors.Is(err, storage.ErrBadQuery) {
			t.Errorf("Logs(Text %.30q...): err = %v, want ErrBadQuery", text, err)
		}
	}
	// The most a query may hold is searched.
	most := strings.TrimSpace(strings.Repeat("o ", storage.MaxSearchTerms))
	if _, _, err := st.Logs(context.Background(), storage.LogQuery{Text: most}); err != nil {
		t.Errorf("Logs(%d terms): %v", storage.MaxSearchTerms, err)
	}
}

// testSearchWhiteSpaceOnly: a text of white space searches for nothing.
func testSearchWhiteSpaceOnly(t *testing.T, st storage.Store) {
	logs := searchFixture()
	save(t, st, storage.Batch{Logs: logs})
	for _, text := range []string{" ", "\t\n", "　"} {
		got := allLogs(t, st, storage.LogQuery{Text: text, Limit: 5})
		if len(got) != len(logs) {
			t.Errorf("Logs(Text %q): %d logs, want all %d", text, len(got), len(logs))
		}
	}
}

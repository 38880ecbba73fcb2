package sqlite

import (
	"context"
	"database/sql/driver"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

func TestFTSTrigrams(t *testing.T) {
	for _, tc := range []struct {
		term string
		want []string
	}{
		{"fail", []string{`"fai"`, `"ail"`}},
		{"failed", []string{`"fai"`, `"led"`}},
		{"failed after 42 retries", []string{`"fai"`, `"led"`, `" af"`, `"ter"`, `" 42"`, `" re"`, `"tri"`, `"ies"`}},
		{"開門失", []string{`"開門失"`}},
		{"設備開門失敗", []string{`"設備開"`, `"門失敗"`}},
		{"開門", nil},
		{"門", nil},
		{`a"b"c`, []string{`"a""b"`, `"b""c"`}},
		{`"; drop table logs; --`, []string{`"""; "`, `"dro"`, `"p t"`, `"abl"`, `"e l"`, `"ogs"`, `"; -"`, `" --"`}},
		{"a\x00bc", nil},
	} {
		if got := ftsTrigrams(tc.term); !slices.Equal(got, tc.want) {
			t.Errorf("ftsTrigrams(%q) = %q, want %q", tc.term, got, tc.want)
		}
	}
}

// The index holds text folded by Go, not by SQLite: letters that SQLite's
// own folding leaves alone (U+0130, Georgian Mtavruli, Adlam outside the
// BMP) are found in either case, as storage.MatchesSearch finds them.
func TestSearchFoldsAsGo(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	msgs := []string{"İSTANBUL depo", "ᲡᲐᲥᲐᲠᲗᲕᲔᲚᲝ", "𞤀𞤁𞤂𞤃 adlam", "ΣΑΣ"}
	var b storage.Batch
	for i, m := range msgs {
		b.Logs = append(b.Logs, storage.LogEntry{Device: "d", ID: fmt.Sprint(i), TS: int64(i + 1), Message: m})
	}
	if _, err := st.SaveBatch(ctx, b); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"istanbul", "İstanbul", "საქართველო", "𞤢𞤣𞤤", "σασ", "σας", "Σ"} {
		terms, _ := storage.SearchTerms(q)
		var want []string
		for i := len(msgs) - 1; i >= 0; i-- {
			if storage.MatchesSearch(msgs[i], terms) {
				want = append(want, fmt.Sprint(i))
			}
		}
		got, _, err := st.Logs(ctx, storage.LogQuery{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range got {
			ids = append(ids, e.ID)
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Errorf("search %q: %v, want %v (storage.MatchesSearch)", q, ids, want)
		}
	}
}

// FuzzLogsText searches a real store with arbitrary text: whatever the text,
// SQLite must get a valid query (no error but ErrBadQuery for what
// storage.SearchTerms refuses) and answer exactly what storage.MatchesSearch
// says, without changing what is stored.
func FuzzLogsText(f *testing.F) {
	for _, s := range []string{"engine", "a\x00b", `"`, `"a" OR "b`, "\xff\xfe", "NEAR(a b", "x*", "^y", "日本\x00語", "語", "ENG", `"d ""q`} {
		f.Add(s)
	}
	ctx := context.Background()
	st := openTemp(f, filepath.Join(f.TempDir(), "devtrack.db"))
	if err := st.Migrate(ctx); err != nil {
		f.Fatal(err)
	}
	logs := []storage.LogEntry{
		{Device: "d1", ID: "1", TS: 1, ReceivedAt: 1, Level: "info", Message: "engine started"},
		{Device: "d1", ID: "2", TS: 2, ReceivedAt: 2, Level: "warn", Message: "a\x00b \"quoted\" 日本語"},
		{Device: "d2", ID: "3", TS: 3, ReceivedAt: 3, Level: "warn", Message: `ENGINE "d ""q' OR 1=1 -- NEAR(a b) x* ^y %_\`},
	}
	if _, err := st.SaveBatch(ctx, storage.Batch{Logs: logs}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		terms, perr := storage.SearchTerms(text)
		got, _, err := st.Logs(ctx, storage.LogQuery{Text: text, Limit: 10})
		if perr != nil {
			if err == nil {
				t.Fatalf("Logs(Text %q): no error, SearchTerms refuses it: %v", text, perr)
			}
			return
		}
		if err != nil {
			t.Fatalf("Logs(Text %q): %v", text, err)
		}
		var want, ids []string
		for i := len(logs) - 1; i >= 0; i-- {
			if storage.MatchesSearch(logs[i].Message, terms) {
				want = append(want, logs[i].ID)
			}
		}
		for _, e := range got {
			ids = append(ids, e.ID)
		}
		if strings.Join(ids, ",") != strings.Join(want, ",") {
			t.Fatalf("Logs(Text %q) = %v, want %v", text, ids, want)
		}
	})
}

// forcePlan sets the plan bounds so that every search that the index can
// help takes plan k, until the test ends.
func forcePlan(t *testing.T, k planKind) {
	savedCandidates, savedSort, savedSample := candidateMax, sortMax, sampleRows
	t.Cleanup(func() { candidateMax, sortMax, sampleRows = savedCandidates, savedSort, savedSample })
	switch k {
	case planWalk:
		candidateMax = -1
	case planFilteredWalk:
		candidateMax, sortMax, sampleRows = math.MaxInt32, -1, 0
	case planSort:
		candidateMax, sortMax, sampleRows = math.MaxInt32, math.MaxInt32, 0
	}
}

// TestSearchPlans runs the search cases of the suite with each plan forced,
// the index asked for short terms too. On their small fixtures the bounds
// pick the sort for every term the index can help (TestConformance), so
// every plan gives the rules' answers.
func TestSearchPlans(t *testing.T) {
	for _, k := range []planKind{planWalk, planFilteredWalk, planSort} {
		t.Run(k.String(), func(t *testing.T) {
			forcePlan(t, k)
			storagetest.RunSearch(t, func(t *testing.T) storage.Store {
				return openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
			})
		})
	}
}

// FuzzMatchFunc checks devtrack_match, with its ASCII shortcut, against
// storage.MatchesSearch.
func FuzzMatchFunc(f *testing.F) {
	for _, s := range [][2]string{{"Upload FAILED", "fail"}, {"İstanbul", "istanbul"}, {"a\x00b", "\x00"}, {"\xffK", "k"}, {"KELVIN", "k"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, msg, term string) {
		v, err := matchFunc(nil, []driver.Value{msg, storage.Fold(term)})
		if err != nil {
			t.Fatal(err)
		}
		if got, want := v == int64(1), storage.MatchesSearch(msg, []string{term}); got != want {
			t.Fatalf("devtrack_match(%q, %q) = %v, storage.MatchesSearch says %v", msg, term, got, want)
		}
	})
}

package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/storagetest"
)

func TestFTSPhrase(t *testing.T) {
	for _, tc := range []struct {
		term, want string
		ok         bool
	}{
		{"fail", `"fail"`, true},
		{"開門失", `"開門失"`, true},
		{"開門", "", false},
		{"門", "", false},
		{`say "hi"`, `"say ""hi"""`, true},
		{`"; drop table logs; --`, `"""; drop table logs; --"`, true},
		{"a\x00bc", "", false},
		{"near(a b)", `"near(a b)"`, true},
	} {
		got, ok := ftsPhrase(tc.term)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ftsPhrase(%q) = %s, %v; want %s, %v", tc.term, got, ok, tc.want, tc.ok)
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

// TestSearchPlans runs the search cases of the suite with each plan forced,
// so that both give the rules' answers whatever the counts choose.
func TestSearchPlans(t *testing.T) {
	saved := indexPlanMax
	t.Cleanup(func() { indexPlanMax = saved })
	for name, v := range map[string]int{"walk": 0, "index": 1 << 30} {
		t.Run(name, func(t *testing.T) {
			indexPlanMax = v
			storagetest.RunSearch(t, func(t *testing.T) storage.Store {
				return openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
			})
		})
	}
}

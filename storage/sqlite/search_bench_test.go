package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// fillLogsSQL writes ?1 logs after the ones stored, in one statement, from a
// recursive CTE: 1,000 devices, three levels, one log every 10 ms, messages
// from eight templates with numbers in them, so that a term's frequency is
// known:
//
//	fail            3/8 of the logs (templates 0, 1, 6)
//	"failed after 42 retries"  1/8 * 1/97 (~0.13 %)
//	開門             1/8 (template 3)
//	xyzzy           1 in 100,000 (a rare word)
//	閉鎖, 鎖         1 in 100,000 (rare 2- and 1-character CJK terms)
//	%               1/8, none on dev7 (whose logs are all template 7)
const fillLogsSQL = `WITH RECURSIVE n(i) AS (
	SELECT (SELECT coalesce(max(seq), 0) FROM logs) + 1
	UNION ALL SELECT i + 1 FROM n WHERE i < (SELECT coalesce(max(seq), 0) FROM logs) + ?1)
INSERT INTO logs (device, id, ts, received_at, level, message)
SELECT 'dev' || (i % 1000), 'b' || i, 1700000000000 + i * 10, 1700000000000 + i * 10 + 5,
	CASE i % 3 WHEN 0 THEN 'info' WHEN 1 THEN 'warn' ELSE 'error' END,
	CASE
		WHEN i % 100000 = 7 THEN 'door xyzzy jammed ' || i
		WHEN i % 100000 = 13 THEN '門禁閉鎖 ' || i
		ELSE CASE i % 8
			WHEN 0 THEN 'upload failed after ' || (i % 97) || ' retries'
			WHEN 1 THEN 'Upload FAILED: server said ' || (500 + i % 4)
			WHEN 2 THEN 'engine temperature ' || (i % 120) || ' C nominal'
			WHEN 3 THEN '設備開門失敗 コード ' || (i % 50)
			WHEN 4 THEN 'Ошибка датчика двери ' || (i % 30)
			WHEN 5 THEN 'GPS fix lost; battery ' || (i % 100) || '%'
			WHEN 6 THEN 'sensor failure on bus ' || (i % 16)
			ELSE 'heartbeat ok seq ' || i
		END
	END
FROM n`

// fillSearchLogs adds rows logs to st and indexes them as SaveBatch does, in
// one transaction.
func fillSearchLogs(tb testing.TB, st *Store, rows int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := st.wdb.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback() //nolint:errcheck
	var from int64
	if err := tx.QueryRow(maxLogSeqSQL).Scan(&from); err != nil {
		tb.Fatal(err)
	}
	if _, err := tx.Exec(fillLogsSQL, rows); err != nil {
		tb.Fatalf("fill: %v", err)
	}
	if _, err := tx.Exec(indexLogsSQL, from); err != nil {
		tb.Fatalf("index: %v", err)
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

// manyDevices is an operator's view of 100 of the 1,000 devices of the fill.
var manyDevices = func() []string {
	var ds []string
	for i := range 100 {
		ds = append(ds, "dev"+strconv.Itoa(i*10+3))
	}
	return ds
}()

// searchBenchQueries are the first pages measured.
var searchBenchQueries = []struct {
	name string
	q    storage.LogQuery
}{
	{"common", storage.LogQuery{Text: "fail"}},
	{"rare", storage.LogQuery{Text: "xyzzy"}},
	{"cjk2-common", storage.LogQuery{Text: "開門"}},
	{"cjk2-rare", storage.LogQuery{Text: "閉鎖"}},
	{"cjk1-rare", storage.LogQuery{Text: "鎖"}},
	{"cjk2-rare-device", storage.LogQuery{Text: "閉鎖", Device: "dev13"}},
	{"short-absent", storage.LogQuery{Text: "鍵"}},
	{"short-common-absent-on-device", storage.LogQuery{Text: "%", Device: "dev7"}},
	{"phrase", storage.LogQuery{Text: `"failed after 42 retries"`}},
	{"two-terms", storage.LogQuery{Text: "upload 42"}},
	{"common-device", storage.LogQuery{Text: "fail", Device: "dev7"}},
	{"common-3-devices", storage.LogQuery{Text: "fail", Devices: []string{"dev1", "dev2", "dev3"}}},
	{"common-100-devices", storage.LogQuery{Text: "fail", Devices: manyDevices}},
	{"no-text-100-devices", storage.LogQuery{Devices: manyDevices}},
}

// BenchmarkSearch measures the first page (100 logs) of searches over a
// large archive. It is opt-in, the fill takes minutes at 10M rows:
//
//	DEVTRACK_SEARCH_ROWS=10000000 [DEVTRACK_SEARCH_DB=/var/tmp/search.db] \
//	  go test -run '^$' -bench BenchmarkSearch -benchtime 20x ./storage/sqlite/
//
// With DEVTRACK_SEARCH_DB the filled file is kept and reused by later runs.
func BenchmarkSearch(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("DEVTRACK_SEARCH_ROWS"))
	if rows <= 0 {
		b.Skip("set DEVTRACK_SEARCH_ROWS (e.g. 10000000) to run")
	}
	ctx := context.Background()
	path := os.Getenv("DEVTRACK_SEARCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "search.db")
	}
	st, err := Open(ctx, path, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	var have int
	if err := st.rdb.QueryRow(`SELECT count(*) FROM logs`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	if have < rows {
		start := time.Now()
		for have < rows {
			n := min(rows-have, 1_000_000)
			fillSearchLogs(b, st, n)
			have += n
			b.Logf("filled %d logs (%s)", have, time.Since(start).Round(time.Second))
		}
		if _, err := st.wdb.Exec(`ANALYZE`); err != nil {
			b.Fatal(err)
		}
	}
	for _, q := range searchBenchQueries {
		b.Run(q.name, func(b *testing.B) {
			query, _, _, err := st.logsQuery(ctx, q.q, 100)
			if err != nil {
				b.Fatal(err)
			}
			var n int
			for b.Loop() {
				qq := q.q
				qq.Limit = 100
				got, _, err := st.Logs(ctx, qq)
				if err != nil {
					b.Fatal(err)
				}
				n = len(got)
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/page")
			b.Logf("%d logs, %+v: %s plan, %d on the first page", have, q.q, planOf(query), n)
		})
	}
}

// TestSearchQueryPlan checks the plans with EXPLAIN QUERY PLAN: a walk
// reads an index in page order (no sort, no FTS), a filtered walk too,
// checking the candidates before it reads a row, and the sort drives from
// the candidates and sorts only those.
func TestSearchQueryPlan(t *testing.T) {
	ctx := context.Background()
	st := openTemp(t, filepath.Join(t.TempDir(), "devtrack.db"))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Bounds lowered to keep the fill small: of 8,000 logs, 3,000 hold
	// fail (more than candidateMax: a walk), 1,000 sensor (more than
	// sortMax: a filtered walk), 1 xyzzy (a sort).
	savedCandidates, savedSort := candidateMax, sortMax
	t.Cleanup(func() { candidateMax, sortMax = savedCandidates, savedSort })
	candidateMax, sortMax = 2000, 500
	fillSearchLogs(t, st, 8000)
	for _, analyzed := range []bool{false, true} {
		if analyzed {
			if _, err := st.wdb.Exec(`ANALYZE`); err != nil {
				t.Fatal(err)
			}
		}
		for _, tc := range []struct {
			q         storage.LogQuery
			plan      string // "walk" or "index"
			want, not []string
		}{
			{storage.LogQuery{Text: "fail"}, "walk", []string{"SCAN logs USING INDEX logs_ts"}, []string{"TEMP B-TREE", "json_each"}},
			{storage.LogQuery{Text: "開門"}, "walk", []string{"SCAN logs USING INDEX logs_ts"}, []string{"TEMP B-TREE", "json_each"}},
			{storage.LogQuery{Text: "fail", Device: "dev7"}, "walk", []string{"logs_device_ts"}, []string{"TEMP B-TREE"}},
			{storage.LogQuery{Text: "fail", Level: "warn"}, "walk", []string{"logs_level_ts"}, []string{"TEMP B-TREE"}},
			{storage.LogQuery{Text: "fail", Devices: []string{"dev1", "dev2", "dev3"}}, "walk", []string{"logs_device_ts"}, []string{"SCAN m"}},
			{storage.LogQuery{Text: "fail", Devices: manyDevices}, "walk", []string{"SCAN logs USING INDEX logs_ts"}, []string{"SCAN m", "TEMP B-TREE"}},
			{storage.LogQuery{Text: "xyzzy"}, "sort", []string{"SCAN m VIRTUAL TABLE", "SEARCH logs USING INTEGER PRIMARY KEY", "TEMP B-TREE FOR ORDER BY"}, nil},
			{storage.LogQuery{Text: `"failed after 42 retries"`, Device: "dev7"}, "sort", []string{"SCAN m VIRTUAL TABLE", "SEARCH logs USING INTEGER PRIMARY KEY"}, nil},
			// Short terms: common ones walk, rare ones are sorted from
			// the trigrams they start, absent ones have no candidates.
			{storage.LogQuery{Text: "閉鎖"}, "sort", []string{"SCAN m VIRTUAL TABLE", "SEARCH logs USING INTEGER PRIMARY KEY"}, nil},
			{storage.LogQuery{Text: "鍵"}, "sort", []string{"SCAN m VIRTUAL TABLE"}, nil},
			{storage.LogQuery{Text: "sensor"}, "filtered walk", []string{"SCAN logs USING INDEX logs_ts", "json_each"}, []string{"TEMP B-TREE", "INTEGER PRIMARY KEY"}},
			{storage.LogQuery{Text: "sensor", Device: "dev7"}, "filtered walk", []string{"logs_device_ts", "json_each"}, []string{"TEMP B-TREE", "INTEGER PRIMARY KEY"}},
		} {
			query, args, _, err := st.logsQuery(ctx, tc.q, 100)
			if err != nil {
				t.Fatal(err)
			}
			if got := planOf(query); got != tc.plan {
				t.Errorf("%+v: %s plan, want %s: %s", tc.q, got, tc.plan, query)
			}
			plan := explain(t, st, query, args)
			t.Logf("analyzed %v, %+v: %s plan\n%s", analyzed, tc.q, planOf(query), plan)
			for _, w := range tc.want {
				if !strings.Contains(plan, w) {
					t.Errorf("analyzed %v, %+v: plan lacks %q:\n%s", analyzed, tc.q, w, plan)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(plan, n) {
					t.Errorf("analyzed %v, %+v: plan has %q:\n%s", analyzed, tc.q, n, plan)
				}
			}
		}
	}
}

func planOf(query string) string {
	switch {
	case strings.Contains(query, indexPlanFrom):
		return planSort.String()
	case strings.Contains(query, "+logs.seq IN"):
		return planFilteredWalk.String()
	}
	return planWalk.String()
}

func explain(t *testing.T, st *Store, query string, args []any) string {
	t.Helper()
	rows, err := st.rdb.Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		b.WriteString(detail + "\n")
	}
	return b.String()
}

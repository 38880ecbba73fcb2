package postgres

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
)

// searchBenchDays is how many days (partitions) the search benchmark's rows
// span, ending now.
const searchBenchDays = 30

// BenchmarkSearch measures the first page (100 rows) of log searches over a
// large archive: 10 million rows by default, DEVTRACK_SEARCH_ROWS to change
// it. The rows are made inside the server with generate_series (filling
// takes minutes, so it runs only under -bench), spread over 30 daily
// partitions, with messages in which:
//
//	reading   every row                  (common)
//	sensor    one row in 17              (medium)
//	overheat  10 rows in 10M             (rare, trigram index)
//	開門      one row in 10              (2 characters: no trigram)
//	閉門      10 rows in 10M             (2 characters, rare: a walk)
//
// The ledger (log_ids) is not filled: search does not read it. With -v the
// plan of each query is logged (EXPLAIN ANALYZE).
func BenchmarkSearch(b *testing.B) {
	rows := 10_000_000
	if v := os.Getenv("DEVTRACK_SEARCH_ROWS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatalf("DEVTRACK_SEARCH_ROWS: %v", err)
		}
		rows = n
	}
	ctx := context.Background()
	srv := pgtest.StartWith(b, pgtest.Options{Settings: map[string]string{
		"shared_buffers": "1GB", "maintenance_work_mem": "512MB", "max_wal_size": "8GB",
		"checkpoint_timeout": "30min", "work_mem": "16MB",
		"max_parallel_maintenance_workers": "2", "autovacuum": "off",
	}})
	st := openStore(b, srv.NewDB(b))
	if err := st.Migrate(ctx); err != nil {
		b.Fatal(err)
	}
	now := time.Now().UnixMilli()
	start := now - searchBenchDays*dayMS
	fillSearchBench(b, st, rows, start, now)

	queries := []struct {
		name string
		q    storage.LogQuery
	}{
		{"common", storage.LogQuery{Text: "reading"}},
		{"medium", storage.LogQuery{Text: "sensor"}},
		{"rare", storage.LogQuery{Text: "overheat"}},
		{"rare-none", storage.LogQuery{Text: "satellite"}},
		{"two-terms", storage.LogQuery{Text: "sensor 開門"}},
		{"cjk-2char-common", storage.LogQuery{Text: "開門"}},
		{"cjk-2char-rare", storage.LogQuery{Text: "閉門"}},
		{"common-device", storage.LogQuery{Text: "reading", Device: "dev42"}},
		{"rare-device", storage.LogQuery{Text: "overheat", Device: "dev7"}},
	}
	for _, tc := range queries {
		b.Run(tc.name, func(b *testing.B) {
			tc.q.Limit = 100
			var got int
			for b.Loop() {
				page, _, err := st.Logs(ctx, tc.q)
				if err != nil {
					b.Fatal(err)
				}
				got = len(page)
			}
			b.ReportMetric(float64(got), "rows")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/1000, "ms/page")
			logPlans(b, st, tc.q)
		})
	}
}

// fillSearchBench makes the partitions of the days and n rows in them, then
// builds the trigram index (faster once than row by row) and the statistics.
func fillSearchBench(b *testing.B, st *Store, n int, start, end int64) {
	ctx := context.Background()
	t0 := time.Now()
	days := map[int64]bool{}
	for d := dayOf(start); d <= dayOf(end); d++ {
		days[d] = true
	}
	if err := st.ensurePartitions(ctx, "logs", days); err != nil {
		b.Fatal(err)
	}
	step := (end - start) / int64(n)
	for _, sql := range []string{
		`DROP INDEX logs_message_trgm`,
		fmt.Sprintf(`INSERT INTO logs (seq, device, id, ts, received_at, level, message)
		SELECT g, 'dev' || (g %% 1000), 'm' || g, %d + g * %d, %d + g * %d + 50,
			(ARRAY['info','warn','error','debug'])[1 + g %% 4],
			(ARRAY['engine','door','battery','gps','pump','valve','fan'])[1 + g %% 7] || ' ' ||
			CASE WHEN g %% 17 = 0 THEN 'sensor ' ELSE '' END ||
			'reading ' || (g %% 997) || ' ' ||
			(ARRAY['ok','low','high','stable','rising','falling','nominal','degraded','unknown','reset','idle'])[1 + g %% 11] ||
			CASE WHEN g %% 10 = 3 THEN ' 設備開門失敗' ELSE '' END ||
			CASE WHEN g %% %d = 5 THEN ' overheating 閉門' ELSE '' END
		FROM generate_series(1::bigint, %d) g`, start, step, start, step, max(n/10, 1), n),
		`SELECT setval('record_seq', ` + strconv.Itoa(n+1) + `)`,
		`CREATE INDEX logs_message_trgm ON logs USING gin (message gin_trgm_ops)`,
		`VACUUM ANALYZE logs`,
	} {
		t1 := time.Now()
		if _, err := st.pool.Exec(ctx, sql); err != nil {
			b.Fatalf("%s: %v", strings.Fields(sql)[0], err)
		}
		b.Logf("%s: %v", strings.Join(strings.Fields(sql)[:2], " "), time.Since(t1).Round(time.Millisecond))
	}
	var size string
	_ = st.pool.QueryRow(ctx, `SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'logs'::regclass`).Scan(&size)
	b.Logf("filled %d rows over %d partitions in %v; logs with indexes: %s", n, len(days), time.Since(t0).Round(time.Second), size)
}

// logPlans logs EXPLAIN ANALYZE of the statements that Logs runs for q.
func logPlans(b *testing.B, st *Store, q storage.LogQuery) {
	if !testing.Verbose() {
		return
	}
	var plans []string
	st.explain = func(plan string) { plans = append(plans, plan) }
	defer func() { st.explain = nil }()
	if _, _, err := st.Logs(context.Background(), q); err != nil {
		b.Fatal(err)
	}
	b.Logf("plans of %+v:\n%s", q, strings.Join(plans, "\n---\n"))
}

package bench

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/testutil/devtrackbin"
	"go.uber.org/zap"
)

// TestDrainSmoke runs tiny drains (2,000 items, one worker, SQLite) with
// the harness's own Redis and a real devtrack worker, and writes the
// reports: scripts/bench's code builds and runs. drainOnce itself fails
// unless the store then holds every item.
func TestDrainSmoke(t *testing.T) {
	ctx := context.Background()
	bin := devtrackbin.Build(t)
	e, err := NewEnv(ctx, bin, t.TempDir(), true, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	// One process with two pipelines (--concurrency 2) too: the harness
	// waits for, and empties, their own processing lists.
	if _, err := e.drainOnce(ctx, 2000, 10, 1, 2, false); err != nil {
		t.Fatal(err)
	}
	rate, err := e.drainOnce(ctx, 2000, 10, 1, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	r := &Results{}
	r.Add("worker drain", "items/s, 1 worker(s)", "items/s", rate, "RPOP -P 64", Limits{"RPOP -P 64": 1e6}, "-")
	dir := t.TempDir()
	if err := r.WriteJSON(filepath.Join(dir, "bench", "results.json")); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteMarkdown(filepath.Join(dir, "BENCHMARKS.md"), Report{Command: "test", Runs: 1}); err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	b, _ := os.ReadFile(filepath.Join(dir, "bench", "results.json"))
	if err := json.Unmarshal(b, &got); err != nil || len(got) != 1 {
		t.Fatalf("results.json = %s (%v)", b, err)
	}
	for _, k := range []string{"scenario", "metric", "unit", "median", "min", "max", "limit"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("results.json entry lacks %q: %s", k, b)
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "BENCHMARKS.md"))
	if !strings.Contains(string(md), "| worker drain | items/s, 1 worker(s) |") || !strings.Contains(string(md), "Machine: ") {
		t.Errorf("BENCHMARKS.md lacks the row or the machine line:\n%s", md)
	}
}

// quantileSince reads the bucket holding a quantile of what was observed
// between two readings of a cumulative histogram, not since the start.
func TestHistogramQuantileSinceAnEarlierReading(t *testing.T) {
	inf := math.Inf(1)
	bounds := []float64{0.001, 0.002, 0.004, inf}
	before := histogram{bounds: bounds, counts: []uint64{100, 100, 100, 100}}
	// Since before: 90 within 1 ms, 8 more within 4 ms, 2 beyond.
	after := histogram{bounds: bounds, counts: []uint64{190, 190, 198, 200}}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{0.5, 1}, {0.9, 1}, {0.95, 4}, {0.98, 4}, {0.99, inf}} {
		if got := after.quantileSince(before, tc.q); got != tc.want {
			t.Errorf("q %.2f: %v ms, want %v", tc.q, got, tc.want)
		}
	}
	if got := before.quantileSince(before, 0.99); got != 0 {
		t.Errorf("nothing observed: %v, want 0", got)
	}
}

package redisq_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

// commandCalls is how many times Redis has run cmd (lower case), scripts'
// calls included.
func commandCalls(t *testing.T, srv *redistest.Server, cmd string) int {
	t.Helper()
	info, err := srv.Do("INFO", "commandstats")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(info)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// A batch larger than redisq.ItemsPerCall is taken and finished as several
// calls, so that Redis serves the gateways' pushes between them, and the
// worker sees what one call would have handed over: the oldest items in
// order, the processing list holding exactly them, leftovers of a lost
// answer first.
func TestLargeBatchesGoToRedisInBoundedCalls(t *testing.T) {
	c, srv := open(t)
	ctx := context.Background()
	per := redisq.ItemsPerCall
	items := func(from, n int) (out []string) {
		for i := from; i < from+n; i++ {
			out = append(out, fmt.Sprintf(`{"device":"d%d","id":"m%d"}`, i%7, i))
		}
		return out
	}
	push := func(vals []string) {
		t.Helper()
		b := make([][]byte, len(vals))
		for i, v := range vals {
			b[i] = []byte(v)
		}
		if err := c.Push(ctx, b...); err != nil {
			t.Fatal(err)
		}
	}
	all := items(0, 3*per+500)
	push(all)

	before := commandCalls(t, srv, "rpop")
	batch := 2*per + 300
	got, err := c.Take(ctx, "w1", batch, 0)
	if err != nil || !slices.Equal(got, all[:batch]) {
		t.Fatalf("take %d: got %d items (%v), want the %d oldest in order", batch, len(got), err, batch)
	}
	if calls := commandCalls(t, srv, "rpop") - before; calls < 3 {
		t.Fatalf("take of %d items ran %d RPOPs, want at least 3 of at most %d", batch, calls, per)
	}
	before = commandCalls(t, srv, "lrange")
	if held, err := c.InFlight(ctx, "w1"); err != nil || !slices.Equal(held, got) {
		t.Fatalf("processing list holds %d items (%v), want the %d taken", len(held), err, len(got))
	}
	if calls := commandCalls(t, srv, "lrange") - before; calls < 3 {
		t.Fatalf("reading %d items in flight ran %d LRANGEs, want at least 3 of at most %d", batch, calls, per)
	}
	next, err := c.TakeMore(ctx, "w1", batch)
	if want := all[batch:]; err != nil || !slices.Equal(next, want) {
		t.Fatalf("take more: got %d items (%v), want the %d left", len(next), err, len(want))
	}

	if _, err := c.Done(ctx, "w1", got[:per+1], nil); err == nil {
		t.Fatalf("done with %d items in one call: no error", per+1)
	}
	left := 0
	for part := range slices.Chunk(got, per) {
		if left, err = c.Done(ctx, "w1", part, nil); err != nil {
			t.Fatal(err)
		}
	}
	if left != len(next) {
		t.Fatalf("after finishing the first batch in parts: %d left, want %d", left, len(next))
	}

	// The next batch is still in the processing list, as after a lost
	// answer; a take hands it over first and tops up from the ingest list.
	more := items(len(all), 2*per)
	push(more)
	again, err := c.Take(ctx, "w1", batch, 0)
	want := append(slices.Clone(next), more[:batch-len(next)]...)
	if err != nil || !slices.Equal(again, want) {
		t.Fatalf("take after: got %d items (%v), want the %d held then %d new", len(again), err, len(next), batch-len(next))
	}
	if held, err := c.InFlight(ctx, "w1"); err != nil || !slices.Equal(held, again) {
		t.Fatalf("processing list holds %d items (%v), want the %d taken", len(held), err, len(again))
	}

	// More held than a batch: the oldest batch of them, nothing new.
	if _, err := c.TakeMore(ctx, "w1", batch); err != nil {
		t.Fatal(err)
	}
	held, _ := c.InFlight(ctx, "w1")
	third, err := c.Take(ctx, "w1", batch, 0)
	if err != nil || !slices.Equal(third, held[:batch]) {
		t.Fatalf("take with %d held: got %d items (%v), want the %d oldest held", len(held), len(third), err, batch)
	}
}

// A dead worker's processing list larger than one call is recovered in
// calls of redisq.ItemsPerCall: every item back on the ingest list once, the
// oldest taken first, one attempt each, and the worker out of the set only
// once its list is empty.
func TestLargeProcessingListOfADeadWorkerIsRecoveredInBoundedCalls(t *testing.T) {
	c, srv := open(t)
	ctx := context.Background()
	n := 2*redisq.ItemsPerCall + 7
	all := make([][]byte, n)
	for i := range all {
		all[i] = fmt.Appendf(nil, `{"device":"d%d","id":"m%d"}`, i%5, i)
	}
	if err := c.Push(ctx, all...); err != nil {
		t.Fatal(err)
	}
	taken, err := c.Take(ctx, "dead", n, 0) // no heartbeat: dead at once
	if err != nil || len(taken) != n {
		t.Fatalf("take: %d items, %v", len(taken), err)
	}
	before := commandCalls(t, srv, "ltrim")
	got, err := c.RecoverDead(ctx)
	if err != nil || got["dead"] != n {
		t.Fatalf("recovered %v, %v; want %d", got, err, n)
	}
	if after := commandCalls(t, srv, "ltrim"); after == before {
		t.Fatalf("recovery of %d items ran as one call (LTRIM calls %d -> %d)", n, before, after)
	}
	if held, _ := c.InFlight(ctx, "dead"); len(held) != 0 {
		t.Fatalf("dead worker's list still holds %d", len(held))
	}
	if members, _ := srv.Do("SISMEMBER", c.Keys().Workers(), "dead"); members != "0" {
		t.Fatalf("dead worker still in the workers set: %q", members)
	}
	again, err := c.Take(ctx, "w2", n, 0)
	if err != nil || !slices.Equal(again, taken) {
		t.Fatalf("take after recovery: %d items (%v), want the %d recovered, oldest first", len(again), err, n)
	}
	counts, err := c.Attempts(ctx, []string{"d0\nm0", "d1\nm1", fmt.Sprintf("d%d\nm%d", (n-1)%5, n-1)})
	if err != nil || !slices.Equal(counts, []int{1, 1, 1}) {
		t.Fatalf("attempts after recovery: %v %v, want 1 each", counts, err)
	}
}

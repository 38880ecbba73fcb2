package main

import (
	"strings"
	"testing"
	"time"
)

// One worker process with --concurrency 3 runs three pipelines, each a
// worker of its own to Redis (w-1, w-2, w-3): every acked frame is stored
// once, queue stats counts three workers, a kill -9 in mid-stream loses and
// duplicates nothing once the process is back with the same --id, and
// SIGTERM exits 0.
func TestWorkerConcurrencyPipelines(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--device-rate", "5000")
	args := []string{"worker", "--id", "w", "--concurrency", "3", "--batch", "20"}
	w := c.start("worker", args...)
	checkFor(t, 10*time.Second, "three workers registered", func() bool {
		return strings.Contains(c.cli("queue", "stats"), "workers: 3")
	})

	ids, toks := c.addFleet("cc", 6)
	wait := sendFleet(t, base, ids, toks, 300)
	checkFor(t, 30*time.Second, "the pipelines busy", func() bool { return len(c.storedIDs(ids)) > 100 })
	w.kill9()
	w = c.start("worker-again", args...)
	want := wait()
	c.checkStoredOnce(60*time.Second, "every acked frame stored once", ids, want)
	checkFor(t, 10*time.Second, "every processing list empty", func() bool {
		s := c.cli("queue", "stats")
		return strings.Contains(s, "in_flight: 0") && strings.Contains(s, "pending: 0") && strings.Contains(s, "dead: 0")
	})
	if code := w.stop(t); code != 0 {
		t.Fatalf("worker exit %d after SIGTERM, want 0", code)
	}
}

package bench

import (
	"context"
	"fmt"
	"strings"
)

// Scenario is one named part of the suite.
type Scenario struct {
	Name  string
	About string
	Run   func(ctx context.Context, e *Env, r *Results, runs int, repo string) error
}

// Scenarios in the order.
var Scenarios = []Scenario{
	{"drain-sqlite", "1,000,000 items (100,000 with --quick) of 1,000 devices pre-filled on the ingest list, drained into a new SQLite file by 1 and by 2 `devtrack worker` processes; items/s from the moment the list appears (RENAME of the pre-filled key) until it and every processing list are empty; the store must then hold every item",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.Drain(ctx, r, runs, false)
		}},
	{"drain-postgres", "the same into a new database of the harness's own PostgreSQL (fsync off)",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.Drain(ctx, r, runs, true)
		}},
	{"ingest-ws", "1,000 devices (devclient, one frame per message) on one gateway with one worker draining into SQLite; offered rates step up (5k, 10k, 20k, 30k, 40k, 60k, 80k, 100k, 150k frames/s for 10 s each; --quick 5k, 10k, 20k, 30k, 40k, 80k for 4 s) until less than 95% of the offered frames are acked within 2 s of the step's end; the ceiling is the acked rate of the highest step acked in full, ack latency (devclient's, send to ack) at 20k, the longest ingest list seen at 20k; at 20k also the gateway's own share of the ack latency (its devtrack_gateway_ack_seconds histogram, from reading a frame to writing its ack: the upper bound of the bucket holding p50 and p99, buckets doubling from 0.1 ms) and the CPU of the gateway, the worker, redis-server and the harness itself over the step (devices connecting included), from /proc; then, after the last step, the worker stopped, the 20k step once more with the same measures: the gateway's figure when the worker runs on another machine (the list is not drained)",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.IngestWS(ctx, r, runs)
		}},
	{"ingest-http-1", "the same over POST /api/v1/ingest, one frame per request, each device one request at a time (a device whose request outlasts its interval skips ticks, so the offered rate is not reached); latency is the request's round trip",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.IngestHTTP(ctx, r, runs, 1)
		}},
	{"ingest-http-50", "the same with batches of 50 frames per request",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.IngestHTTP(ctx, r, runs, 50)
		}},
	{"live", "live one-to-one: 1,000 viewers (/ws/live?subscribe=, the admin's token) each watching its own device; the harness PUBLISHes viewer-protocol JSON on devtrack:live:<device> as a worker does, 20k msg/s round-robin, pipelined per ms, for 10 s (4 s --quick); latency from the PUBLISH to the viewer's read (the id carries the publish time), delivered share, gateway CPU from /proc (user+system over the window, % of one core); then the ceiling: 50k, 100k, 150k, 200k msg/s for 5 s each (2 s --quick) on the same viewers, until less than 99.9% arrive within 3 s: the highest step delivered in full, the highest with p99 <= 10 ms, and the p99 at 150k",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.Live(ctx, r, runs, false)
		}},
	{"fanout", "fan-out: 100 viewers on one device, 2k msg/s on its channel: deliveries/s, delivered share, latency as above; then the ceiling: 3k, 4k, 6k, 8k, 10k, 15k, 20k msg/s for 5 s each (2 s --quick) on the same viewers, until less than 99.9% of the deliveries arrive within 3 s; the deliveries/s and p99 of the highest step delivered in full",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.Live(ctx, r, runs, true)
		}},
	{"idle", "idle memory: 10,000 (2,000 --quick) devices (devclient, no frames), then on a fresh gateway as many viewers each subscribed to one device; VmRSS of the gateway from /proc once it settles (under 1% change in 500 ms) after all are connected, minus the same before, divided by the count; and the same delta of the Go heap and stacks in use (the gateway's /metrics) after four collections (asked through its --pprof listener; each halves a parked goroutine's stack at most once, and an idle gateway runs as many within minutes), which leaves out the handshakes' garbage and the collector's headroom; DEVTRACK_BENCH_HEAPPROFILES=dir saves the gateway's heap profile there",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error { return e.Idle(ctx, r, runs) }},
	{"connect", "10,000 (2,000 --quick) viewers dialled at once (500 handshakes in flight), each subscribing to one device at the handshake: seconds until every one has its snapshot; again with a last position and last-seen in Redis for 100,000 devices (20,000 --quick): the fleet's and others'",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error {
			return e.Connect(ctx, r, runs)
		}},
	{"storm", "reconnect storm: 10,000 (2,000 --quick) devclient devices connected, the gateway stopped (SIGTERM) and started again on its port; seconds from the new process's start until every device has connected again (devclient backoff 200 ms to 1 s), and the links in Redis after",
		func(ctx context.Context, e *Env, r *Results, runs int, _ string) error { return e.Storm(ctx, r, runs) }},
	{"micro", "the existing `go test -bench` benchmarks with -benchmem: frame parse, item decode, SQLite batch insert, viewer fan-out; ns/op and allocs/op, one value per -count",
		func(ctx context.Context, e *Env, r *Results, runs int, repo string) error {
			return e.Micro(ctx, r, runs, repo)
		}},
}

// Select returns the scenarios named in only (all when empty).
func Select(only string) ([]Scenario, error) {
	if only == "" {
		return Scenarios, nil
	}
	var out []Scenario
	for _, name := range strings.Split(only, ",") {
		found := false
		for _, s := range Scenarios {
			if s.Name == strings.TrimSpace(name) {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("no scenario %q (see -list)", name)
		}
	}
	return out, nil
}

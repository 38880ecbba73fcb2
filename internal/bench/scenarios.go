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

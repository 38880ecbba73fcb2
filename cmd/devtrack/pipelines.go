package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/worker"
)

// maxConcurrency bounds devtrack worker --concurrency.
const maxConcurrency = 16

// pipelines are the workers of one devtrack worker process (--concurrency).
// Each is a whole worker.Worker with its own id, processing list and
// heartbeat, so Redis sees N workers and recovers each one's items as ever;
// they share the process's store and Redis client. With SQLite that is the
// point: two pipelines on one write connection drain faster than one
// (BenchmarkDrain: 50.5k -> 65.1k items/s), while two worker processes on
// one file drain slower (BENCHMARKS.md: 29.9k -> 13.3k).
type pipelines []*worker.Worker

// checkConcurrency refuses a --concurrency out of range, before anything
// is opened.
func checkConcurrency(n int) error {
	if n < 1 || n > maxConcurrency {
		return usagef("--concurrency %d: want 1 to %d", n, maxConcurrency)
	}
	return nil
}

// newPipelines makes n workers of cfg (n checked by checkConcurrency). With
// n > 1 and an id given, they are id-1 ... id-n, so a restart with the same
// --id and --concurrency takes back each one's in-flight items at once.
func newPipelines(cfg worker.Config, n int, rdb *redisq.Client, store worker.BatchStore, log *zap.Logger) (pipelines, error) {
	ws := make(pipelines, n)
	for i := range ws {
		c := cfg
		if n > 1 && cfg.ID != "" {
			c.ID = fmt.Sprintf("%s-%d", cfg.ID, i+1)
		}
		w, err := worker.New(c, rdb, store, log)
		if err != nil {
			return nil, err
		}
		ws[i] = w
	}
	return ws, nil
}

// run runs every pipeline until ctx ends, or until one fails: then the
// others are stopped too (as a SIGTERM would). It returns once all have
// returned, with what failed.
func (ws pipelines) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(ws))
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Go(func() {
			if errs[i] = w.Run(ctx); errs[i] != nil {
				cancel()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// ready is nil when every pipeline is ready.
func (ws pipelines) ready(ctx context.Context) error {
	for _, w := range ws {
		if err := w.Ready(ctx); err != nil {
			return fmt.Errorf("worker %s: %w", w.ID(), err)
		}
	}
	return nil
}

// busy reports whether any pipeline has a backlog.
func (ws pipelines) busy() bool {
	for _, w := range ws {
		if w.Busy() {
			return true
		}
	}
	return false
}

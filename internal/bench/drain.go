package bench

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

// Drain is scenario 1: items pre-filled on the ingest list (the README's
// queue item format, interleaved over the devices, LPUSHed pipelined onto a
// staging key and RENAMEd onto the ingest list once the workers idle), then
// drained by 1 or 2 devtrack worker processes, or by one with two pipelines
// (--concurrency 2); items/s from the RENAME until
// the ingest list and every processing list are empty, and the store must
// hold every item.
func (e *Env) Drain(ctx context.Context, r *Results, runs int, pg bool) error {
	items, devices := 1_000_000, 1000
	if e.Quick {
		items = 100_000
	}
	storeName := "SQLite"
	if pg {
		storeName = "PostgreSQL"
		if _, err := e.StartPG(ctx); err != nil {
			return err
		}
	}
	target := map[bool]string{false: ">= 150k items/s SQLite; two faster than one", true: ">= 200k items/s PostgreSQL; two faster than one"}[pg]
	for run := range runs {
		limits, err := e.RedisLimits(ctx)
		if err != nil {
			return err
		}
		if r.Limits == nil {
			r.Limits = limits
		}
		// Worker processes and pipelines per process (--concurrency).
		for _, v := range []struct{ workers, pipelines int }{{1, 1}, {2, 1}, {1, 2}} {
			rate, err := e.drainOnce(ctx, items, devices, v.workers, v.pipelines, pg)
			if err != nil {
				return fmt.Errorf("drain run %d, %d workers x %d pipelines: %w", run+1, v.workers, v.pipelines, err)
			}
			scen := fmt.Sprintf("worker drain, %s items into %s", fmtNum(float64(items)), storeName)
			metric := fmt.Sprintf("items/s, %d worker(s)", v.workers)
			if v.pipelines > 1 {
				metric = fmt.Sprintf("items/s, 1 worker, --concurrency %d", v.pipelines)
			}
			r.Add(scen, metric, "items/s", rate, "RPOP -P 64", limits, target)
			e.Log.Sugar().Infof("%s, %s, run %d: %.0f items/s", scen, metric, run+1, rate)
		}
	}
	return nil
}

func (e *Env) drainOnce(ctx context.Context, items, devices, workers, pipelines int, pg bool) (float64, error) {
	if err := e.FlushRedis(ctx); err != nil {
		return 0, err
	}
	dsn := e.NewSQLite()
	if pg {
		var err error
		if dsn, err = e.PG.NewDB(ctx); err != nil {
			return 0, err
		}
	}
	f, err := e.NewFleet(ctx, dsn, devices)
	if err != nil {
		return 0, err
	}
	staging := "devtrack:bench:staging"
	if err := e.prefill(ctx, staging, f.IDs, items); err != nil {
		return 0, err
	}
	var procs []*Proc
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	var ids []string // of the pipelines: their heartbeats and processing lists
	for i := range workers {
		id := fmt.Sprintf("bench-w%d", i+1)
		p, err := e.StartWorker(dsn, id, "--concurrency", strconv.Itoa(pipelines))
		if err != nil {
			return 0, err
		}
		procs = append(procs, p)
		if pipelines == 1 {
			ids = append(ids, id)
			continue
		}
		for j := range pipelines {
			ids = append(ids, fmt.Sprintf("%s-%d", id, j+1))
		}
	}
	// The workers are ready once they heartbeat.
	err = Poll(ctx, 30*time.Second, func() bool {
		for _, id := range ids {
			n, _ := e.RDB.Do(ctx, e.RDB.B().Exists().Key(e.Keys.WorkerAlive(id)).Build()).AsInt64()
			if n == 0 {
				return false
			}
		}
		return true
	})
	if err != nil {
		return 0, fmt.Errorf("workers not alive: %w", err)
	}
	start := time.Now()
	if err := e.RDB.Do(ctx, e.RDB.B().Rename().Key(staging).Newkey(e.Keys.Queue()).Build()).Error(); err != nil {
		return 0, fmt.Errorf("rename staging onto the ingest list: %w", err)
	}
	timeout := time.Duration(items/1000+60) * time.Second
	err = Poll(ctx, timeout, func() bool {
		if e.LLen(ctx, e.Keys.Queue()) > 0 {
			return false
		}
		for _, id := range ids {
			if e.LLen(ctx, e.Keys.Processing(id)) > 0 {
				return false
			}
		}
		return true
	})
	elapsed := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("drain: %w (%d left)", err, e.LLen(ctx, e.Keys.Queue()))
	}
	for _, p := range procs {
		p.Stop()
	}
	procs = nil
	n, err := CountRows(ctx, dsn)
	if err != nil {
		return 0, err
	}
	if dead := e.LLen(ctx, e.Keys.Dead()); n != int64(items) || dead != 0 {
		return 0, fmt.Errorf("store holds %d rows of %d items, %d dead letters", n, items, dead)
	}
	return float64(items) / elapsed.Seconds(), nil
}

// prefill LPUSHes items onto key, 1,000 per LPUSH, 20 LPUSHes per pipeline,
// round-robin over the devices (the order a busy gateway pushes them in).
func (e *Env) prefill(ctx context.Context, key string, devices []string, items int) error {
	now := time.Now().UnixMilli()
	const perPush, perPipe = 1000, 20
	var cmds rueidis.Commands
	vals := make([]string, 0, perPush)
	flush := func() error {
		for _, res := range e.RDB.DoMulti(ctx, cmds...) {
			if err := res.Error(); err != nil {
				return fmt.Errorf("prefill lpush: %w", err)
			}
		}
		cmds = cmds[:0]
		return nil
	}
	for i := range items {
		dev := devices[i%len(devices)]
		seq := i / len(devices)
		ts := now - int64(items-i)
		b := make([]byte, 0, 256)
		b = append(b, `{"v":1,"device":"`...)
		b = append(b, dev...)
		b = append(b, `","id":"m-`...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, `","type":"location","ts":`...)
		b = strconv.AppendInt(b, ts, 10)
		b = append(b, `,"received_at":`...)
		b = strconv.AppendInt(b, ts+42, 10)
		b = fmt.Appendf(b, `,"gateway":"bench","data":{"lat":%.6f,"lng":%.6f,"accuracy":12.5}}`,
			31.2304+float64(seq%1000)*1e-5, 121.4737+float64(i%len(devices))*1e-4)
		vals = append(vals, string(b))
		if len(vals) == perPush || i == items-1 {
			cmds = append(cmds, e.RDB.B().Lpush().Key(key).Element(vals...).Build())
			vals = make([]string, 0, perPush)
			if len(cmds) == perPipe || i == items-1 {
				if err := flush(); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

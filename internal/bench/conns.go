package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/devclient"
)

// devices are idle devclient connections, counting connects.
type devices struct {
	up     atomic.Int64 // connects so far (a reconnect counts again)
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func connectDevices(ctx context.Context, g *Gateway, tokens []string) *devices {
	d := &devices{}
	ctx, d.cancel = context.WithCancel(ctx)
	wsURL := strings.Replace(g.Base, "http://", "ws://", 1) + "/ws/device"
	for _, tok := range tokens {
		c := devclient.New(devclient.Config{URL: wsURL, Token: tok, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second,
			OnState: func(up bool, _ error) {
				if up {
					d.up.Add(1)
				}
			}})
		d.wg.Add(1)
		go func() { defer d.wg.Done(); _ = c.Run(ctx) }()
	}
	return d
}

func (d *devices) Close() { d.cancel(); d.wg.Wait() }

// settledRSS waits until the RSS of pid changes by less than 1% over 500 ms
// (at most 10 s) and returns it.
func settledRSS(ctx context.Context, pid int) int64 {
	prev := procRSS(pid)
	for range 20 {
		select {
		case <-ctx.Done():
			return prev
		case <-time.After(500 * time.Millisecond):
		}
		cur := procRSS(pid)
		if diff := cur - prev; diff < prev/100 && -diff < prev/100 {
			return cur
		}
		prev = cur
	}
	return prev
}

// liveGoMemory is what the gateway's Go heap and goroutine stacks hold
// after collections (its /debug/pprof/heap?gc=1 runs one), from its
// /metrics. It asks for idleCollections of them: a collection halves a
// parked goroutine's stack at most once, and a reader started during the
// burst of handshakes may have started at 16 or 32 KB (the runtime starts
// goroutines at the average stack size it last saw); an idle gateway runs
// that many within minutes (the runtime forces one every 2 minutes).
func liveGoMemory(ctx context.Context, g *Gateway) (int64, error) {
	for range idleCollections {
		if _, err := pprofGet(ctx, g, "/debug/pprof/heap?gc=1"); err != nil {
			return 0, fmt.Errorf("collect garbage: %w", err)
		}
	}
	fams, err := gatewayMetrics(ctx, g)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, name := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes"} {
		fam, ok := fams[name]
		if !ok || len(fam.GetMetric()) != 1 {
			return 0, fmt.Errorf("metrics: no %s", name)
		}
		total += int64(fam.GetMetric()[0].GetGauge().GetValue())
	}
	return total, nil
}

// idleCollections is how many collections liveGoMemory runs.
const idleCollections = 4

// saveHeapProfile writes the gateway's heap profile to path, for a look at
// what idle connections hold (DEVTRACK_BENCH_HEAPPROFILES names the folder).
func saveHeapProfile(ctx context.Context, g *Gateway, path string) error {
	raw, err := pprofGet(ctx, g, "/debug/pprof/heap")
	if err != nil {
		return fmt.Errorf("heap profile: %w", err)
	}
	return os.WriteFile(path, raw, 0o644)
}

// pprofGet returns the body of path on the gateway's --pprof listener.
func pprofGet(ctx context.Context, g *Gateway, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Pprof+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

// Idle is scenario 3c: the gateway's RSS delta per idle connection, for n
// devices and, on a fresh gateway, n viewers (each subscribed to one device);
// and the delta of liveGoMemory. The RSS also holds the garbage of n
// handshakes and the collector's headroom (the heap may grow to twice what
// is live before a collection, GOGC=100), and so varies by half from run to
// run; the live figure is what the connections themselves keep.
func (e *Env) Idle(ctx context.Context, r *Results, runs int) error {
	n := e.idleCount()
	scen := fmt.Sprintf("idle memory, %s connections", fmtNum(float64(n)))
	f, err := e.NewFleet(ctx, e.NewSQLite(), n)
	if err != nil {
		return err
	}
	for run := range runs {
		for _, kind := range []string{"devices", "viewers"} {
			if err := e.FlushRedis(ctx); err != nil {
				return err
			}
			g, err := e.StartGateway(ctx, f.DSN, 0)
			if err != nil {
				return err
			}
			before := settledRSS(ctx, g.Pid())
			liveBefore, lerr := liveGoMemory(ctx, g)
			var closeFn func()
			switch kind {
			case "devices":
				d := connectDevices(ctx, g, f.Tokens)
				closeFn = d.Close
				err = Poll(ctx, 120*time.Second, func() bool { return d.up.Load() >= int64(n) })
			default:
				var v *viewers
				v, err = dialViewers(ctx, g, f.AdminToken, n, func(i int) string { return f.IDs[i] })
				if v != nil {
					closeFn = v.Close
				}
			}
			after := settledRSS(ctx, g.Pid())
			liveAfter, lerr2 := liveGoMemory(ctx, g)
			if dir := os.Getenv("DEVTRACK_BENCH_HEAPPROFILES"); dir != "" {
				// Only logged: the profile is not a figure.
				if err := saveHeapProfile(ctx, g, filepath.Join(dir, fmt.Sprintf("idle-%s-%d.pprof", kind, run+1))); err != nil {
					e.Log.Warn("save the gateway's heap profile", zap.Error(err))
				}
			}
			if closeFn != nil {
				closeFn()
			}
			g.Stop()
			if err != nil {
				return fmt.Errorf("idle %s: %w", kind, err)
			}
			if err = cmpErr(lerr, lerr2); err != nil {
				return fmt.Errorf("idle %s: %w", kind, err)
			}
			r.Add(scen, kind+": gateway RSS delta / connection", "KB", float64(after-before)/float64(n)/1024, "", nil, "<= 10 KB")
			r.Add(scen, kind+": gateway Go heap+stack in use after a GC, delta / connection", "KB", float64(liveAfter-liveBefore)/float64(n)/1024, "", nil, "<= 10 KB")
			e.Log.Sugar().Infof("%s %s run %d: RSS %d -> %d", scen, kind, run+1, before, after)
		}
	}
	return nil
}

// Connect is scenario 3d: n viewers (each subscribed to one of n devices at
// the handshake) connecting at once (500 handshakes in flight), seconds until
// every one has its snapshot; without and with every device having state
// (last position, last seen) in Redis.
func (e *Env) Connect(ctx context.Context, r *Results, runs int) error {
	n := e.idleCount()
	scen := fmt.Sprintf("%s viewers connecting and subscribed", fmtNum(float64(n)))
	f, err := e.NewFleet(ctx, e.NewSQLite(), n)
	if err != nil {
		return err
	}
	for range runs {
		for _, state := range []bool{false, true} {
			if err := e.FlushRedis(ctx); err != nil {
				return err
			}
			if state {
				if err := e.fillState(ctx, f, e.stateCount()); err != nil {
					return err
				}
			}
			g, err := e.StartGateway(ctx, f.DSN, 0)
			if err != nil {
				return err
			}
			t0 := time.Now()
			v, err := dialViewers(ctx, g, f.AdminToken, n, func(i int) string { return f.IDs[i] })
			secs := time.Since(t0).Seconds()
			if v != nil {
				v.Close()
			}
			g.Stop()
			if err != nil {
				return err
			}
			name := "seconds until all have their snapshot"
			if state {
				name += fmt.Sprintf(", %s devices with state", fmtNum(float64(e.stateCount())))
			}
			r.Add(scen, name, "s", secs, "", nil, map[bool]string{false: "<= 1 s", true: "<= 1 s, also with 100k devices in state"}[state])
		}
	}
	return nil
}

// Storm is scenario 3e: n devices connected; the gateway is stopped
// (SIGTERM) and started again on the same port; seconds from the new
// process's start until every device has connected again (devclient's
// backoff: 200 ms doubling up to 1 s).
func (e *Env) Storm(ctx context.Context, r *Results, runs int) error {
	n := e.idleCount()
	scen := fmt.Sprintf("reconnect storm, %s devices", fmtNum(float64(n)))
	f, err := e.NewFleet(ctx, e.NewSQLite(), n)
	if err != nil {
		return err
	}
	for range runs {
		if err := e.FlushRedis(ctx); err != nil {
			return err
		}
		g, err := e.StartGateway(ctx, f.DSN, 0)
		if err != nil {
			return err
		}
		d := connectDevices(ctx, g, f.Tokens)
		if err := Poll(ctx, 120*time.Second, func() bool { return d.up.Load() >= int64(n) }); err != nil {
			d.Close()
			g.Stop()
			return fmt.Errorf("devices connecting: %w", err)
		}
		g.Stop()
		t0 := time.Now()
		g, err = e.StartGateway(ctx, f.DSN, g.Port)
		if err != nil {
			d.Close()
			return err
		}
		err = Poll(ctx, 120*time.Second, func() bool { return d.up.Load() >= 2*int64(n) })
		secs := time.Since(t0).Seconds()
		links, _ := e.RDB.Do(ctx, e.RDB.B().Hlen().Key(e.Keys.Links()).Build()).AsInt64()
		d.Close()
		g.Stop()
		if err != nil {
			return fmt.Errorf("reconnect: %w (%d of %d)", err, d.up.Load()-int64(n), n)
		}
		r.Add(scen, "seconds from the restart until all are connected again", "s", secs, "", nil, "-")
		r.Add(scen, "links in Redis after the storm", "devices", float64(links), "", nil, fmt.Sprint(n))
	}
	return nil
}

package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/protocol"
)

// stepResult is one offered rate of an ingest scenario.
type stepResult struct {
	offered    float64
	sent       int64
	acked      int64
	errors     int64
	ackedPerS  float64
	lat        []time.Duration // sorted
	backlogMax int64
	keptUp     bool

	// Measured at the 20k step only.
	gwAckP50, gwAckP99 float64            // ms, the gateway's ack_seconds; 0 without WebSocket frames
	pushP99            float64            // ms, the gateway's push_seconds (LPUSH round trips)
	cpu                map[string]float64 // % of one core per process
}

// ingestSteps are the offered rates in frames/s. 30k sits between 20k and
// 40k: the WebSocket ingest was acked in full at 20k and fell behind at 40k
// in every full run, so without it the ceiling could only read 20k.
func (e *Env) ingestSteps() ([]float64, time.Duration) {
	if e.Quick {
		return []float64{5000, 10000, 20000, 30000, 40000, 80000}, 4 * time.Second
	}
	return []float64{5000, 10000, 20000, 30000, 40000, 60000, 80000, 100000, 150000}, 10 * time.Second
}

// ingestWorld is a gateway and one draining worker on a new SQLite store
// with 1,000 devices.
func (e *Env) ingestWorld(ctx context.Context) (*Fleet, *Gateway, *Proc, error) {
	if err := e.FlushRedis(ctx); err != nil {
		return nil, nil, nil, err
	}
	f, err := e.NewFleet(ctx, e.NewSQLite(), 1000)
	if err != nil {
		return nil, nil, nil, err
	}
	g, err := e.StartGateway(ctx, f.DSN, 0)
	if err != nil {
		return nil, nil, nil, err
	}
	w, err := e.StartWorker(f.DSN, "bench-w1")
	if err != nil {
		g.Stop()
		return nil, nil, nil, err
	}
	return f, g, w, nil
}

// sampleBacklog records the longest ingest list seen every 100 ms until stop.
func (e *Env) sampleBacklog(ctx context.Context, stop <-chan struct{}, out *atomic.Int64) *sync.WaitGroup {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if n := e.LLen(ctx, e.Keys.Queue()); n > out.Load() {
				out.Store(n)
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return &wg
}

// IngestWS is scenario 2a: 1,000 devices on devclient over WebSocket,
// offered rates stepping up until acks fall behind (less than 95% of the
// offered frames acked within 2 s of the step's end), with a worker draining.
func (e *Env) IngestWS(ctx context.Context, r *Results, runs int) error {
	return e.ingest(ctx, r, runs, "ingest over WebSocket, 1,000 devices", e.wsStep)
}

// IngestHTTP is scenario 2b: POST /api/v1/ingest from 1,000 devices, each
// request a batch of size frames, one request at a time per device.
func (e *Env) IngestHTTP(ctx context.Context, r *Results, runs, size int) error {
	return e.ingest(ctx, r, runs, fmt.Sprintf("ingest over HTTP, batches of %d, 1,000 devices", size),
		func(ctx context.Context, f *Fleet, g *Gateway, rate float64, d time.Duration) (stepResult, error) {
			return e.httpStep(ctx, f, g, rate, d, size)
		})
}

type stepFunc func(ctx context.Context, f *Fleet, g *Gateway, rate float64, d time.Duration) (stepResult, error)

func (e *Env) ingest(ctx context.Context, r *Results, runs int, scen string, step stepFunc) error {
	// A batch of 50 is one LPUSH of 50 elements: its limit is the pipelined one.
	limitOp := "LPUSH -P 1"
	if strings.Contains(scen, "batches of 50") {
		limitOp = "LPUSH -P 64"
	}
	rates, d := e.ingestSteps()
	for run := range runs {
		limits, err := e.RedisLimits(ctx)
		if err != nil {
			return err
		}
		f, g, w, err := e.ingestWorld(ctx)
		if err != nil {
			return err
		}
		var ceiling, drained float64
		var at20k *stepResult
		var last stepResult
		for _, rate := range rates {
			var res stepResult
			if rate == 20000 {
				res, err = e.measured20k(ctx, step, f, g, w, d)
			} else {
				res, err = step(ctx, f, g, rate, d)
			}
			if err != nil {
				g.Stop()
				w.Stop()
				return err
			}
			e.Log.Sugar().Infof("%s run %d: offered %.0f/s sent %d acked %d (%.0f/s) errors %d p50 %.1f ms p99 %.1f ms backlog max %d kept up %v",
				scen, run+1, rate, res.sent, res.acked, res.ackedPerS, res.errors, pct(res.lat, .5), pct(res.lat, .99), res.backlogMax, res.keptUp)
			if rate == 20000 {
				at20k = &res
			}
			last = res
			if !res.keptUp {
				break
			}
			ceiling = res.ackedPerS
			if float64(res.backlogMax) <= rate {
				drained = res.ackedPerS
			}
		}
		w.Stop()
		// The same 20k step with the box to the gateway, Redis and the
		// harness: what the gateway does when the worker runs elsewhere.
		var alone *stepResult
		if at20k != nil && strings.Contains(scen, "WebSocket") {
			res, err := e.measured20k(ctx, step, f, g, w, d)
			if err != nil {
				g.Stop()
				return err
			}
			e.Log.Sugar().Infof("%s run %d: 20k without a worker: p50 %.1f ms p99 %.1f ms gateway p99 <= %.1f ms",
				scen, run+1, pct(res.lat, .5), pct(res.lat, .99), res.gwAckP99)
			alone = &res
		}
		g.Stop()
		r.Add(scen, "ceiling (highest step acked in full)", "frames/s", ceiling, limitOp, limits, ceilingTarget(scen))
		r.Add(scen, "ceiling with the list drained (backlog never above 1 s of frames)", "frames/s", drained, limitOp, limits, "")
		r.Add(scen, "acked/s at the first step that fell behind (or the last)", "frames/s", last.ackedPerS, limitOp, limits, "")
		r.Add(scen, "harness sent/s at that step (below its offered rate: the load generator is the bound)", "frames/s", float64(last.sent)/d.Seconds(), "", nil, "")
		if at20k != nil {
			r.Add(scen, "ack p50 at 20k frames/s", "ms", pct(at20k.lat, .5), "", nil, "")
			r.Add(scen, "ack p99 at 20k frames/s", "ms", pct(at20k.lat, .99), "", nil, map[bool]string{true: "-", false: "<= 20 ms"}[strings.Contains(scen, "HTTP")])
			r.Add(scen, "worker backlog at 20k frames/s (max of list)", "items", float64(at20k.backlogMax), "", nil, "list drained")
			if at20k.gwAckP99 > 0 {
				r.Add(scen, "the gateway's share of ack p50 at 20k (frame read to ack written, ack_seconds bucket bound)", "ms", at20k.gwAckP50, "", nil, "")
				r.Add(scen, "the gateway's share of ack p99 at 20k (frame read to ack written, ack_seconds bucket bound)", "ms", at20k.gwAckP99, "", nil, "")
				r.Add(scen, "its LPUSH round trips p99 at 20k (push_seconds bucket bound)", "ms", at20k.pushP99, "", nil, "")
			}
			var total float64
			for _, name := range []string{"gateway", "worker", "redis-server", "harness"} {
				total += at20k.cpu[name]
				r.Add(scen, "CPU at 20k frames/s: "+name, "% of one core", at20k.cpu[name], "", nil, "")
			}
			r.Add(scen, "CPU at 20k frames/s: the four together (the box has 2 cores: 200%)", "% of one core", total, "", nil, "")
		}
		if alone != nil {
			r.Add(scen, "ack p99 at 20k frames/s, no worker on the box (list not drained)", "ms", pct(alone.lat, .99), "", nil, "<= 20 ms")
			r.Add(scen, "the gateway's share of ack p99 at 20k, no worker on the box", "ms", alone.gwAckP99, "", nil, "")
			r.Add(scen, "CPU at 20k frames/s, no worker on the box: gateway, redis-server and harness together", "% of one core", alone.cpu["gateway"]+alone.cpu["redis-server"]+alone.cpu["harness"], "", nil, "")
		}
	}
	return nil
}

// measured20k runs the 20k step and measures beside it the gateway's own
// ack and push latencies (its histograms) and the CPU of each process.
func (e *Env) measured20k(ctx context.Context, step stepFunc, f *Fleet, g *Gateway, w *Proc, d time.Duration) (stepResult, error) {
	ackBefore, pushBefore, err := gatewayLatencies(ctx, g)
	if err != nil {
		return stepResult{}, err
	}
	cpu := startCPU(map[string]int{"gateway": g.Pid(), "worker": w.Pid(), "redis-server": e.Redis.Pid(), "harness": 0})
	res, err := step(ctx, f, g, 20000, d)
	if err != nil {
		return res, err
	}
	res.cpu = cpu.stop()
	ack, push, err := gatewayLatencies(ctx, g)
	if err != nil {
		return res, err
	}
	res.gwAckP50, res.gwAckP99 = ack.quantileSince(ackBefore, .5), ack.quantileSince(ackBefore, .99)
	res.pushP99 = push.quantileSince(pushBefore, .99)
	return res, nil
}

func (e *Env) wsStep(ctx context.Context, f *Fleet, g *Gateway, rate float64, d time.Duration) (stepResult, error) {
	var acked, errs, sent, connected atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, int(rate*d.Seconds()))
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wsURL := strings.Replace(g.Base, "http://", "ws://", 1) + "/ws/device"
	clients := make([]*devclient.Client, len(f.Tokens))
	var runWG sync.WaitGroup
	for i, tok := range f.Tokens {
		clients[i] = devclient.New(devclient.Config{URL: wsURL, Token: tok,
			OnAck: func(_ string, l time.Duration) {
				acked.Add(1)
				mu.Lock()
				lat = append(lat, l)
				mu.Unlock()
			},
			OnError: func(devclient.FrameError) { errs.Add(1) },
			OnState: func(up bool, _ error) {
				if up {
					connected.Add(1)
				}
			},
		})
		runWG.Add(1)
		go func() { defer runWG.Done(); _ = clients[i].Run(cctx) }()
	}
	defer runWG.Wait()
	defer cancel()
	if err := Poll(ctx, 60*time.Second, func() bool { return connected.Load() >= int64(len(clients)) }); err != nil {
		return stepResult{}, fmt.Errorf("devices connecting: %w (%d of %d)", err, connected.Load(), len(clients))
	}
	res := e.drive(ctx, len(clients), rate, d, func(i, seq int) {
		loc := protocol.Location{Lat: 31.2304 + float64(seq%1000)*1e-5, Lng: 121.4737 + float64(i)*1e-4}
		if _, err := clients[i].Send(devclient.Frame{Type: protocol.TypeLocation, Data: loc}); err == nil {
			sent.Add(1)
		}
	}, func() (int64, int64) { return sent.Load(), acked.Load() + errs.Load() })
	res.sent, res.acked, res.errors = sent.Load(), acked.Load(), errs.Load()
	mu.Lock()
	res.lat = sortDur(lat)
	mu.Unlock()
	return res, nil
}

// drive calls send(device, seq) for each of n devices at rate/n per second
// for d, then waits up to 2 s for done() to catch up with sent(); it sets
// the rate, backlog and keptUp of the result.
func (e *Env) drive(ctx context.Context, n int, rate float64, d time.Duration, send func(i, seq int), progress func() (sent, done int64)) stepResult {
	interval := time.Duration(float64(time.Second) * float64(n) / rate)
	var backlog atomic.Int64
	stop := make(chan struct{})
	bw := e.sampleBacklog(ctx, stop, &backlog)
	start := time.Now()
	sctx, cancel := context.WithTimeout(ctx, d)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the devices over the first interval.
			select {
			case <-time.After(time.Duration(i) * interval / time.Duration(n)):
			case <-sctx.Done():
				return
			}
			t := time.NewTicker(interval)
			defer t.Stop()
			for seq := 0; ; seq++ {
				send(i, seq)
				select {
				case <-sctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
	wg.Wait()
	cancel()
	_ = Poll(ctx, 2*time.Second, func() bool { s, dn := progress(); return dn >= s })
	elapsed := time.Since(start)
	close(stop)
	bw.Wait()
	sent, done := progress()
	res := stepResult{offered: rate, ackedPerS: float64(done) / elapsed.Seconds(), backlogMax: backlog.Load()}
	res.keptUp = done >= sent && float64(done) >= 0.95*rate*d.Seconds()
	return res
}

func (e *Env) httpStep(ctx context.Context, f *Fleet, g *Gateway, rate float64, d time.Duration, size int) (stepResult, error) {
	var acked, errs, sent atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, int(rate*d.Seconds())/size)
	tr := &http.Transport{MaxIdleConns: 2000, MaxIdleConnsPerHost: 2000, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	cl := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	now := time.Now().UnixMilli()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	res := e.drive(ctx, len(f.Tokens), rate/float64(size), d, func(i, seq int) {
		var b bytes.Buffer
		b.WriteByte('[')
		for k := range size {
			if k > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"type":"location","id":"h%s-%d-%d","ts":%d,"data":{"lat":%.6f,"lng":%.6f}}`,
				run, seq, k, now, 31.2304+float64(seq%1000)*1e-5, 121.4737+float64(i)*1e-4)
		}
		b.WriteByte(']')
		req, _ := http.NewRequestWithContext(ctx, "POST", g.Base+"/api/v1/ingest", &b)
		req.Header.Set("Authorization", "Bearer "+f.Tokens[i])
		req.Header.Set("Content-Type", "application/json")
		sent.Add(int64(size))
		t0 := time.Now()
		resp, err := cl.Do(req)
		if err != nil {
			errs.Add(int64(size))
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		l := time.Since(t0)
		if resp.StatusCode != 200 {
			errs.Add(int64(size))
			return
		}
		acked.Add(int64(size))
		mu.Lock()
		lat = append(lat, l)
		mu.Unlock()
	}, func() (int64, int64) { return sent.Load(), acked.Load() + errs.Load() })
	// drive's rate is in requests; progress counts frames.
	res.offered = rate
	res.sent, res.acked, res.errors = sent.Load(), acked.Load(), errs.Load()
	res.keptUp = res.errors == 0 && float64(res.acked) >= 0.95*rate*d.Seconds()
	mu.Lock()
	res.lat = sortDur(lat)
	mu.Unlock()
	return res, nil
}

// ceilingTarget is issue 11's target for the ceiling of scen.
func ceilingTarget(scen string) string {
	switch {
	case strings.Contains(scen, "batches of 50"):
		return ">= 100k frames/s drained"
	case strings.Contains(scen, "WebSocket"):
		return ">= 50k frames/s end to end, list drained"
	}
	return "-"
}

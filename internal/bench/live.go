package bench

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// liveWorld is a gateway (no worker: the harness publishes as one) on a new
// SQLite store with n devices.
func (e *Env) liveWorld(ctx context.Context, n int) (*Fleet, *Gateway, error) {
	if err := e.FlushRedis(ctx); err != nil {
		return nil, nil, err
	}
	f, err := e.NewFleet(ctx, e.NewSQLite(), n)
	if err != nil {
		return nil, nil, err
	}
	g, err := e.StartGateway(ctx, f.DSN, 0)
	if err != nil {
		return nil, nil, err
	}
	return f, g, nil
}

// Live is scenario 3a (one-to-one: 1,000 viewers each watching its own
// device, 20k msg/s spread over the devices) and 3b (fan-out: 100 viewers on
// one device, 2k msg/s). Latency is from the PUBLISH to the viewer's read.
func (e *Env) Live(ctx context.Context, r *Results, runs int, fanout bool) error {
	n, nViewers, rate := 1000, 1000, 20000.0
	scen := "live one-to-one, 1,000 viewers, 20k msg/s"
	device := func(f *Fleet) func(int) string { return func(k int) string { return f.IDs[k%len(f.IDs)] } }
	if fanout {
		n, nViewers, rate = 1, 100, 2000
		scen = "live fan-out, 100 viewers on one device, 2k msg/s"
	}
	d := 10 * time.Second
	if e.Quick {
		d = 4 * time.Second
	}
	for run := range runs {
		limits, err := e.RedisLimits(ctx)
		if err != nil {
			return err
		}
		f, g, err := e.liveWorld(ctx, n)
		if err != nil {
			return err
		}
		v, err := dialViewers(ctx, g, f.AdminToken, nViewers, device(f))
		if err != nil {
			g.Stop()
			return err
		}
		v.record.Store(true)
		cpu0, t0 := procCPU(g.Pid()), time.Now()
		published, err := e.publishLive(ctx, rate, d, device(f))
		cpu := float64(procCPU(g.Pid())-cpu0) / float64(time.Since(t0)) * 100
		want := int64(published)
		if fanout {
			want = int64(published) * int64(nViewers)
		}
		_ = Poll(ctx, 3*time.Second, func() bool { return v.received.Load() >= want })
		v.record.Store(false)
		v.mu.Lock()
		lat := sortDur(slices.Clone(v.lat))
		v.mu.Unlock()
		got := int64(len(lat))
		var steps []liveStep
		if err == nil {
			rates, per := oneToOneRates, int64(1)
			if fanout {
				rates, per = fanoutRates, int64(nViewers)
			}
			steps, err = e.liveSteps(ctx, g, v, d/2, device(f), rates, per)
		}
		ceil := ceilingOf(steps)
		v.Close()
		g.Stop()
		if err != nil {
			return err
		}
		if fanout {
			r.Add(scen, "deliveries/s", "msg/s", float64(got)/d.Seconds(), "", nil, "")
			r.Add(scen, "delivered", "%", 100*float64(got)/float64(want), "", nil, "100% while a viewer keeps up")
			r.Add(scen, "ceiling: deliveries/s at the highest step delivered in full (>= 99.9%)", "msg/s", ceil.rate, "", nil, "ceiling >= 300k deliveries/s")
			r.Add(scen, "p99 publish→receive at the ceiling step", "ms", ceil.p99, "", nil, "")
			r.Add(scen, "deliveries/s at the highest step delivered in full with p99 <= 10 ms", "msg/s", ceil.rate10ms, "", nil, "")
			e.Log.Sugar().Infof("%s run %d: ceiling %.0f deliveries/s (p99 %.2f ms)", scen, run+1, ceil.rate, ceil.p99)
		} else {
			r.Add(scen, "published (harness)", "msg/s", float64(published)/d.Seconds(), "PUBLISH -P 64", limits, "20,000")
			r.Add(scen, "delivered", "%", 100*float64(got)/float64(want), "", nil, "")
			r.Add(scen, "ceiling: msg/s at the highest step delivered in full (>= 99.9%)", "msg/s", ceil.rate, "PUBLISH -P 64", limits, "")
			r.Add(scen, "msg/s at the highest step delivered in full with p99 <= 10 ms", "msg/s", ceil.rate10ms, "PUBLISH -P 64", limits, "p99 <= 10 ms at 150k")
			for _, st := range steps {
				if st.offered == 150000 {
					r.Add(scen, "p99 publish→receive at 150k msg/s offered", "ms", st.p99, "", nil, "<= 10 ms")
					r.Add(scen, "delivered at 150k msg/s offered", "%", 100*st.share, "", nil, "")
					for _, name := range []string{"gateway", "redis-server", "harness"} {
						r.Add(scen, "CPU at 150k msg/s offered: "+name, "% of one core", st.cpu[name], "", nil, "")
					}
				}
			}
			e.Log.Sugar().Infof("%s run %d: ceiling %.0f msg/s (p99 %.2f ms)", scen, run+1, ceil.rate, ceil.p99)
		}
		r.Add(scen, "p50 publish→receive", "ms", pct(lat, .5), "", nil, "")
		r.Add(scen, "p99 publish→receive", "ms", pct(lat, .99), "", nil, map[bool]string{false: "<= 5 ms", true: "<= 5 ms"}[fanout])
		r.Add(scen, "gateway CPU", "% of one core", cpu, "", nil, "")
		e.Log.Sugar().Infof("%s run %d: published %d received %d p50 %.2f ms p99 %.2f ms CPU %.0f%%", scen, run+1, published, got, pct(lat, .5), pct(lat, .99), cpu)
	}
	return nil
}

// fanoutRates are the offered rates (messages/s on the one device) of the
// fan-out's ceiling search, after its 2k msg/s measurement: with 100
// viewers, 300k to 2M deliveries/s.
var fanoutRates = []float64{3000, 4000, 6000, 8000, 10000, 15000, 20000}

// oneToOneRates are the offered rates (messages/s spread over the 1,000
// devices) of the one-to-one ceiling search, after its 20k measurement; the
// issue's bound is p99 <= 10 ms at 150k.
var oneToOneRates = []float64{50000, 100000, 150000, 200000}

// liveStep is one offered rate of a ceiling search: deliveries/s, the share
// of the expected deliveries that arrived and their p99.
type liveStep struct {
	offered, rate, share, p99 float64
	cpu                       map[string]float64 // % of one core: gateway, redis-server, harness
}

// liveCeiling is the deliveries/s and p99 of the highest step delivered in
// full, and the deliveries/s of the highest such step whose p99 was at most
// 10 ms (the one-to-one ceiling's latency bound in the issue).
type liveCeiling struct{ rate, p99, rate10ms float64 }

func ceilingOf(steps []liveStep) liveCeiling {
	var best liveCeiling
	for _, st := range steps {
		if st.share < 0.999 {
			break
		}
		best.rate, best.p99 = st.rate, st.p99
		if st.p99 <= 10 {
			best.rate10ms = st.rate
		}
	}
	return best
}

// liveSteps publishes at each of rates for d, spread over device(k), and
// measures each step: per is how many viewers get each message. A step is
// delivered in full when at least 99.9% of the deliveries arrive (a viewer
// that falls behind gets the newest position instead of every one, so the
// share drops once the gateway or the harness's readers cannot keep up); it
// stops after the first step that falls short.
func (e *Env) liveSteps(ctx context.Context, g *Gateway, v *viewers, d time.Duration, device func(k int) string, rates []float64, per int64) ([]liveStep, error) {
	var steps []liveStep
	for _, rate := range rates {
		cpu := startCPU(map[string]int{"gateway": g.Pid(), "redis-server": e.Redis.Pid(), "harness": 0})
		v.mu.Lock()
		v.lat = v.lat[:0]
		v.mu.Unlock()
		v.received.Store(0)
		v.record.Store(true)
		published, err := e.publishLive(ctx, rate, d, device)
		if err != nil {
			return steps, err
		}
		want := int64(published) * per
		_ = Poll(ctx, 3*time.Second, func() bool { return v.received.Load() >= want })
		v.record.Store(false)
		v.mu.Lock()
		lat := sortDur(slices.Clone(v.lat))
		v.mu.Unlock()
		st := liveStep{offered: rate, rate: float64(len(lat)) / d.Seconds(), share: float64(len(lat)) / float64(want), p99: pct(lat, .99), cpu: cpu.stop()}
		steps = append(steps, st)
		e.Log.Sugar().Infof("live step %.0f msg/s: delivered %.2f%%, %.0f deliveries/s, p99 %.2f ms", rate, 100*st.share, st.rate, st.p99)
		if st.share < 0.999 {
			break
		}
	}
	return steps, nil
}

// idleCount is the number of idle connections (10,000; 2,000 with --quick).
func (e *Env) idleCount() int {
	if e.Quick {
		return 2000
	}
	return 10000
}

// stateCount is how many devices have a last position and last-seen time in
// Redis in the connect scenario's second half: the 100,000 (20,000
// with --quick), the fleet's devices and as many others (devices of other
// viewers, say) as it takes.
func (e *Env) stateCount() int {
	if e.Quick {
		return 20000
	}
	return 100000
}

// fillState gives every device of f, and more up to n in all, a last
// position and a last-seen time in Redis, as a worker leaves them.
func (e *Env) fillState(ctx context.Context, f *Fleet, n int) error {
	ids := slices.Clone(f.IDs)
	for i := len(ids); i < n; i++ {
		ids = append(ids, fmt.Sprintf("other-%d", i))
	}
	now := time.Now().UnixMilli()
	for chunk := range slices.Chunk(ids, 10000) {
		last := e.RDB.B().Hset().Key(e.Keys.LastLocation()).FieldValue()
		seen := e.RDB.B().Hset().Key(e.Keys.LastSeen()).FieldValue()
		for _, id := range chunk {
			last = last.FieldValue(id, fmt.Sprintf(`{"type":"location","device":"%s","id":"m-1","ts":%d,"received_at":%d,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5}}`, id, now, now))
			seen = seen.FieldValue(id, fmt.Sprint(now))
		}
		for _, res := range e.RDB.DoMulti(ctx, last.Build(), seen.Build()) {
			if err := res.Error(); err != nil {
				return fmt.Errorf("fill device state: %w", err)
			}
		}
	}
	return nil
}

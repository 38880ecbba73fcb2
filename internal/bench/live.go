package bench

import (
	"context"
	"fmt"
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
		v.Close()
		g.Stop()
		if err != nil {
			return err
		}
		v.mu.Lock()
		lat := sortDur(v.lat)
		v.mu.Unlock()
		got := v.received.Load()
		if fanout {
			r.Add(scen, "deliveries/s", "msg/s", float64(got)/d.Seconds(), "", nil, "ceiling >= 300k deliveries/s")
			r.Add(scen, "delivered", "%", 100*float64(got)/float64(want), "", nil, "100% while a viewer keeps up")
		} else {
			r.Add(scen, "published (harness)", "msg/s", float64(published)/d.Seconds(), "PUBLISH -P 64", limits, "20,000")
			r.Add(scen, "delivered", "%", 100*float64(got)/float64(want), "", nil, "")
		}
		r.Add(scen, "p50 publish→receive", "ms", pct(lat, .5), "", nil, "")
		r.Add(scen, "p99 publish→receive", "ms", pct(lat, .99), "", nil, map[bool]string{false: "<= 5 ms", true: "<= 5 ms"}[fanout])
		r.Add(scen, "gateway CPU", "% of one core", cpu, "", nil, "")
		e.Log.Sugar().Infof("%s run %d: published %d received %d p50 %.2f ms p99 %.2f ms CPU %.0f%%", scen, run+1, published, got, pct(lat, .5), pct(lat, .99), cpu)
	}
	return nil
}

// idleCount is the number of idle connections (10,000; 2,000 with --quick).
func (e *Env) idleCount() int {
	if e.Quick {
		return 2000
	}
	return 10000
}

// fillState gives every device of f a last position and a last-seen time in
// Redis, as a worker leaves them.
func (e *Env) fillState(ctx context.Context, f *Fleet) error {
	now := time.Now().UnixMilli()
	last := e.RDB.B().Hset().Key(e.Keys.LastLocation()).FieldValue()
	seen := e.RDB.B().Hset().Key(e.Keys.LastSeen()).FieldValue()
	for _, id := range f.IDs {
		last = last.FieldValue(id, fmt.Sprintf(`{"type":"location","device":"%s","id":"m-1","ts":%d,"received_at":%d,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5}}`, id, now, now))
		seen = seen.FieldValue(id, fmt.Sprint(now))
	}
	for _, res := range e.RDB.DoMulti(ctx, last.Build(), seen.Build()) {
		if err := res.Error(); err != nil {
			return fmt.Errorf("fill device state: %w", err)
		}
	}
	return nil
}

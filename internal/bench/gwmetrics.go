package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// histogram is a cumulative Prometheus histogram read off /metrics.
type histogram struct {
	bounds []float64 // upper bounds, ascending, +Inf last
	counts []uint64  // cumulative
}

// gatewayMetrics reads and parses the gateway's /metrics.
func gatewayMetrics(ctx context.Context, g *Gateway) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.Base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read metrics: %w", err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

// histogramOf is the histogram name of fams.
func histogramOf(fams map[string]*dto.MetricFamily, name string) (histogram, error) {
	fam, ok := fams[name]
	if !ok || len(fam.GetMetric()) != 1 || fam.GetMetric()[0].GetHistogram() == nil {
		return histogram{}, fmt.Errorf("metrics: no histogram %s", name)
	}
	var h histogram
	for _, b := range fam.GetMetric()[0].GetHistogram().GetBucket() {
		h.bounds = append(h.bounds, b.GetUpperBound())
		h.counts = append(h.counts, b.GetCumulativeCount())
	}
	return h, nil
}

// gatewayLatencies reads the gateway's ack_seconds and push_seconds.
func gatewayLatencies(ctx context.Context, g *Gateway) (ack, push histogram, err error) {
	fams, err := gatewayMetrics(ctx, g)
	if err != nil {
		return
	}
	if ack, err = histogramOf(fams, "devtrack_gateway_ack_seconds"); err != nil {
		return
	}
	push, err = histogramOf(fams, "devtrack_gateway_push_seconds")
	return
}

// quantileSince is the upper bound of the bucket holding the q-th quantile
// (0..1) of what was observed between before and h, in ms; 0 when nothing
// was. A bucket bound, not an interpolation: the buckets double, so the
// true quantile lies between half of it and it.
func (h histogram) quantileSince(before histogram, q float64) float64 {
	if len(h.counts) == 0 || len(before.counts) != len(h.counts) {
		return 0
	}
	total := h.counts[len(h.counts)-1] - before.counts[len(before.counts)-1]
	if total == 0 {
		return 0
	}
	for i, c := range h.counts {
		if float64(c-before.counts[i]) >= q*float64(total) {
			return h.bounds[i] * 1000
		}
	}
	return h.bounds[len(h.bounds)-1] * 1000
}

// cpuShares measures the CPU of processes over a window, in % of one core.
type cpuShares struct {
	start time.Time
	pids  map[string]int
	at    map[string]time.Duration
}

// startCPU starts measuring the named processes (0 is this process).
func startCPU(pids map[string]int) *cpuShares {
	c := &cpuShares{start: time.Now(), pids: pids, at: map[string]time.Duration{}}
	for name, pid := range pids {
		c.at[name] = procCPU(c.pid(pid))
	}
	return c
}

func (c *cpuShares) pid(pid int) int {
	if pid == 0 {
		return os.Getpid()
	}
	return pid
}

// stop returns each process's CPU since start, in % of one core.
func (c *cpuShares) stop() map[string]float64 {
	wall := time.Since(c.start)
	out := map[string]float64{}
	for name, pid := range c.pids {
		out[name] = 100 * float64(procCPU(c.pid(pid))-c.at[name]) / float64(wall)
	}
	return out
}

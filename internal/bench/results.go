package bench

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Metric is one figure of a scenario over its runs.
type Metric struct {
	Scenario string
	Name     string
	Unit     string
	Values   []float64
	// LimitOp names the redis-benchmark figure it is compared with ("" for
	// none); Limits are that figure from each run of the scenario.
	LimitOp string
	Limits  []float64
	Target  string
	Note    string
}

// Median, Min and Max of the values (0 when there are none).
func (m *Metric) Median() float64 { return median(m.Values) }
func (m *Metric) Min() float64 {
	if len(m.Values) == 0 {
		return 0
	}
	return slices.Min(m.Values)
}

func (m *Metric) Max() float64 {
	if len(m.Values) == 0 {
		return 0
	}
	return slices.Max(m.Values)
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// Results collects metrics in the order they are first recorded.
type Results struct {
	metrics []*Metric
	// Limits is the first redis-benchmark run, for the machine table.
	Limits Limits
	Notes  []string
}

// Add records one run's value of a metric; spec (limit op, target) comes
// from the first call.
func (r *Results) Add(scenario, name, unit string, v float64, limitOp string, limits Limits, target string) {
	m := r.get(scenario, name, unit, limitOp, target)
	m.Values = append(m.Values, v)
	if limitOp != "" && limits != nil {
		m.Limits = append(m.Limits, limits[limitOp])
	}
}

func (r *Results) get(scenario, name, unit, limitOp, target string) *Metric {
	for _, m := range r.metrics {
		if m.Scenario == scenario && m.Name == name {
			return m
		}
	}
	m := &Metric{Scenario: scenario, Name: name, Unit: unit, LimitOp: limitOp, Target: target}
	r.metrics = append(r.metrics, m)
	return m
}

// Metrics are the recorded metrics.
func (r *Results) Metrics() []*Metric { return r.metrics }

type jsonResult struct {
	Scenario string    `json:"scenario"`
	Metric   string    `json:"metric"`
	Unit     string    `json:"unit"`
	Median   float64   `json:"median"`
	Min      float64   `json:"min"`
	Max      float64   `json:"max"`
	Limit    *float64  `json:"limit"`
	LimitOp  string    `json:"limit_op,omitempty"`
	Target   string    `json:"target,omitempty"`
	Runs     []float64 `json:"runs"`
}

// WriteJSON writes path (bench/results.json).
func (r *Results) WriteJSON(path string) error {
	out := []jsonResult{}
	for _, m := range r.metrics {
		j := jsonResult{Scenario: m.Scenario, Metric: m.Name, Unit: m.Unit, Median: round(m.Median()), Min: round(m.Min()),
			Max: round(m.Max()), LimitOp: m.LimitOp, Target: m.Target, Runs: m.Values}
		if len(m.Limits) > 0 {
			l := round(median(m.Limits))
			j.Limit = &l
		}
		out = append(out, j)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // targets read ">= 150k", not "\u003e= 150k"
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("encode results: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("make %s: %w", filepath.Dir(path), err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func round(v float64) float64 {
	switch a := max(v, -v); {
	case a >= 100:
		return float64(int64(v + 0.5*sign(v)))
	case a >= 1:
		return float64(int64(v*100+0.5*sign(v))) / 100
	default:
		return float64(int64(v*10000+0.5*sign(v))) / 10000
	}
}

func sign(v float64) float64 {
	if v < 0 {
		return -1
	}
	return 1
}

// fmtNum prints a figure compactly: 28,712 or 3.71 or 0.0042.
func fmtNum(v float64) string {
	a := max(v, -v)
	switch {
	case a >= 1000:
		s := fmt.Sprintf("%.0f", v)
		var b strings.Builder
		for i, c := range s {
			if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		return b.String()
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	case a == 0:
		return "0"
	default:
		return fmt.Sprintf("%.4f", v)
	}
}

// Markdown is the results table of BENCHMARKS.md.
func (r *Results) Markdown() string {
	var b strings.Builder
	b.WriteString("| scenario | metric | median | min–max | runs | Redis limit (same run) | ratio of limit | target |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, m := range r.metrics {
		limit, ratio := "-", "-"
		if len(m.Limits) > 0 {
			l := median(m.Limits)
			limit = fmt.Sprintf("%s %s/s", m.LimitOp, fmtNum(l))
			if l > 0 {
				ratio = fmt.Sprintf("%.1f%%", 100*m.Median()/l)
			}
		}
		target := m.Target
		if target == "" {
			target = "-"
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s–%s | %d | %s | %s | %s |\n", m.Scenario, m.Name, fmtNum(m.Median()), m.Unit,
			fmtNum(m.Min()), fmtNum(m.Max()), len(m.Values), limit, ratio, target)
	}
	return b.String()
}

package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"
)

// Result is one case's row of the table.
type Result struct {
	Case       string
	Sent       int
	Acked      int
	Stored     int // distinct acked ids found stored
	Missing    int // acked ids not stored
	Duplicates int // (device, id) pairs seen more than once (API pages or store file)
	Dead       int // dead letters whose item was acked
	Recovery   time.Duration
	Recovered  bool // every acked id stored within the wait
	// Allowed is how many missing ids the case accepts (appendfsync everysec's window).
	Allowed  int
	Notes    []string
	Failures []string
}

// Note adds a remark printed in the table.
func (r *Result) Note(format string, args ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, args...))
}

// Fail records why the case fails; the test reports every reason.
func (r *Result) Fail(format string, args ...any) {
	r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
}

// Check applies the suite's rule: missing beyond Allowed, any duplicate, any
// acked item dead-lettered, or no recovery, fail the case.
func (r *Result) Check() {
	if r.Missing > r.Allowed {
		r.Fail("%d acked ids not stored (allowed %d)", r.Missing, r.Allowed)
	}
	if r.Duplicates > 0 {
		r.Fail("%d duplicates", r.Duplicates)
	}
	if r.Dead > 0 {
		r.Fail("%d acked items dead-lettered", r.Dead)
	}
}

// Line is the one-line summary every case prints.
func (r *Result) Line() string {
	return fmt.Sprintf("%s: sent %d / acked %d / stored %d / missing %d / duplicates %d / dead %d / recovery %s",
		r.Case, r.Sent, r.Acked, r.Stored, r.Missing, r.Duplicates, r.Dead, r.recovery())
}

func (r *Result) recovery() string {
	if !r.Recovered {
		return "never"
	}
	return fmt.Sprintf("%.1f s", r.Recovery.Seconds())
}

// Passed reports whether the case has no failure.
func (r *Result) Passed() bool { return len(r.Failures) == 0 }

// Report collects the results of a suite run.
type Report struct {
	mu      sync.Mutex
	results []*Result
	started time.Time
}

// NewReport starts a report.
func NewReport() *Report { return &Report{started: time.Now()} }

// Add appends a result.
func (rp *Report) Add(r *Result) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	rp.results = append(rp.results, r)
}

// Markdown writes the table.
func (rp *Report) Markdown(w io.Writer, title string) {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	fmt.Fprintf(w, "\n### %s (%s)\n\n", title, time.Since(rp.started).Round(time.Second))
	fmt.Fprintln(w, "| case | sent | acked | stored | missing | duplicates | dead | recovery s | result | notes |")
	fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
	rs := append([]*Result(nil), rp.results...)
	sort.SliceStable(rs, func(i, j int) bool { return rs[i].Case < rs[j].Case })
	for _, r := range rs {
		res := "PASS"
		if !r.Passed() {
			res = "FAIL: " + strings.Join(r.Failures, "; ")
		}
		rec := "never"
		if r.Recovered {
			rec = fmt.Sprintf("%.1f", r.Recovery.Seconds())
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %d | %d | %s | %s | %s |\n", r.Case, r.Sent, r.Acked, r.Stored,
			r.Missing, r.Duplicates, r.Dead, rec, cell(res), cell(strings.Join(r.Notes, "; ")))
	}
}

func cell(s string) string { return strings.ReplaceAll(s, "|", "/") }

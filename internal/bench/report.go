package bench

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

// Machine is the machine line of BENCHMARKS.md.
func Machine() string {
	cpu := "unknown CPU"
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	goVer := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		goVer = strings.TrimSpace(string(out))
	}
	redis := "unknown"
	if out, err := exec.Command("redis-server", "--version").Output(); err == nil {
		for _, f := range strings.Fields(string(out)) {
			if v, ok := strings.CutPrefix(f, "v="); ok {
				redis = v
			}
		}
	}
	return fmt.Sprintf("%s, %d cores, Linux %s, %s, redis %s", cpu, runtime.NumCPU(), strings.TrimSpace(string(kernel)), goVer, redis)
}

// Report is what BENCHMARKS.md says around the table.
type Report struct {
	Command  string
	Revision string // Revision() when the binaries were built
	Quick    bool
	Runs     int
	Started  time.Time
	Elapsed  time.Duration
	Scenario []string // the scenarios run, with what each measures
}

// WriteMarkdown writes BENCHMARKS.md.
func (r *Results) WriteMarkdown(path string, rep Report) error {
	var b strings.Builder
	b.WriteString("# devtrack benchmarks\n\n")
	b.WriteString("Written by `scripts/bench` (issue 11); rerun it to replace this file and `bench/results.json`.\n\n")
	kind := "a full run"
	if rep.Quick {
		kind = "a `--quick` run (reduced counts) on a 2-core box shared with other engineers' builds and tests, so the figures are noisy: compare ratios within one run, not across runs"
	}
	fmt.Fprintf(&b, "This is %s: %d run(s) per scenario, started %s UTC, took %s.\n\n", kind, rep.Runs,
		rep.Started.UTC().Format("2006-01-02 15:04"), rep.Elapsed.Round(time.Second))
	fmt.Fprintf(&b, "Machine: %s.\n\n", Machine())
	if rep.Revision != "" {
		fmt.Fprintf(&b, "Built from: %s.\n\n", rep.Revision)
	}
	fmt.Fprintf(&b, "Command: `%s`\n\n", rep.Command)
	b.WriteString("Each figure is the median of the runs, with min–max. \"Redis limit\" is `redis-benchmark` (50 clients) against the harness's own redis-server in the same run, just before the scenario; the ratio is devtrack's median as a share of that limit.\n\n")
	b.WriteString(r.Markdown())
	if len(r.Limits) > 0 {
		b.WriteString("\nRedis limits of the first run (requests/s, `redis-benchmark -c 50`):\n\n| op | -P 1 | -P 64 |\n| --- | --- | --- |\n")
		for _, op := range []string{"LPUSH", "RPOP", "PUBLISH"} {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", op, fmtNum(r.Limits[op+" -P 1"]), fmtNum(r.Limits[op+" -P 64"]))
		}
	}
	if len(rep.Scenario) > 0 {
		b.WriteString("\n## What each scenario measures\n\n")
		for _, s := range rep.Scenario {
			b.WriteString("- " + s + "\n")
		}
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n## Notes from this run\n\n")
		for _, n := range r.Notes {
			b.WriteString("- " + n + "\n")
		}
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// Revision is the commit the binaries were built from, and whether the
// working tree had uncommitted changes ("" outside a git checkout).
func Revision() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	rev := "commit " + strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		rev += " plus uncommitted changes in the working tree"
	}
	return rev
}

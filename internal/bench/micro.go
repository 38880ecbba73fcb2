package bench

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// microBenches are the existing go test benchmarks of issue 11's list:
// frame parse, item decode, store batch insert, viewer fan-out (the viewer
// frame encode and write), by package.
var microBenches = []struct{ pkg, pattern string }{
	{"./internal/protocol/", "^Benchmark(ParseLocation|ParseLog|ParseBatch|DecodeItem)$"},
	{"./storage/sqlite/", "^BenchmarkSaveBatch$"},
	{"./wsgateway/", "^BenchmarkLiveFanout$"},
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+\d+\s+(.*)$`)

// Micro is scenario 4: the microbenchmarks with -benchmem, -count runs,
// from the repository at repo; ns/op and allocs/op (and any custom metric).
func (e *Env) Micro(ctx context.Context, r *Results, runs int, repo string) error {
	benchtime := "1s"
	if e.Quick {
		benchtime = "200ms"
	}
	for _, b := range microBenches {
		args := []string{"test", "-run", "^$", "-bench", b.pattern, "-benchmem", "-count", strconv.Itoa(runs), "-benchtime", benchtime, b.pkg}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			// One broken benchmark (another engineer's work in progress)
			// should not hide the others.
			r.Notes = append(r.Notes, fmt.Sprintf("micro: `go %s` failed: %v: %s", strings.Join(args, " "), err,
				strings.ReplaceAll(tail(string(out), 300), "\n", " ")))
		}
		sc := bufio.NewScanner(strings.NewReader(string(out)))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			f := strings.Fields(m[3])
			for i := 0; i+1 < len(f); i += 2 {
				v, err := strconv.ParseFloat(f[i], 64)
				if err != nil {
					continue
				}
				unit := f[i+1]
				if unit == "B/op" || unit == "MB/s" {
					continue
				}
				r.Add("micro "+b.pkg[2:len(b.pkg)-1], m[1]+" "+unit, unit, v, "", nil, "")
			}
		}
	}
	return nil
}

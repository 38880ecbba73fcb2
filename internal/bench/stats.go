package bench

import (
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// pct is the p-th quantile (0..1) of sorted latencies, in ms.
func pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := min(len(sorted)-1, max(0, int(math.Ceil(p*float64(len(sorted))))-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func sortDur(d []time.Duration) []time.Duration { slices.Sort(d); return d }

// procCPU is the user+system CPU time of pid so far (from /proc/pid/stat).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ is 100 on Linux
}

// procRSS is the resident set of pid in bytes (VmRSS of /proc/pid/status).
func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

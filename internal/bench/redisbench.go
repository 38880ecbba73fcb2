package bench

import (
	"context"
	"encoding/csv"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// Limits are redis-benchmark's requests per second against the harness's
// Redis, by "OP -P n" (LPUSH, RPOP, PUBLISH with -P 1 and -P 64).
type Limits map[string]float64

// LimitOps are the operations measured, in table order.
var LimitOps = []string{"LPUSH -P 1", "LPUSH -P 64", "RPOP -P 1", "RPOP -P 64", "PUBLISH -P 1", "PUBLISH -P 64"}

// RedisLimits runs redis-benchmark (50 clients) against the env's Redis.
func (e *Env) RedisLimits(ctx context.Context) (Limits, error) {
	n := 200_000
	if e.Quick {
		n = 50_000
	}
	out := Limits{}
	for _, p := range []int{1, 64} {
		reqs := n
		if p == 64 {
			reqs = n * 10
		}
		base := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(e.Redis.Port), "-n", strconv.Itoa(reqs), "-c", "50", "-P", strconv.Itoa(p), "--csv"}
		got, err := redisBenchmark(ctx, append(base, "-t", "lpush,rpop")...)
		if err != nil {
			return nil, err
		}
		pub, err := redisBenchmark(ctx, append(base, "PUBLISH", "devtrack:bench:limit", "hello")...)
		if err != nil {
			return nil, err
		}
		for k, v := range pub {
			got[strings.Fields(k)[0]] = v
		}
		for k, v := range got {
			out[fmt.Sprintf("%s -P %d", k, p)] = v
		}
	}
	if err := e.RDB.Do(ctx, e.RDB.B().Del().Key("mylist").Build()).Error(); err != nil {
		return nil, fmt.Errorf("drop redis-benchmark's list: %w", err)
	}
	return out, nil
}

func redisBenchmark(ctx context.Context, args ...string) (map[string]float64, error) {
	out, err := exec.CommandContext(ctx, "redis-benchmark", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("redis-benchmark %s: %w", strings.Join(args, " "), err)
	}
	rows, err := csv.NewReader(strings.NewReader(string(out))).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read redis-benchmark csv: %w", err)
	}
	res := map[string]float64{}
	for _, r := range rows {
		if len(r) < 2 || r[0] == "test" {
			continue
		}
		v, err := strconv.ParseFloat(r[1], 64)
		if err != nil {
			return nil, fmt.Errorf("redis-benchmark rps %q: %w", r[1], err)
		}
		res[r[0]] = v
	}
	return res, nil
}

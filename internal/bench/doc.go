// Package bench is the benchmark suite behind scripts/bench (issue 11): it
// starts its own redis-server, store and devtrack processes, runs each
// scenario (one file each) several times, measures the Redis limits with
// redis-benchmark in the same run, and writes BENCHMARKS.md and
// bench/results.json.
package bench

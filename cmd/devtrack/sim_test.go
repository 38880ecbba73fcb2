package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// sim reports what it sent and what was acked, and every acked location is
// in the archive.
func TestSimReportsAckedFramesAndLatency(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw-sim")
	c.start("worker-sim", "worker", "--id", "worker-sim")

	out := c.cli("sim", "--gateway", base, "--devices", "4", "--rate", "20", "--duration", "2s",
		"--device-prefix", "simtest", "--log-every", "5")
	report := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			report[k] = v
		}
	}
	num := func(k string) int {
		n, err := strconv.Atoi(report[k])
		if err != nil {
			t.Fatalf("sim output has no %s: %q", k, out)
		}
		return n
	}
	sent, acked := num("sent"), num("acked")
	if sent < 40 || acked != sent || num("errors") != 0 || num("unacked") != 0 {
		t.Fatalf("sim report: %q; want at least 40 sent, all acked, no errors", out)
	}
	for _, k := range []string{"ack_latency_p50", "ack_latency_p99"} {
		if d, err := time.ParseDuration(report[k]); err != nil || d <= 0 {
			t.Errorf("%s = %q, want a positive duration", k, report[k])
		}
	}

	devices := make([]string, 4)
	for i := range devices {
		devices[i] = fmt.Sprintf("simtest-%04d", i+1)
	}
	// Every 5th frame is a log line; the rest are locations.
	checkFor(t, 20*time.Second, "sim's locations archived", func() bool {
		n := 0
		for _, count := range c.storedIDs(devices) {
			n += count
		}
		return n >= sent*4/5-len(devices) && n <= sent
	})
}

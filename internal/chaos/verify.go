package chaos

import (
	"sort"
	"strings"
	"time"
)

// Verify waits until every frame acked by the fleets is stored (at most
// timeout after faultEnd), then fills r: sent, acked, stored, missing,
// duplicates, dead (acked items among the dead letters) and the recovery
// time. A scan that still misses ids while the queue is empty is repeated
// for settle; then the ids count as lost. The fleets should have stopped
// sending.
func (c *Cluster) Verify(r *Result, faultEnd time.Time, timeout time.Duration, fleets ...*Fleet) (acked map[string]time.Time, missing []string) {
	c.T.Helper()
	acked = map[string]time.Time{}
	var devices []string
	for _, f := range fleets {
		r.Sent += f.Sent()
		for k, v := range f.Acked() {
			acked[k] = v
		}
		devices = append(devices, f.IDs()...)
		if ref := f.Refused(); len(ref) > 0 {
			r.Note("refused for good: %v", ref)
		}
	}
	r.Acked = len(acked)
	const settle = 8 * time.Second
	var rows map[string]int
	var emptySince time.Time
	lastScan := time.Time{}
	// stuck: the queue has not moved for this long (a worker that cannot
	// store); waiting out the whole timeout would only slow the suite.
	const stuckAfter = 20 * time.Second
	lastQ, movedAt := QueueStats{Pending: -1}, time.Now()
	deadline := faultEnd.Add(timeout)
	for {
		q, qerr := c.Queue()
		drained := qerr == nil && q.Pending == 0 && q.InFlight == 0
		if qerr == nil && (q.Pending != lastQ.Pending || q.InFlight != lastQ.InFlight) {
			lastQ, movedAt = q, time.Now()
		}
		stuck := !drained && time.Since(movedAt) > stuckAfter
		if drained && emptySince.IsZero() {
			emptySince = time.Now()
		} else if !drained {
			emptySince = time.Time{}
		}
		if drained || time.Since(lastScan) > 2*time.Second {
			got, err := c.Scan(devices)
			lastScan = time.Now()
			if err == nil {
				rows = got
				missing = missingOf(acked, rows)
				if len(missing) == 0 {
					r.Recovered, r.Recovery = true, max(0, time.Since(faultEnd))
					break
				}
			} else {
				r.Note("scan: %v", err)
			}
		}
		if time.Now().After(deadline) || stuck || (!emptySince.IsZero() && time.Since(emptySince) > settle) {
			if stuck {
				r.Note("queue stuck for %s", stuckAfter)
			}
			if qerr != nil {
				r.Note("queue: %v", qerr)
			} else {
				r.Note("queue at the end: pending %d, in flight %d", q.Pending, q.InFlight)
			}
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if rows == nil {
		c.T.Errorf("%s: the API never answered a scan", r.Case)
		rows = map[string]int{}
		missing = missingOf(acked, rows)
	}
	r.Missing = len(missing)
	r.Stored = len(acked) - len(missing)
	unacked := 0
	for k, n := range rows {
		if n > 1 {
			r.Duplicates++
		}
		if _, ok := acked[k]; !ok {
			unacked++
		}
	}
	if unacked > 0 {
		r.Note("%d stored frames never acked (ack lost with a connection: allowed)", unacked)
	}
	if n, err := c.StoreDuplicates(); err != nil {
		r.Fail("read the store file: %v", err)
	} else if n > r.Duplicates {
		r.Note("%d duplicates in the store file", n)
		r.Duplicates = n
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		r.Note("missing e.g. %s", strings.Join(missing[:min(5, len(missing))], ", "))
	}
	c.countDead(r, acked)
	return acked, missing
}

func (c *Cluster) countDead(r *Result, acked map[string]time.Time) {
	dead, err := c.DeadLetters()
	if err != nil {
		r.Fail("dead letters: %v", err)
		return
	}
	for _, k := range dead {
		if _, ok := acked[k]; ok {
			r.Dead++
		}
	}
	if q, err := c.Queue(); err == nil && q.Dead != len(dead) {
		r.Note("GET /api/v1/queue dead %d, queue dead list %d", q.Dead, len(dead))
	}
	if len(dead) > r.Dead {
		r.Note("%d dead letters of unacked frames", len(dead)-r.Dead)
	}
}

func missingOf(acked map[string]time.Time, rows map[string]int) []string {
	var m []string
	for k := range acked {
		if rows[k] == 0 {
			m = append(m, k)
		}
	}
	return m
}

// MissingAckedBetween counts the acked ids in missing whose ack arrived in [from, to].
func MissingAckedBetween(acked map[string]time.Time, missing []string, from, to time.Time) int {
	n := 0
	for _, k := range missing {
		if at, ok := acked[k]; ok && !at.Before(from) && !at.After(to) {
			n++
		}
	}
	return n
}

package wsgateway_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/wsgateway"
)

// batchOf is n location frames: a batch frame, or a bare JSON array.
func batchOf(prefix string, n int, array bool) string {
	var b strings.Builder
	if !array {
		b.WriteString(`{"type":"batch","items":`)
	}
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(loc(prefix+strconv.Itoa(i), 1, 1))
	}
	b.WriteByte(']')
	if !array {
		b.WriteByte('}')
	}
	return b.String()
}

// The largest batch the contract allows must be accepted with default
// flags; a device sending more than its rate is still refused.
func TestFullBatchIsAckedWithDefaultsAndOverloadIsStillLimited(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	max := protocol.DefaultMaxBatch
	d.send(batchOf("a", max, false))
	if r := d.read(); r.Type != "ack" || len(r.IDs) != max {
		t.Fatalf("full batch: got %s %s (%d ids), want an ack of %d", r.Type, r.Code, len(r.IDs), max)
	}
	// Right after: the bucket is empty, the next batch is over the rate.
	d.send(batchOf("b", max, false))
	if r := d.read(); r.Type != "error" || r.Code != protocol.CodeRateLimited {
		t.Fatalf("second full batch at once: got %+v, want rate_limited", r)
	}

	tok := e.addDevice("h1", "g")
	if status, body := e.post(tok, "/api/v1/ingest", batchOf("h", max, true)); status != 200 || !strings.Contains(body, `"accepted":500`) {
		t.Fatalf("full HTTP batch: %d %.200s", status, body)
	}
	if status, body := e.post(tok, "/api/v1/ingest", batchOf("i", max, true)); status != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Fatalf("second full HTTP batch at once: %d %.200s, want 429 rate_limited", status, body)
	}
	if n := len(e.queued()); n != 2*max {
		t.Fatalf("%d items queued, want the %d of the two accepted batches", n, 2*max)
	}
}

func TestBurstBelowTheLargestBatchIsRefused(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	_, err := wsgateway.New(wsgateway.Config{FrameBurst: 100}, e.rdb, e.rdb, e.store, nil)
	if err == nil || !strings.Contains(err.Error(), "device burst 100 is below the largest batch") {
		t.Fatalf("New with burst 100: %v, want an error about the batch size", err)
	}
}

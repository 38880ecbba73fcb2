package chaos

import (
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
)

// 9. The archive is PostgreSQL; the server is stopped (fast shutdown: every
// connection cut) for 10 s while devices stream, then started again on the
// same port and data. The worker must hold its batch and wait, dead-letter
// nothing, and store every acked frame once when the server is back,
// without being restarted.
func casePostgresStopped(t *testing.T, r *Result) {
	s := sz()
	pg := pgtest.Start(t)
	c := NewCluster(t, ClusterOptions{DSN: pg.NewDB(t)})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	w := c.StartWorker("w1", "", Wrap{}, "--id", "w1")
	f := c.NewFleet("pg", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	reps := 1
	if full() {
		reps = 3
	}
	for range reps {
		time.Sleep(2 * time.Second)
		pg.Stop()
		time.Sleep(10 * time.Second)
		pg.Start()
	}
	faultEnd := time.Now()
	time.Sleep(2 * time.Second)
	stop()
	r.Note("PostgreSQL stopped 10 s, %d times", reps)
	if n := countInLog(w.Log, "store unavailable"); n == 0 {
		r.Fail("the worker's log shows no store outage: the fault did not bite")
	}
	finish(t, c, r, faultEnd, f)
	if exited, code := w.Exited(); exited {
		r.Fail("the worker exited (%d) during the outage", code)
	}
}

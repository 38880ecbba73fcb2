package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// pushGroup group-commits pushes to the ingest list: while one LPUSH is in
// flight, the pushes that arrive meanwhile (of every device connection and
// HTTP ingest request of this gateway) wait, and then go to Redis together
// in one multi-value LPUSH. Redis then runs one command per round rather
// than one per frame, and the gateway makes one client call. Each caller
// still returns only once Redis confirmed the LPUSH holding its items (or
// failed), and one caller's items are all in the same LPUSH: on the list
// together or not at all.
//
// There is no goroutine of its own: the callers push. The first caller
// finding nothing in flight leads: it takes what is waiting, pushes it,
// answers everyone in it, and hands the lead to the oldest caller still
// waiting, if any. So a caller leads at most the one round holding its own
// items, and its answer never waits for rounds after its own.
//
// A round's deadline is the earliest of its callers' deadlines; a caller
// whose deadline has passed before its round began is answered at once,
// without Redis, so it cannot shorten the others' round.
type pushGroup struct {
	mu      sync.Mutex
	pending []*pushReq
	leading bool // a round is being pushed (or its leader woken)
}

type pushReq struct {
	deadline time.Time
	raws     [][]byte
	done     chan error // cap 1: errLead, then the result
}

// errLead tells a waiting caller that it pushes the next round.
var errLead = errors.New("lead the next round")

// maxRoundItems caps one LPUSH (items): Redis handles a big multi-value
// LPUSH in one go, blocking its other clients meanwhile.
const maxRoundItems = 4096

// push puts raws on the ingest list through q, in one LPUSH with what
// others push meanwhile, giving up at deadline.
func (p *pushGroup) push(q Queue, deadline time.Time, raws [][]byte) error {
	r := &pushReq{deadline: deadline, raws: raws, done: make(chan error, 1)}
	p.mu.Lock()
	p.pending = append(p.pending, r)
	if !p.leading {
		p.leading = true
		r.done <- errLead
	}
	p.mu.Unlock()
	for {
		err := <-r.done
		if err != errLead {
			return err
		}
		p.lead(q, r)
	}
}

// lead pushes one round for self, the caller holding the lead: the oldest
// waiting callers, up to maxRoundItems items (at least one caller).
//
// A leader whose own deadline has passed pushes nothing: it answers the
// expired callers of the round, puts the live ones back at the head of the
// queue and hands the lead to the oldest of them. Otherwise its answer
// would wait for an LPUSH of others' items, up to their (later) deadline.
func (p *pushGroup) lead(q Queue, self *pushReq) {
	now := time.Now()
	p.mu.Lock()
	n, items := 0, 0
	for n < len(p.pending) && (n == 0 || items+len(p.pending[n].raws) <= maxRoundItems) {
		items += len(p.pending[n].raws)
		n++
	}
	round := make([]*pushReq, n)
	copy(round, p.pending)
	p.pending = append(p.pending[:0], p.pending[n:]...)
	p.mu.Unlock()

	var deadline time.Time
	raws := make([][]byte, 0, items)
	live := round[:0]
	selfExpired := false
	for _, r := range round {
		if !now.Before(r.deadline) {
			selfExpired = selfExpired || r == self
			r.done <- fmt.Errorf("push %d items: %w", len(r.raws), context.DeadlineExceeded)
			continue
		}
		if deadline.IsZero() || r.deadline.Before(deadline) {
			deadline = r.deadline
		}
		raws = append(raws, r.raws...)
		live = append(live, r)
	}
	if selfExpired && len(live) > 0 {
		p.mu.Lock()
		p.pending = append(live, p.pending...)
		p.pending[0].done <- errLead
		p.mu.Unlock()
		return
	}
	if len(live) > 0 {
		err := pushNow(q, deadline, raws)
		for _, r := range live {
			r.done <- err
		}
	}

	p.mu.Lock()
	if len(p.pending) > 0 {
		p.pending[0].done <- errLead
	} else {
		p.leading = false
	}
	p.mu.Unlock()
}

// pushNow puts raws on the ingest list in one LPUSH, giving up at deadline.
func pushNow(q Queue, deadline time.Time, raws [][]byte) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	start := time.Now()
	if err := q.Push(ctx, raws...); err != nil {
		return fmt.Errorf("push %d items: %w", len(raws), err)
	}
	pushSeconds.Observe(time.Since(start).Seconds())
	framesAccepted.Add(float64(len(raws)))
	return nil
}

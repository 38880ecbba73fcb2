package worker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// entry is one item of the batch in hand.
type entry struct {
	raw      string
	key      string // attempt key
	attempts int
	item     protocol.Item
	loc      *storage.Location
	log      *storage.LogEntry
	lastErr  error // of the last failed save
	stored   bool  // by this process
	buried   bool  // moved to the dead letters
}

// batch is a batch taken from the queue, decoded, with its attempt counts.
type batch struct {
	entries    []entry
	decodeErrs []error
}

// prepare decodes raws and reads their attempt counts. resumed marks items
// a previous process with our id held when it died: each counts one
// attempt, as if another worker had recovered them.
func (w *Worker) prepare(ctx context.Context, raws []string, resumed bool) *batch {
	// Each item is decoded once: its attempt key comes from the decoded
	// device and id (what redisq.AttemptKey reads from the raw item; only
	// an undecodable item needs AttemptKey's own parse).
	b := &batch{entries: make([]entry, len(raws)), decodeErrs: make([]error, len(raws))}
	keys := make([]string, len(raws))
	now := time.Now().UnixMilli()
	for i, raw := range raws {
		e := &b.entries[i]
		e.raw = raw
		if b.decodeErrs[i] = e.decode(now); b.decodeErrs[i] != nil {
			e.key = redisq.AttemptKey(raw)
		} else {
			e.key = e.item.Device + "\n" + e.item.ID
		}
		keys[i] = e.key
	}
	attempts, err := w.attempts(ctx, keys, resumed)
	if err != nil {
		w.log.Warn("read attempt counts", zap.Error(err))
		attempts = make([]int, len(raws))
	}
	for i := range b.entries {
		b.entries[i].attempts = attempts[i]
	}
	return b
}

// prefetch is the next batch, taken (TakeMore) and prepared by its own
// goroutine while the batch in hand is stored.
type prefetch struct {
	done chan struct{}
	next *batch // nil: the ingest list was empty, or err
	err  error
}

func (w *Worker) startPrefetch(ctx context.Context) *prefetch {
	p := &prefetch{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var raws []string
		p.err = w.redis(ctx, func(c context.Context) (err error) {
			raws, err = w.queue.TakeMore(c, w.cfg.ID, w.cfg.BatchSize)
			return err
		})
		if p.err == nil && len(raws) > 0 {
			p.next = w.prepare(ctx, raws, false)
		}
	}()
	return p
}

// wait waits for the prefetch and returns its batch and whether the
// processing list holds only what is in hand as far as it knows (false
// after a failed take, whose answer may be lost).
func (p *prefetch) wait() (*batch, bool) {
	if p == nil {
		return nil, true
	}
	<-p.done
	return p.next, p.err == nil
}

func (b *batch) len() int {
	if b == nil {
		return 0
	}
	return len(b.entries)
}

// process stores, publishes and finishes one batch taken from the queue.
// Calls run on ctx; stop ends the wait for a store outage (shutdown), which
// leaves the unstored items in the processing list.
//
// With more, the next batch is taken (TakeMore) and prepared meanwhile, so
// that Redis and decoding overlap the store's commit; process returns it
// (nil if the ingest list was empty). Both batches are in the processing
// list, and only the stored one is removed (ack after commit, as ever). It
// also reports whether the processing list holds only the returned batch:
// false after a failed finish or take, or when the list held more; then
// the next batch must come from Take, which hands over everything there.
func (w *Worker) process(ctx, stop context.Context, b *batch, more bool) (next *batch, clean bool) {
	var p *prefetch
	if more {
		p = w.startPrefetch(ctx)
	}
	// Every path waits for the prefetch: its goroutine ends here.
	waited := false
	defer func() {
		if !waited {
			n, c := p.wait()
			next, clean = n, clean && c
		}
	}()

	pending := make([]*entry, 0, len(b.entries))
	for i := range b.entries {
		e := &b.entries[i]
		if err := b.decodeErrs[i]; err != nil {
			w.bury(ctx, e, fmt.Errorf("undecodable item: %w", err))
			continue
		}
		if e.attempts >= w.cfg.MaxAttempts {
			w.bury(ctx, e, fmt.Errorf("gave up after %d failed attempts (store errors or worker crashes)", e.attempts))
			continue
		}
		pending = append(pending, e)
	}
	pending, ok := w.knownDevices(ctx, stop, pending)
	if !ok {
		return nil, false // stopped during a store outage: the batch stays in the processing list
	}

	stored := w.storeAll(ctx, stop, pending)
	if len(stored) == 0 {
		// Nothing to finish; had anything been left unstored (shutdown),
		// the next take hands it over.
		return nil, len(pending) == 0
	}
	// Alerts are applied before the batch leaves the processing list, so a
	// crash before that evaluates it again (alerts.go).
	notices, ok := w.applyAlerts(ctx, stop, stored)
	if !ok {
		return nil, false // stopped during a store outage: the batch stays in the processing list
	}
	tee := teeValues(w.cfg.TeeList, stored)
	teeErr := w.teePush(ctx, tee)

	live := make([]redisq.LiveMessage, 0, len(stored))
	payloads := make([]byte, 0, 256*len(stored)) // one buffer for the batch's messages
	for _, e := range stored {
		start := len(payloads)
		payloads = protocol.AppendLive(payloads, e.item)
		live = append(live, redisq.LiveMessage{Device: e.item.Device, Payload: payloads[start:len(payloads):len(payloads)],
			IsLocation: e.loc != nil, TS: e.item.TS, ReceivedAt: e.item.ReceivedAt})
	}
	live = append(live, notices...)
	// Publishing is best effort: the data is stored, and viewers that miss a
	// message get the device's state in their next snapshot.
	if err := w.redis(ctx, func(c context.Context) error { return w.queue.PublishLive(c, live) }); err != nil {
		w.log.Warn("publish live", zap.Int("items", len(live)), zap.Error(err))
	}
	next, clean = p.wait()
	waited = true
	// What the processing list should hold after the finish: the next
	// batch, and whatever of this one was neither stored nor buried.
	inHand := next.len()
	for _, e := range stored {
		e.stored = true
	}
	for i := range b.entries {
		if e := &b.entries[i]; !e.stored && !e.buried {
			inHand++
		}
	}
	finished := w.finish(ctx, stored, inHand)
	clean = clean && finished == finishedClean
	if finished != finishFailed && teeErr != nil {
		// Redis answered the finish, so the tee push may have failed in a
		// blip that is over: once more, or its lines are left out. (Had the
		// finish failed, the batch would come back and be teed then.)
		teeErr = w.teePush(ctx, tee)
		w.teeLost(tee, teeErr)
	}
	w.mu.Lock()
	w.stats.Batches++
	w.mu.Unlock()
	return next, clean
}

// finishOutcome is what finish reports.
type finishOutcome int

const (
	finishFailed  finishOutcome = iota // Redis did not confirm: the items stay in the processing list
	finishedClean                      // removed; the list holds no more than expected
	finishedMore                       // removed; the list holds items not in hand
)

// finish removes the stored entries, and only those, from the processing
// list, and reports whether Redis confirmed it and whether the list then
// holds more than inHand items (the prefetched batch, and what of this one
// was not stored). If it fails they stay there and the next take hands
// them over again: stored twice is a duplicate the store counts and
// ignores, while removing anything not yet stored could lose it.
//
// A batch goes in parts of redisq.ItemsPerCall, oldest first, each retried
// on its own: a retried part whose first answer was lost is found by value.
func (w *Worker) finish(ctx context.Context, stored []*entry, inHand int) finishOutcome {
	var left int
	for part := range slices.Chunk(stored, redisq.ItemsPerCall) {
		raws := make([]string, len(part))
		keys := make([]string, len(part))
		for i, e := range part {
			raws[i], keys[i] = e.raw, e.key
		}
		var ok bool
		if left, ok = w.finishPart(ctx, raws, keys); !ok {
			return finishFailed
		}
	}
	if left > inHand {
		w.log.Info("processing list holds items not in hand (moved by a call whose answer was lost); taking them next",
			zap.Int("items", left-inHand))
		return finishedMore
	}
	return finishedClean
}

// finishPart removes one part of a batch (redisq.Client.Done), retrying
// with backoff, and returns how many items the processing list then holds.
func (w *Worker) finishPart(ctx context.Context, raws, keys []string) (int, bool) {
	for try := 0; ; try++ {
		var left int
		err := w.redis(ctx, func(c context.Context) (err error) {
			left, err = w.queue.Done(c, w.cfg.ID, raws, keys)
			return err
		})
		if err == nil {
			return left, true
		}
		if try >= 5 || !sleep(ctx, backoff(try)) {
			w.log.Warn("finish batch; its items will be taken and stored again as duplicates", zap.Error(err))
			return 0, false
		}
	}
}

func (w *Worker) attempts(ctx context.Context, keys []string, resumed bool) ([]int, error) {
	var out []int
	err := w.redis(ctx, func(c context.Context) (err error) {
		if resumed {
			out, err = w.queue.AddAttempts(c, keys)
		} else {
			out, err = w.queue.Attempts(c, keys)
		}
		return err
	})
	return out, err
}

// storeAll saves the entries, in one transaction when it can, and returns
// those that are stored.
//
// A store outage (see storeFailed) holds the whole batch: it is retried with
// backoff, for as long as it takes, counting no attempt; only stop ends the
// wait, leaving the rest in the processing list. Any other failure means
// that something in the batch is at fault: the entries are saved one by one
// to find it; what the store calls invalid goes to the dead letters at once,
// what it refuses otherwise counts an attempt, and the rest is stored.
func (w *Worker) storeAll(ctx, stop context.Context, pending []*entry) []*entry {
	var stored []*entry
	for try := 0; len(pending) > 0; try++ {
		if try > 0 && !sleep(stop, backoff(try-1)) {
			return stored
		}
		res, err := w.save(ctx, pending)
		if err == nil {
			w.storeWorked(ctx)
			w.count(res)
			return append(stored, pending...)
		}
		if ctx.Err() != nil {
			return stored // the stop timeout cancelled the call: not the store's fault
		}
		if w.storeFailed(ctx, err) {
			continue
		}
		w.log.Warn("store refused a batch; saving its items one by one", zap.Int("items", len(pending)), zap.Error(err))
		var refused, untried []*entry
		for i, e := range pending {
			res, err := w.save(ctx, []*entry{e})
			switch {
			case err == nil:
				w.count(res)
				stored = append(stored, e)
			case errors.Is(err, storage.ErrInvalid):
				w.bury(ctx, e, err)
			case ctx.Err() != nil || w.storeFailed(ctx, err):
				// The store went down halfway: nothing of this round
				// counts against the items; all of them wait for it.
				untried = append(untried, pending[i:]...)
			default:
				e.lastErr = err
				refused = append(refused, e)
			}
			if untried != nil {
				untried = append(untried, refused...)
				break
			}
		}
		if untried != nil {
			pending = untried
			continue
		}
		w.storeWorked(ctx)
		pending = pending[:0]
		for _, e := range refused {
			n, err := w.addAttempt(ctx, e.key)
			if err != nil || n < w.cfg.MaxAttempts {
				pending = append(pending, e)
				continue
			}
			e.attempts = n
			w.bury(ctx, e, fmt.Errorf("store refused it %d times: %w", n, e.lastErr))
		}
	}
	return stored
}

func (w *Worker) save(ctx context.Context, es []*entry) (storage.SaveResult, error) {
	var b storage.Batch
	for _, e := range es {
		if e.loc != nil {
			b.Locations = append(b.Locations, *e.loc)
		} else {
			b.Logs = append(b.Logs, *e.log)
		}
	}
	c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
	defer cancel()
	return w.store.SaveBatch(c, b)
}

func (w *Worker) count(res storage.SaveResult) {
	w.mu.Lock()
	w.stats.Stored += int64(res.Inserted)
	w.stats.Duplicates += int64(res.Duplicates)
	w.mu.Unlock()
	itemsStored.Add(float64(res.Inserted))
	itemsDuplicate.Add(float64(res.Duplicates))
}

func (w *Worker) addAttempt(ctx context.Context, key string) (n int, err error) {
	err = w.redis(ctx, func(c context.Context) error {
		n, err = w.queue.AddAttempt(c, key)
		return err
	})
	return n, err
}

// bury sends an entry to the dead-letter list; it retries while Redis is
// unreachable, since the item must not be lost.
func (w *Worker) bury(ctx context.Context, e *entry, cause error) {
	w.log.Warn("dead letter", zap.String("attempt_key", e.key), zap.Int("attempts", e.attempts), zap.Error(cause))
	d := redisq.DeadLetter{Item: e.raw, Key: e.key, Error: cause.Error(), Attempts: e.attempts}
	for try := 0; ; try++ {
		err := w.redis(ctx, func(c context.Context) error { return w.queue.Bury(c, w.cfg.ID, d) })
		if err == nil {
			break
		}
		if try >= 5 || !sleep(ctx, backoff(try)) {
			// The item stays in the processing list; the next take hands
			// it over again.
			w.log.Error("dead letter not written", zap.Error(err))
			return
		}
	}
	e.buried = true
	w.mu.Lock()
	w.stats.Dead++
	w.mu.Unlock()
	itemsDead.Inc()
}

// decode parses and checks the raw item (protocol.DecodeQueueItem decodes
// its data once), turns its times into milliseconds (normalMillis; now is
// when the worker took it, Unix ms) and builds its store record.
func (e *entry) decode(now int64) error {
	d, err := protocol.Limits{}.DecodeQueueItem([]byte(e.raw))
	if err != nil {
		return err
	}
	it := d.Item
	// A missing ts is received_at already (DecodeQueueItem), in its unit:
	// normalised alike, it stays equal to it.
	if it.ReceivedAt, err = normalMillis("received_at", it.ReceivedAt, now); err != nil {
		return err
	}
	if it.TS, err = normalMillis("ts", it.TS, it.ReceivedAt); err != nil {
		return err
	}
	e.item = it
	switch {
	case d.Location != nil:
		l := d.Location
		e.loc = &storage.Location{Device: it.Device, ID: it.ID, TS: it.TS, ReceivedAt: it.ReceivedAt,
			Lat: l.Lat, Lng: l.Lng, Accuracy: l.Accuracy, Speed: l.Speed, Heading: l.Heading, Altitude: l.Altitude,
			CRS: l.CRS, OrigLat: l.OrigLat, OrigLng: l.OrigLng}
	case d.Log != nil:
		l := d.Log
		e.log = &storage.LogEntry{Device: it.Device, ID: it.ID, TS: it.TS, ReceivedAt: it.ReceivedAt,
			Level: l.Level, Message: l.Message, Fields: l.Fields}
	default:
		return fmt.Errorf("unknown item type %q", it.Type)
	}
	return nil
}

// backoff is the wait before retry number try: 200 ms doubling up to 5 s.
func backoff(try int) time.Duration {
	d := 200 * time.Millisecond << min(try, 5)
	return min(d, 5*time.Second)
}

package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
}

// process stores, publishes and clears one batch taken from the queue.
// resumed marks items a previous process with our id held when it died: each
// counts one attempt, as if another worker had recovered them.
func (w *Worker) process(ctx context.Context, raws []string, resumed bool) {
	keys := make([]string, len(raws))
	for i, r := range raws {
		keys[i] = redisq.AttemptKey(r)
	}
	attempts, err := w.attempts(ctx, keys, resumed)
	if err != nil {
		w.log.Warn("read attempt counts", zap.Error(err))
		attempts = make([]int, len(raws))
	}

	pending := make([]*entry, 0, len(raws))
	for i, raw := range raws {
		e := &entry{raw: raw, key: keys[i], attempts: attempts[i]}
		if err := e.decode(); err != nil {
			w.bury(ctx, e, fmt.Errorf("undecodable item: %w", err))
			continue
		}
		if e.attempts >= w.cfg.MaxAttempts {
			w.bury(ctx, e, fmt.Errorf("gave up after %d failed attempts (store errors or worker crashes)", e.attempts))
			continue
		}
		pending = append(pending, e)
	}

	stored := w.storeAll(ctx, pending)

	live := make([]redisq.LiveMessage, 0, len(stored))
	for _, e := range stored {
		payload, err := json.Marshal(protocol.LiveOf(e.item))
		if err != nil {
			continue
		}
		live = append(live, redisq.LiveMessage{Device: e.item.Device, Payload: payload,
			IsLocation: e.loc != nil, TS: e.item.TS, ReceivedAt: e.item.ReceivedAt})
	}
	// Publishing is best effort: the data is stored, and viewers that miss a
	// message get the device's state in their next snapshot.
	if err := w.redis(ctx, func(c context.Context) error { return w.queue.PublishLive(c, live) }); err != nil {
		w.log.Warn("publish live", zap.Int("items", len(live)), zap.Error(err))
	}

	// Clearing the processing list must succeed, or the items would be
	// stored again (harmlessly, as duplicates) by whoever recovers them.
	for try := 0; ; try++ {
		err := w.redis(ctx, func(c context.Context) error { return w.queue.Done(c, w.cfg.ID, keys) })
		if err == nil {
			break
		}
		if try >= 5 {
			w.log.Error("clear processing list; its items will be seen again as duplicates", zap.Error(err))
			break
		}
		w.log.Warn("clear processing list", zap.Error(err))
		sleep(ctx, backoff(try))
	}
	w.mu.Lock()
	w.stats.Batches++
	w.mu.Unlock()
}

func (w *Worker) attempts(ctx context.Context, keys []string, resumed bool) ([]int, error) {
	if !resumed {
		var out []int
		err := w.redis(ctx, func(c context.Context) (err error) {
			out, err = w.queue.Attempts(c, keys)
			return err
		})
		return out, err
	}
	out := make([]int, len(keys))
	for i, k := range keys {
		err := w.redis(ctx, func(c context.Context) (err error) {
			out[i], err = w.queue.AddAttempt(c, k)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// storeAll saves the entries, in one transaction when it can. When a batch
// fails it saves the entries one by one to find the ones at fault: those
// count an attempt (or go to the dead letters at once if the store calls them
// invalid) while the rest are stored. When every entry fails and the store
// does not answer a ping either, the store itself is in trouble: it waits and
// tries again without counting attempts, for as long as it takes. It returns
// the entries that are stored.
func (w *Worker) storeAll(ctx context.Context, pending []*entry) []*entry {
	var stored []*entry
	for try := 0; len(pending) > 0; try++ {
		res, err := w.save(ctx, pending)
		if err == nil {
			w.count(res)
			return append(stored, pending...)
		}
		w.log.Warn("store batch", zap.Int("items", len(pending)), zap.Error(err))
		var failed []*entry
		progress := false
		for _, e := range pending {
			res, err := w.save(ctx, []*entry{e})
			switch {
			case err == nil:
				w.count(res)
				stored = append(stored, e)
				progress = true
			case errors.Is(err, storage.ErrInvalid):
				w.bury(ctx, e, err)
				progress = true
			default:
				e.lastErr = err
				failed = append(failed, e)
			}
		}
		if len(failed) == 0 {
			break
		}
		if !progress && !w.storeAnswers(ctx) {
			w.log.Error("store unavailable; retrying", zap.Int("items", len(failed)), zap.Int("try", try+1))
			pending = failed
			sleep(ctx, backoff(try))
			continue
		}
		// The store works and refuses these: they are at fault.
		pending = pending[:0]
		for _, e := range failed {
			n, err := w.addAttempt(ctx, e.key)
			if err != nil || n < w.cfg.MaxAttempts {
				pending = append(pending, e)
				continue
			}
			e.attempts = n
			w.bury(ctx, e, fmt.Errorf("store refused it %d times: %w", n, e.lastErr))
		}
		if len(pending) > 0 && !progress {
			sleep(ctx, backoff(try))
		}
	}
	return stored
}

// storeAnswers reports whether the store answers a ping; a store that cannot
// be pinged is assumed down when every write fails.
func (w *Worker) storeAnswers(ctx context.Context) bool {
	p, ok := w.store.(interface{ Ping(context.Context) error })
	if !ok {
		return false
	}
	c, cancel := context.WithTimeout(ctx, w.cfg.RedisTimeout)
	defer cancel()
	return p.Ping(c) == nil
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
		if try >= 5 {
			// The item stays in the processing list; whoever recovers it
			// will try again.
			w.log.Error("dead letter not written", zap.Error(err))
			return
		}
		sleep(ctx, backoff(try))
	}
	w.mu.Lock()
	w.stats.Dead++
	w.mu.Unlock()
	itemsDead.Inc()
}

// decode parses and checks the raw item (protocol.DecodeQueueItem decodes
// its data once) and builds its store record.
func (e *entry) decode() error {
	d, err := protocol.Limits{}.DecodeQueueItem([]byte(e.raw))
	if err != nil {
		return err
	}
	it := d.Item
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

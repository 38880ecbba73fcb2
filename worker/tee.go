package worker

import (
	"context"
	"encoding/json"

	"go.uber.org/zap"
)

// The tee (Config.TeeList) keeps a legacy consumer working while a team
// moves to devtrack: a daemon that drains a list of its own (BRPOP
// device:log:list) gets every archived log line there too. Its rules:
//
//   - What: log items only (the contract names them; locations go to live
//     viewers and device:last), each as the item's data exactly as it was
//     on the ingest list, one list element per item. Not the normalised
//     form the store keeps: the consumer gets the payload it got before.
//   - When: after the batch's store transaction committed, before the live
//     publish and the finish. Never for an item that is not stored.
//   - How: one LPUSH of the whole batch and one LTRIM to TeeMax, pipelined;
//     the list keeps the newest TeeMax entries, so it stays bounded when
//     nobody reads it.
//   - Order: the order the items were stored, oldest first for a BRPOP
//     consumer. One worker stores batches one after another, so each
//     device's lines keep the order of the ingest list. Several workers
//     store their batches at the same time: a device's lines keep their
//     order within a batch, and across batches as far as the workers'
//     commits do (as in the store).
//   - Duplicates: at least once. Every item of a stored batch is teed, also
//     one the store already held (counted as a duplicate): a device's resend
//     of a frame whose ack was lost, an item taken again after a worker
//     died between storing and finishing, or after its finish went
//     unanswered. Skipping duplicates would lose the line for good whenever
//     a worker died between the commit and the tee push. A consumer that must
//     not see a line twice has to dedupe on its content (data carries no
//     id unless the producer put one in its fields).
//   - Faults: a push is one Redis call bounded by RedisTimeout, and a
//     batch gets at most two, so a tee fault holds the archive path no
//     longer than the finish's own Redis calls do. If the push fails, the
//     batch is finished as usual and then, if Redis answered the finish,
//     the push is tried once more (a blip that is over). If the finish
//     failed too (Redis down), the batch stays in the processing list and
//     is taken, stored as duplicates and teed again once Redis answers:
//     nothing is missing from the tee. The batch's lines are left out of
//     the tee only when the second push fails while the finish worked (the
//     key holds another type, Redis is out of memory, the tee key's cluster
//     node is down), or when the worker dies between that finish and that
//     second push; the first case is logged and counted (Stats.TeeFailed,
//     devtrack_worker_tee_failed_total). The store has them.

// teeValues returns the original data of the stored log entries, oldest
// first, or nil when there is no tee list.
func teeValues(list string, stored []*entry) [][]byte {
	if list == "" {
		return nil
	}
	var values [][]byte
	for _, e := range stored {
		if e.log == nil {
			continue
		}
		if d := rawData(e.raw); d != nil {
			values = append(values, d)
		}
	}
	return values
}

// teePush pushes values onto the tee list and counts them once pushed.
func (w *Worker) teePush(ctx context.Context, values [][]byte) error {
	if len(values) == 0 {
		return nil
	}
	err := w.redis(ctx, func(c context.Context) error {
		return w.queue.Tee(c, w.cfg.TeeList, w.cfg.TeeMax, values)
	})
	if err != nil {
		w.log.Warn("tee push", zap.String("tee_list", w.cfg.TeeList), zap.Int("items", len(values)), zap.Error(err))
		return err
	}
	n := int64(len(values))
	w.mu.Lock()
	w.stats.Teed += n
	w.mu.Unlock()
	itemsTeed.Add(float64(n))
	return nil
}

// teeLost counts the values of a finished batch whose last push failed.
func (w *Worker) teeLost(values [][]byte, err error) {
	if err == nil {
		return
	}
	n := int64(len(values))
	w.mu.Lock()
	w.stats.TeeFailed += n
	w.mu.Unlock()
	itemsTeeFailed.Add(float64(n))
	w.log.Error("stored logs left out of the tee list", zap.String("tee_list", w.cfg.TeeList), zap.Int64("items", n), zap.Error(err))
}

// rawData returns the data member of a raw queue item as it was pushed, or
// nil. The item has been decoded already, so it is valid JSON.
func rawData(raw string) []byte {
	var it struct {
		Data json.RawMessage `json:"data"`
	}
	if json.Unmarshal([]byte(raw), &it) != nil {
		return nil
	}
	return it.Data
}

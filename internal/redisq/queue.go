package redisq

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/redis/rueidis"
)

// ItemsPerCall is the most items that one Redis call of the queue moves,
// finishes or looks up: Redis serves no other client while it runs a script
// or a command, so a worker's larger batch goes as several calls, between
// which the gateways' pushes get through. A take or finish of 2,000 items
// held Redis for about 2.5 ms in the drain benchmark, one of 20,000 for 28
// ms (SLOWLOG, median, both cores busy); the take script's unpack also
// passes at most about 8,000 values.
const ItemsPerCall = 2000

// Push puts raw queue items onto the ingest list in one LPUSH, so that either
// all of them are on the list or none. It returns only once Redis confirmed.
// The items are not copied: the caller must not change them afterwards (the
// command may still be on its way to Redis when ctx ends).
func (c *Client) Push(ctx context.Context, items ...[]byte) error {
	if len(items) == 0 {
		return nil
	}
	vals := make([]string, len(items))
	for i, it := range items {
		vals[i] = unsafe.String(unsafe.SliceData(it), len(it))
	}
	cmd := c.rdb.B().Lpush().Key(c.keys.Queue()).Element(vals...).Build()
	if err := c.rdb.Do(ctx, cmd).Error(); err != nil {
		return fmt.Errorf("queue push: %w", err)
	}
	return nil
}

// RegisterWorker records a worker and its heartbeat (valid for ttl).
func (c *Client) RegisterWorker(ctx context.Context, worker string, ttl time.Duration) error {
	res := c.rdb.DoMulti(ctx,
		c.rdb.B().Sadd().Key(c.keys.Workers()).Member(worker).Build(),
		c.rdb.B().Set().Key(c.keys.WorkerAlive(worker)).Value(strconv.FormatInt(time.Now().UnixMilli(), 10)).Px(ttl).Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return fmt.Errorf("register worker %s: %w", worker, err)
		}
	}
	return nil
}

// WorkerHeartbeat renews a worker's heartbeat.
func (c *Client) WorkerHeartbeat(ctx context.Context, worker string, ttl time.Duration) error {
	return c.RegisterWorker(ctx, worker, ttl)
}

// UnregisterWorker removes a worker whose processing list is empty.
func (c *Client) UnregisterWorker(ctx context.Context, worker string) error {
	res := c.rdb.DoMulti(ctx,
		c.rdb.B().Srem().Key(c.keys.Workers()).Member(worker).Build(),
		c.rdb.B().Del().Key(c.keys.WorkerAlive(worker)).Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return fmt.Errorf("unregister worker %s: %w", worker, err)
		}
	}
	return nil
}

// Take hands the worker up to max items, oldest first: first whatever its
// processing list still holds (items of an earlier call whose answer was
// lost, or that were not finished), then the oldest items of the ingest list,
// moved into the processing list atomically. Call it with nothing in hand.
// When both lists are empty it blocks up to block for one item (a blocking
// LMOVE, bounded also by ctx) and then takes what else is there.
func (c *Client) Take(ctx context.Context, worker string, max int, block time.Duration) ([]string, error) {
	items, err := c.take(ctx, worker, max)
	if err != nil || len(items) > 0 || block <= 0 {
		return items, err
	}
	bctx, cancel := context.WithTimeout(ctx, block+2*time.Second)
	defer cancel()
	cmd := c.rdb.B().Blmove().Source(c.keys.Queue()).Destination(c.keys.Processing(worker)).
		Right().Left().Timeout(block.Seconds()).Build()
	first, err := c.rdb.Do(bctx, cmd).ToString()
	if isNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("queue blocking move: %w", err)
	}
	if max == 1 {
		return []string{first}, nil
	}
	items, err = c.take(ctx, worker, max)
	if err != nil {
		// The first item is safe in the processing list; hand it over
		// (and the next take hands over whatever this one may have moved).
		return []string{first}, nil
	}
	return items, nil
}

// take runs the take script, which moves at most ItemsPerCall items, and
// tops the batch up with TakeMore when that script handed over the whole
// processing list (take.lua). If the top-up fails, so does take: what it
// moved is in the processing list, and the next take hands it over.
func (c *Client) take(ctx context.Context, worker string, max int) ([]string, error) {
	move := min(max, ItemsPerCall)
	items, err := scriptTake.Exec(ctx, c.rdb,
		[]string{c.keys.Queue(), c.keys.Processing(worker), c.keys.Workers()},
		[]string{strconv.Itoa(max), worker, strconv.Itoa(move)}).AsStrSlice()
	if err != nil && !isNil(err) {
		return nil, fmt.Errorf("queue take: %w", err)
	}
	if len(items) < move || len(items) >= max {
		return items, nil
	}
	more, err := c.TakeMore(ctx, worker, max-len(items))
	if err != nil {
		return nil, err
	}
	return append(items, more...), nil
}

// InFlight returns the items in a worker's processing list, oldest first.
// It reads them in LRANGEs of at most ItemsPerCall items, as take and done
// move them: the list of a large batch (20,000 items, twice that with
// --concurrency 2) in one reply would hold Redis, and every gateway's push
// behind it, for as long as a take of it in one call. Only the worker
// itself changes its list while it runs; another worker empties it whole
// (recoverDead) only once this one's heartbeat has lapsed, and then a page
// comes back short and the rest, back on the ingest list, is taken again.
func (c *Client) InFlight(ctx context.Context, worker string) ([]string, error) {
	key := c.keys.Processing(worker)
	var items []string
	for start := int64(0); ; start += ItemsPerCall {
		page, err := c.rdb.Do(ctx, c.rdb.B().Lrange().Key(key).Start(start).Stop(start+ItemsPerCall-1).Build()).AsStrSlice()
		if err != nil {
			return nil, fmt.Errorf("queue in flight: %w", err)
		}
		items = append(items, page...)
		if len(page) < ItemsPerCall {
			break
		}
	}
	slices.Reverse(items)
	return items, nil
}

// Attempts returns the failed-attempt counts of the given attempt keys, in
// HMGETs of at most ItemsPerCall keys, pipelined.
func (c *Client) Attempts(ctx context.Context, keys []string) ([]int, error) {
	out := make([]int, 0, len(keys))
	var cmds rueidis.Commands
	for part := range slices.Chunk(keys, ItemsPerCall) {
		cmds = append(cmds, c.rdb.B().Hmget().Key(c.keys.Attempts()).Field(part...).Build())
	}
	for _, r := range c.rdb.DoMulti(ctx, cmds...) {
		vals, err := r.ToArray()
		if err != nil {
			return nil, fmt.Errorf("queue attempts: %w", err)
		}
		for _, v := range vals {
			n, _ := v.AsInt64() // nil: no failed attempt
			out = append(out, int(n))
		}
	}
	return out, nil
}

// AddAttempts counts one failed attempt for each key and returns the new
// counts, in one pipeline of HINCRBYs.
func (c *Client) AddAttempts(ctx context.Context, keys []string) ([]int, error) {
	cmds := make(rueidis.Commands, len(keys))
	for i, k := range keys {
		cmds[i] = c.rdb.B().Hincrby().Key(c.keys.Attempts()).Field(k).Increment(1).Build()
	}
	out := make([]int, len(keys))
	for i, r := range c.rdb.DoMulti(ctx, cmds...) {
		n, err := r.AsInt64()
		if err != nil {
			return nil, fmt.Errorf("queue add attempts: %w", err)
		}
		out[i] = int(n)
	}
	return out, nil
}

// AddAttempt counts one failed attempt for key and returns the new count.
func (c *Client) AddAttempt(ctx context.Context, key string) (int, error) {
	n, err := c.rdb.Do(ctx, c.rdb.B().Hincrby().Key(c.keys.Attempts()).Field(key).Increment(1).Build()).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("queue add attempt: %w", err)
	}
	return int(n), nil
}

// Done removes exactly the given finished items (raw, as taken) from the
// worker's processing list, and the attempt counters under attemptKeys. It
// returns how many items the processing list still holds: anything there was
// not in hand, and the worker's next Take hands it over. It takes at most
// ItemsPerCall items and keys each: a larger batch is finished in parts,
// oldest first, each of which is then the list's tail.
func (c *Client) Done(ctx context.Context, worker string, items, attemptKeys []string) (int, error) {
	if len(items) == 0 && len(attemptKeys) == 0 {
		return 0, nil
	}
	if len(items) > ItemsPerCall || len(attemptKeys) > ItemsPerCall {
		return 0, fmt.Errorf("queue done: %d items and %d keys, more than %d in one call", len(items), len(attemptKeys), ItemsPerCall)
	}
	args := make([]string, 0, 1+len(items)+len(attemptKeys))
	args = append(args, strconv.Itoa(len(items)))
	args = append(args, items...)
	args = append(args, attemptKeys...)
	left, err := scriptDone.Exec(ctx, c.rdb, []string{c.keys.Processing(worker), c.keys.Attempts()}, args).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("queue done: %w", err)
	}
	return int(left), nil
}

// DeadLetter is an entry of the dead-letter list.
type DeadLetter struct {
	// ID names this letter for RequeueDeadLetter and DeleteDeadLetter: the
	// SHA-1 of its entry on the list (set by DeadLetters).
	ID       string `json:"id"`
	Item     string `json:"item"`
	Key      string `json:"key"`
	Error    string `json:"error"`
	Attempts int    `json:"attempts"`
	Worker   string `json:"worker"`
	FailedAt int64  `json:"failed_at"` // Unix ms
}

// Bury moves one item from the worker's processing list to the dead letters.
func (c *Client) Bury(ctx context.Context, worker string, d DeadLetter) error {
	if d.Key == "" {
		d.Key = AttemptKey(d.Item)
	}
	if d.FailedAt == 0 {
		d.FailedAt = time.Now().UnixMilli()
	}
	d.Worker = worker
	entry, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("queue bury: %w", err)
	}
	err = scriptDead.Exec(ctx, c.rdb,
		[]string{c.keys.Processing(worker), c.keys.Dead(), c.keys.Attempts()},
		[]string{d.Item, string(entry), d.Key}).Error()
	if err != nil {
		return fmt.Errorf("queue bury: %w", err)
	}
	return nil
}

// Release gives a live worker's own processing list back to the ingest list
// without counting an attempt (graceful shutdown with work in hand).
func (c *Client) Release(ctx context.Context, worker string) (int, error) {
	return c.recover(ctx, worker, true, false)
}

// RecoverOwn gives back what a previous process with the same worker id left
// in flight, counting an attempt for each item.
func (c *Client) RecoverOwn(ctx context.Context, worker string) (int, error) {
	return c.recover(ctx, worker, true, true)
}

func (c *Client) recover(ctx context.Context, worker string, own, count bool) (int, error) {
	flag := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	// In calls of ItemsPerCall items; if one fails, the rest stays in the
	// processing list for the next recovery.
	total := 0
	for {
		n, err := scriptRecover.Exec(ctx, c.rdb,
			[]string{c.keys.WorkerAlive(worker), c.keys.Processing(worker), c.keys.Queue(), c.keys.Attempts(), c.keys.Workers()},
			[]string{worker, flag(own), flag(count), strconv.Itoa(ItemsPerCall)}).AsInt64()
		if err != nil {
			return total, fmt.Errorf("queue recover %s: %w", worker, err)
		}
		if n < 0 {
			if total > 0 {
				return total, nil // came back to life half-way: it keeps the rest
			}
			return -1, nil
		}
		total += int(n)
		if n < ItemsPerCall {
			return total, nil
		}
	}
}

// RecoverDead gives the in-flight items of every worker whose heartbeat has
// expired back to the ingest list, each counting one failed attempt. It returns
// how many items were recovered, by worker.
func (c *Client) RecoverDead(ctx context.Context) (map[string]int, error) {
	workers, err := c.rdb.Do(ctx, c.rdb.B().Smembers().Key(c.keys.Workers()).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("queue list workers: %w", err)
	}
	out := map[string]int{}
	for _, w := range workers {
		n, err := c.recover(ctx, w, false, true)
		if err != nil {
			return out, err
		}
		if n >= 0 {
			out[w] = n
		}
	}
	return out, nil
}

// Stats are the queue counts of the contract's GET /api/v1/queue.
type Stats struct {
	Pending  int64 `json:"pending"`
	InFlight int64 `json:"in_flight"`
	Dead     int64 `json:"dead"`
	Workers  int   `json:"workers"`
	// WrongKeys counts the items sitting on well-known wrong keys
	// (Keys.StrayQueues), by key, where no worker will ever take them.
	// Absent when they are all empty.
	WrongKeys map[string]int64 `json:"wrong_keys,omitempty"`
}

// Stats counts pending, in-flight and dead items, and the items on
// well-known wrong keys (one LLEN each, in the same pipeline).
func (c *Client) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	workers, err := c.rdb.Do(ctx, c.rdb.B().Smembers().Key(c.keys.Workers()).Build()).AsStrSlice()
	if err != nil {
		return s, fmt.Errorf("queue stats: %w", err)
	}
	s.Workers = len(workers)
	cmds := []rueidis.Completed{
		c.rdb.B().Llen().Key(c.keys.Queue()).Build(),
		c.rdb.B().Llen().Key(c.keys.Dead()).Build(),
	}
	for _, w := range workers {
		cmds = append(cmds, c.rdb.B().Llen().Key(c.keys.Processing(w)).Build())
	}
	stray := c.keys.StrayQueues()
	for _, k := range stray {
		cmds = append(cmds, c.rdb.B().Llen().Key(k).Build())
	}
	res := c.rdb.DoMulti(ctx, cmds...)
	for i, r := range res {
		n, err := r.AsInt64()
		if i >= 2+len(workers) {
			// A wrong key holding another type (WRONGTYPE) is some other
			// application's key: not items pushed by mistake.
			if err == nil && n > 0 {
				if s.WrongKeys == nil {
					s.WrongKeys = map[string]int64{}
				}
				s.WrongKeys[stray[i-2-len(workers)]] = n
			}
			continue
		}
		if err != nil {
			return s, fmt.Errorf("queue stats: %w", err)
		}
		switch i {
		case 0:
			s.Pending = n
		case 1:
			s.Dead = n
		default:
			s.InFlight += n
		}
	}
	return s, nil
}

// DeadLetters returns up to limit dead letters, newest first, skipping offset.
func (c *Client) DeadLetters(ctx context.Context, offset, limit int) ([]DeadLetter, error) {
	if limit <= 0 {
		limit = 100
	}
	raws, err := c.rdb.Do(ctx, c.rdb.B().Lrange().Key(c.keys.Dead()).Start(int64(offset)).Stop(int64(offset+limit-1)).Build()).AsStrSlice()
	if err != nil {
		return nil, fmt.Errorf("queue dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(raws))
	for _, r := range raws {
		var d DeadLetter
		if err := json.Unmarshal([]byte(r), &d); err != nil {
			d = DeadLetter{Item: r, Error: "undecodable dead-letter entry"}
		}
		sum := sha1.Sum([]byte(r))
		d.ID = hex.EncodeToString(sum[:])
		out = append(out, d)
	}
	return out, nil
}

// RequeueDeadLetter puts the one dead letter id (DeadLetter.ID) back on the
// ingest list with a fresh attempt count; false if it is not there (any
// more).
func (c *Client) RequeueDeadLetter(ctx context.Context, id string) (bool, error) {
	return c.deadOne(ctx, id, "requeue")
}

// DeleteDeadLetter drops the one dead letter id for good; false if it is
// not there (any more).
func (c *Client) DeleteDeadLetter(ctx context.Context, id string) (bool, error) {
	return c.deadOne(ctx, id, "delete")
}

func (c *Client) deadOne(ctx context.Context, id, action string) (bool, error) {
	n, err := scriptDeadOne.Exec(ctx, c.rdb,
		[]string{c.keys.Dead(), c.keys.Queue(), c.keys.Attempts()},
		[]string{strings.ToLower(id), action}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("queue %s dead letter %s: %w", action, id, err)
	}
	return n == 1, nil
}

// RequeueDead moves up to n dead letters (n <= 0: all of them), oldest
// first, back onto the ingest list with a fresh attempt count and returns
// how many moved.
func (c *Client) RequeueDead(ctx context.Context, n int) (int, error) {
	moved, err := scriptRequeue.Exec(ctx, c.rdb,
		[]string{c.keys.Dead(), c.keys.Queue(), c.keys.Attempts()},
		[]string{strconv.Itoa(n)}).AsInt64()
	if err != nil {
		return 0, fmt.Errorf("queue requeue dead: %w", err)
	}
	return int(moved), nil
}

package wsgateway

import (
	"context"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
)

// Every Redis call of the gateway has a deadline: the caller's, or
// Config.RedisTimeout when the caller set none (a request's context has
// none). Without one, a call made while Redis is stalled (SIGSTOP, a long
// fork, a black-holed link) waits until rueidis notices the dead connection,
// seconds later, and the client's answer with it. The bound is applied here,
// around the Queue and Presence the gateway was given, so that no handler
// can forget it. Subscriptions (Receive*) are long-lived by nature and pass
// through, as does any method added to the interfaces and not listed here.

func bounded(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// answerByValue runs call under bounded(ctx, d) and returns its result, or
// the context's error as soon as that context ends even if call has not
// returned yet. rueidis makes a caller that needs a new connection wait for
// the dial in progress whatever the caller's own deadline (its mux waits on
// the dial of whoever started it, and a dial to a stalled Redis ends only
// at the dial's own timeouts): seen as a 2.5 s answer of GET /api/v1/queue
// during TestRedisStallEveryAnswerWithinTwoSeconds. call then finishes on
// its own goroutine, within rueidis' dial and write timeouts (1 s, 2 s:
// redisq.Open), its result dropped; a write it made may still reach Redis,
// as a command whose reply was not awaited always could (a frame refused
// as unavailable and pushed anyway is stored once: items are deduplicated
// by device and id).
func answerByValue[T any](ctx context.Context, d time.Duration, call func(context.Context) (T, error)) (T, error) {
	ctx, cancel := bounded(ctx, d)
	defer cancel() // also tells a call still running that nobody waits
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := call(ctx)
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		select {
		case r := <-done: // it answered as the context ended
			return r.v, r.err
		default:
		}
		var zero T
		return zero, ctx.Err()
	}
}

// answerBy is answerByValue for a call that returns only an error.
func answerBy(ctx context.Context, d time.Duration, call func(context.Context) error) error {
	_, err := answerByValue(ctx, d, func(ctx context.Context) (struct{}, error) { return struct{}{}, call(ctx) })
	return err
}

type boundedQueue struct {
	Queue
	d time.Duration
}

func (q boundedQueue) Push(ctx context.Context, items ...[]byte) error {
	return answerBy(ctx, q.d, func(ctx context.Context) error { return q.Queue.Push(ctx, items...) })
}

func (q boundedQueue) Stats(ctx context.Context) (redisq.Stats, error) {
	return answerByValue(ctx, q.d, func(ctx context.Context) (redisq.Stats, error) { return q.Queue.Stats(ctx) })
}

func (q boundedQueue) DeadLetters(ctx context.Context, offset, limit int) ([]redisq.DeadLetter, error) {
	return answerByValue(ctx, q.d, func(ctx context.Context) ([]redisq.DeadLetter, error) { return q.Queue.DeadLetters(ctx, offset, limit) })
}

func (q boundedQueue) RequeueDead(ctx context.Context, n int) (int, error) {
	return answerByValue(ctx, q.d, func(ctx context.Context) (int, error) { return q.Queue.RequeueDead(ctx, n) })
}

type boundedPresence struct {
	Presence
	d time.Duration
}

func (p boundedPresence) SetLink(ctx context.Context, device, value string) (string, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (string, error) { return p.Presence.SetLink(ctx, device, value) })
}

func (p boundedPresence) EnsureLink(ctx context.Context, device, value string) (bool, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (bool, error) { return p.Presence.EnsureLink(ctx, device, value) })
}

func (p boundedPresence) DeleteLink(ctx context.Context, device, value string) (bool, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (bool, error) { return p.Presence.DeleteLink(ctx, device, value) })
}

func (p boundedPresence) GatewayHeartbeat(ctx context.Context, gateway string, ttl time.Duration) (bool, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (bool, error) { return p.Presence.GatewayHeartbeat(ctx, gateway, ttl) })
}

func (p boundedPresence) GatewayGone(ctx context.Context, gateway string) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.GatewayGone(ctx, gateway) })
}

func (p boundedPresence) SweepLinks(ctx context.Context, gone func(instance string) bool) ([]string, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) ([]string, error) { return p.Presence.SweepLinks(ctx, gone) })
}

// statesBound caps the wait for device states below the Redis timeout: the
// device list still answers without them (devices shown offline), and the
// rest of the request (token and device lookups in the store) must fit in
// the 2 s a client is promised during a Redis outage.
const statesBound = time.Second

func (p boundedPresence) DeviceStates(ctx context.Context) (map[string]redisq.DeviceState, error) {
	return answerByValue(ctx, min(p.d, statesBound), func(ctx context.Context) (map[string]redisq.DeviceState, error) { return p.Presence.DeviceStates(ctx) })
}

func (p boundedPresence) PublishGateway(ctx context.Context, gateway string, payload []byte) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.PublishGateway(ctx, gateway, payload) })
}

func (p boundedPresence) Link(ctx context.Context, device string) (string, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (string, error) { return p.Presence.Link(ctx, device) })
}

func (p boundedPresence) PublishLive(ctx context.Context, msgs []redisq.LiveMessage) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.PublishLive(ctx, msgs) })
}

func (p boundedPresence) Ping(ctx context.Context) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.Ping(ctx) })
}

func (p boundedPresence) PublishPresence(ctx context.Context, device string, online bool) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.PublishPresence(ctx, device, online) })
}

func (p boundedPresence) SetSession(ctx context.Context, id, user string, ttl time.Duration) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.SetSession(ctx, id, user, ttl) })
}

func (p boundedPresence) Session(ctx context.Context, id string) (string, error) {
	return answerByValue(ctx, p.d, func(ctx context.Context) (string, error) { return p.Presence.Session(ctx, id) })
}

func (p boundedPresence) DeleteSession(ctx context.Context, id string) error {
	return answerBy(ctx, p.d, func(ctx context.Context) error { return p.Presence.DeleteSession(ctx, id) })
}

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

type boundedQueue struct {
	Queue
	d time.Duration
}

func (q boundedQueue) Push(ctx context.Context, items ...[]byte) error {
	ctx, cancel := bounded(ctx, q.d)
	defer cancel()
	return q.Queue.Push(ctx, items...)
}

func (q boundedQueue) Stats(ctx context.Context) (redisq.Stats, error) {
	ctx, cancel := bounded(ctx, q.d)
	defer cancel()
	return q.Queue.Stats(ctx)
}

func (q boundedQueue) DeadLetters(ctx context.Context, offset, limit int) ([]redisq.DeadLetter, error) {
	ctx, cancel := bounded(ctx, q.d)
	defer cancel()
	return q.Queue.DeadLetters(ctx, offset, limit)
}

func (q boundedQueue) RequeueDead(ctx context.Context, n int) (int, error) {
	ctx, cancel := bounded(ctx, q.d)
	defer cancel()
	return q.Queue.RequeueDead(ctx, n)
}

type boundedPresence struct {
	Presence
	d time.Duration
}

func (p boundedPresence) SetLink(ctx context.Context, device, value string) (string, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.SetLink(ctx, device, value)
}

func (p boundedPresence) EnsureLink(ctx context.Context, device, value string) (bool, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.EnsureLink(ctx, device, value)
}

func (p boundedPresence) DeleteLink(ctx context.Context, device, value string) (bool, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.DeleteLink(ctx, device, value)
}

func (p boundedPresence) GatewayHeartbeat(ctx context.Context, gateway string, ttl time.Duration) (bool, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.GatewayHeartbeat(ctx, gateway, ttl)
}

func (p boundedPresence) GatewayGone(ctx context.Context, gateway string) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.GatewayGone(ctx, gateway)
}

func (p boundedPresence) SweepLinks(ctx context.Context, gone func(instance string) bool) ([]string, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.SweepLinks(ctx, gone)
}

// statesBound caps the wait for device states below the Redis timeout: the
// device list still answers without them (devices shown offline), and the
// rest of the request (token and device lookups in the store) must fit in
// the 2 s a client is promised during a Redis outage.
const statesBound = time.Second

func (p boundedPresence) DeviceStates(ctx context.Context) (map[string]redisq.DeviceState, error) {
	ctx, cancel := bounded(ctx, min(p.d, statesBound))
	defer cancel()
	return p.Presence.DeviceStates(ctx)
}

func (p boundedPresence) PublishGateway(ctx context.Context, gateway string, payload []byte) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.PublishGateway(ctx, gateway, payload)
}

func (p boundedPresence) Link(ctx context.Context, device string) (string, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.Link(ctx, device)
}

func (p boundedPresence) PublishLive(ctx context.Context, msgs []redisq.LiveMessage) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.PublishLive(ctx, msgs)
}

func (p boundedPresence) Ping(ctx context.Context) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.Ping(ctx)
}

func (p boundedPresence) PublishPresence(ctx context.Context, device string, online bool) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.PublishPresence(ctx, device, online)
}

func (p boundedPresence) SetSession(ctx context.Context, id, user string, ttl time.Duration) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.SetSession(ctx, id, user, ttl)
}

func (p boundedPresence) Session(ctx context.Context, id string) (string, error) {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.Session(ctx, id)
}

func (p boundedPresence) DeleteSession(ctx context.Context, id string) error {
	ctx, cancel := bounded(ctx, p.d)
	defer cancel()
	return p.Presence.DeleteSession(ctx, id)
}

package bridge

import (
	"context"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Subscriber receives the messages of a Redis channel (redisq.Client).
// fn runs on the connection's reader and must not block on Redis.
type Subscriber interface {
	ReceiveChannel(ctx context.Context, channel string, fn func([]byte), subscribed func(first bool))
}

// drainTimeout bounds the pushes of buffered messages after shutdown.
const drainTimeout = 5 * time.Second

// RunChannel ingests the messages published on a Redis channel until ctx
// ends, then returns nil.
//
// Pub/sub is at most once: Redis keeps nothing for a subscriber that is not
// there, so what is published while the bridge is down (or resubscribing
// after a lost connection, logged) is lost. Received messages wait in a
// buffer of Config.Buffer for their push (a push waits out a Redis outage
// with backoff); with the buffer full, new ones are dropped and counted.
//
// Ids: a mapped id; else, with a mapped ts, a hash of the body (a message
// published twice, or seen by two bridges on the same channel, is stored
// once); else a random id, since a message without time or id that repeats
// is a new report (a parked vehicle).
//
// Shutdown order: unsubscribe, then push what is buffered (for at most
// drainTimeout), then return.
func (b *Bridge) RunChannel(ctx context.Context, sub Subscriber, channel string) error {
	buf := make(chan []byte, b.cfg.Buffer)
	recvCtx, stopRecv := context.WithCancel(ctx)
	defer stopRecv()
	var recv, rep sync.WaitGroup
	recv.Go(func() {
		sub.ReceiveChannel(recvCtx, channel, func(msg []byte) {
			select {
			case buf <- msg:
			default:
				b.dropped.Add(1)
				b.m.messages.WithLabelValues("dropped").Inc()
				b.log.Warn("bridge buffer full: message dropped", zap.String("channel", channel), zap.Int("buffer", b.cfg.Buffer))
			}
		}, func(first bool) {
			if !first {
				b.log.Warn("bridge resubscribed: messages published meanwhile are lost", zap.String("channel", channel))
			}
		})
	})
	defer recv.Wait()
	repCtx, stopReport := context.WithCancel(context.Background())
	rep.Go(func() { b.report(repCtx) })
	defer rep.Wait()
	defer stopReport()
	b.log.Info("bridge subscribing", zap.String("channel", channel), zap.String("id", b.cfg.ID))

	_, hashIDs := b.cfg.Mapping.Paths["ts"]
	handle := func(ctx context.Context, msg []byte) {
		id := ""
		if !hashIDs {
			id = randomID()
		}
		for try := 0; ; try++ {
			err := b.Handle(ctx, msg, id)
			if !retryable(err) {
				return
			}
			if try == 0 {
				b.log.Warn("bridge: store or Redis failed; retrying", zap.Error(err))
			}
			if !sleep(ctx, backoff(try)) {
				b.log.Error("bridge: message lost at shutdown", zap.Error(err), zap.ByteString("body", truncate(msg, 256)))
				return
			}
		}
	}
	for {
		select {
		case msg := <-buf:
			handle(ctx, msg)
			continue
		case <-ctx.Done():
		}
		break
	}
	stopRecv()
	recv.Wait() // ReceiveChannel returned: nothing more enters buf
	dctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
	defer cancel()
	for {
		select {
		case msg := <-buf:
			handle(dctx, msg)
		default:
			return nil
		}
	}
}

package bridge

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// DefaultPrefetch is how many AMQP messages the broker sends ahead of their
// acks (Config.Prefetch).
const DefaultPrefetch = 100

// RunAMQP consumes an AMQP 0-9-1 queue (RabbitMQ) until ctx ends, then
// returns nil. The queue must exist (it belongs to the system that fills
// it); a broker that cannot be reached or a missing queue at start is an
// error. A connection lost later is dialled again with backoff until ctx
// ends.
//
// Acknowledgement, per message, manual:
//   - ack once its item is on the ingest list (Redis answered): a bridge that
//     dies before has the message redelivered by the broker, and its id
//     (mapped, else the AMQP message-id, else a hash of the body) makes the
//     second copy a duplicate the store ignores;
//   - reject without requeue for a malformed message or an unknown device
//     (counted and logged by Handle; a dead-letter exchange on the queue
//     keeps them, if the queue has one);
//   - nack with requeue when the store or Redis failed, and wait (backoff
//     from 100 ms to 5 s, reset by the next success) before the next message.
//
// Shutdown order: the message in hand is finished (its push bounded by
// Config.Timeout) and acked, then the connection is closed; the broker puts
// the messages it had sent ahead back on the queue.
func (b *Bridge) RunAMQP(ctx context.Context, amqpURL, queue string) error {
	conn, ch, deliveries, err := b.amqpConsume(amqpURL, queue)
	if err != nil {
		return err
	}
	repCtx, stopReport := context.WithCancel(context.Background())
	reported := make(chan struct{})
	go func() { defer close(reported); b.report(repCtx) }()
	defer func() { <-reported }()
	defer stopReport()
	b.log.Info("bridge consuming", zap.String("amqp", redactURL(amqpURL)), zap.String("queue", queue), zap.String("id", b.cfg.ID))
	fails := 0
	for try := 0; ; {
		if deliveries != nil {
			try = 0
			err = b.amqpLoop(ctx, ch, deliveries, &fails)
			_ = conn.Close()
			if ctx.Err() != nil {
				return nil
			}
			b.log.Warn("bridge: AMQP connection lost; dialling again", zap.Error(err))
		}
		if !sleep(ctx, backoff(try)) {
			return nil
		}
		try++
		conn, ch, deliveries, err = b.amqpConsume(amqpURL, queue)
		if err != nil {
			b.log.Warn("bridge: AMQP dial failed", zap.Error(err), zap.Int("try", try))
			deliveries = nil
		}
	}
}

// amqpConsume dials, sets the prefetch and starts consuming.
func (b *Bridge) amqpConsume(amqpURL, queue string) (*amqp.Connection, *amqp.Channel, <-chan amqp.Delivery, error) {
	conn, err := amqp.DialConfig(amqpURL, amqp.Config{Properties: amqp.Table{"connection_name": b.cfg.ID}})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("amqp dial %s: %w", redactURL(amqpURL), err)
	}
	fail := func(what string, err error) (*amqp.Connection, *amqp.Channel, <-chan amqp.Delivery, error) {
		_ = conn.Close()
		return nil, nil, nil, fmt.Errorf("amqp %s: %w", what, err)
	}
	ch, err := conn.Channel()
	if err != nil {
		return fail("channel", err)
	}
	if err := ch.Qos(b.cfg.Prefetch, 0, false); err != nil {
		return fail("qos", err)
	}
	if _, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil); err != nil {
		return fail("queue "+queue, err)
	}
	d, err := ch.Consume(queue, b.cfg.ID, false, false, false, false, nil)
	if err != nil {
		return fail("consume "+queue, err)
	}
	return conn, ch, d, nil
}

// amqpLoop handles deliveries until ctx ends or the channel closes.
func (b *Bridge) amqpLoop(ctx context.Context, ch *amqp.Channel, deliveries <-chan amqp.Delivery, fails *int) error {
	closed := ch.NotifyClose(make(chan *amqp.Error, 1))
	for {
		select {
		case <-ctx.Done():
			return nil
		case e := <-closed:
			if e == nil {
				return errors.New("channel closed")
			}
			return e
		case d, ok := <-deliveries:
			if !ok {
				return errors.New("deliveries ended")
			}
			// The message in hand is finished even at shutdown: Handle
			// bounds its own calls.
			err := b.Handle(context.WithoutCancel(ctx), d.Body, d.MessageId)
			switch {
			case err == nil:
				*fails = 0
				if err := d.Ack(false); err != nil {
					// Redelivered later: a duplicate the store ignores.
					b.log.Warn("bridge: AMQP ack failed", zap.Error(err))
				}
			case !retryable(err):
				if err := d.Reject(false); err != nil {
					b.log.Warn("bridge: AMQP reject failed", zap.Error(err))
				}
			default:
				if *fails == 0 {
					b.log.Warn("bridge: store or Redis failed; requeueing", zap.Error(err))
				}
				if err := d.Nack(false, true); err != nil {
					b.log.Warn("bridge: AMQP nack failed", zap.Error(err))
				}
				wait := backoff(*fails)
				*fails++
				if !sleep(ctx, wait) {
					return nil
				}
			}
		}
	}
}

// redactURL hides the password of an AMQP URL in messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

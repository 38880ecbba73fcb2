package redisq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/rueidis"
)

func strconvMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// LiveMessage is one message for a device's live channel, already encoded in
// the viewer protocol. Location messages also become the device's last
// position.
type LiveMessage struct {
	Device     string
	Payload    []byte
	IsLocation bool
	ReceivedAt int64 // Unix ms
}

// PublishLive publishes the messages on their devices' live channels and
// records each device's last position and last-seen time, in one pipeline.
// Messages are in arrival order; later ones win.
func (c *Client) PublishLive(ctx context.Context, msgs []LiveMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(msgs)+2)
	last := map[string][]byte{}
	seen := map[string]int64{}
	for _, m := range msgs {
		cmds = append(cmds, c.rdb.B().Publish().Channel(c.keys.LiveChannel(m.Device)).Message(rueidis.BinaryString(m.Payload)).Build())
		if m.IsLocation {
			last[m.Device] = m.Payload
		}
		if m.ReceivedAt > seen[m.Device] {
			seen[m.Device] = m.ReceivedAt
		}
	}
	if len(last) > 0 {
		h := c.rdb.B().Hset().Key(c.keys.LastLocation()).FieldValue()
		for d, p := range last {
			h = h.FieldValue(d, rueidis.BinaryString(p))
		}
		cmds = append(cmds, h.Build())
	}
	if len(seen) > 0 {
		h := c.rdb.B().Hset().Key(c.keys.LastSeen()).FieldValue()
		for d, ms := range seen {
			h = h.FieldValue(d, strconv.FormatInt(ms, 10))
		}
		cmds = append(cmds, h.Build())
	}
	for _, r := range c.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("publish live: %w", err)
		}
	}
	return nil
}

// DeviceState is what Redis knows of a device right now.
type DeviceState struct {
	Link     string // links hash value, "" when not connected
	Location []byte // last location message (viewer protocol JSON), nil if none
	LastSeen int64  // Unix ms, 0 if never
}

// DeviceStates returns the state of every device Redis knows of.
func (c *Client) DeviceStates(ctx context.Context) (map[string]DeviceState, error) {
	res := c.rdb.DoMulti(ctx,
		c.rdb.B().Hgetall().Key(c.keys.Links()).Build(),
		c.rdb.B().Hgetall().Key(c.keys.LastLocation()).Build(),
		c.rdb.B().Hgetall().Key(c.keys.LastSeen()).Build(),
	)
	var maps [3]map[string]string
	for i, r := range res {
		m, err := r.AsStrMap()
		if err != nil {
			return nil, fmt.Errorf("device states: %w", err)
		}
		maps[i] = m
	}
	out := map[string]DeviceState{}
	for d, v := range maps[0] {
		s := out[d]
		s.Link = v
		out[d] = s
	}
	for d, v := range maps[1] {
		s := out[d]
		s.Location = []byte(v)
		out[d] = s
	}
	for d, v := range maps[2] {
		s := out[d]
		s.LastSeen, _ = strconv.ParseInt(v, 10, 64)
		out[d] = s
	}
	return out, nil
}

// PublishGateway sends a control message to one gateway.
func (c *Client) PublishGateway(ctx context.Context, gateway string, payload []byte) error {
	err := c.rdb.Do(ctx, c.rdb.B().Publish().Channel(c.keys.GatewayChannel(gateway)).Message(rueidis.BinaryString(payload)).Build()).Error()
	if err != nil {
		return fmt.Errorf("publish to gateway %s: %w", gateway, err)
	}
	return nil
}

// ReceiveGateway calls fn for every control message sent to gateway until ctx
// ends, resubscribing after connection losses.
func (c *Client) ReceiveGateway(ctx context.Context, gateway string, fn func([]byte)) {
	c.receive(ctx, func() rueidis.Completed {
		return c.rdb.B().Subscribe().Channel(c.keys.GatewayChannel(gateway)).Build()
	}, fn)
}

// receive runs a subscription until ctx ends. The command is built anew for
// every attempt: rueidis recycles a command once it has been sent.
func (c *Client) receive(ctx context.Context, sub func() rueidis.Completed, fn func([]byte)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := c.rdb.Receive(ctx, sub(), func(m rueidis.PubSubMessage) { fn([]byte(m.Message)) })
		if ctx.Err() != nil || err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

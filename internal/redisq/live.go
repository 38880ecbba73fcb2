package redisq

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

func strconvMS(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// LiveMessage is one message for a device's live channel, already encoded in
// the viewer protocol. Location messages also become the device's last
// position when they are newer (by device time) than the one recorded.
type LiveMessage struct {
	Device     string
	Payload    []byte
	IsLocation bool
	TS         int64 // device time, Unix ms
	ReceivedAt int64 // gateway time, Unix ms
	// Notice marks a message that is only published (a geofence event,
	// an alert): it moves neither the last position nor last-seen.
	Notice bool
}

// PublishLive publishes the messages on their devices' live channels and
// records each device's last position and last-seen time, never moving
// either backwards (notices move neither).
func (c *Client) PublishLive(ctx context.Context, msgs []LiveMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	cmds := make(rueidis.Commands, 0, len(msgs))
	type latest struct {
		t       int64
		payload []byte
	}
	last := map[string]latest{}
	seen := map[string]int64{}
	for _, m := range msgs {
		cmds = append(cmds, c.rdb.B().Publish().Channel(c.keys.LiveChannel(m.Device)).Message(rueidis.BinaryString(m.Payload)).Build())
		if m.Notice {
			continue
		}
		if l, ok := last[m.Device]; m.IsLocation && (!ok || m.TS >= l.t) {
			last[m.Device] = latest{m.TS, m.Payload}
		}
		seen[m.Device] = max(seen[m.Device], m.ReceivedAt)
	}
	for _, r := range c.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("publish live: %w", err)
		}
	}
	calls := hsetNewerCalls(c.keys.LastLocation(), "json", slices.Collect(maps.Keys(last)), func(d string) (string, string) {
		return strconv.FormatInt(last[d].t, 10), string(last[d].payload)
	})
	calls = append(calls, hsetNewerCalls(c.keys.LastSeen(), "number", slices.Collect(maps.Keys(seen)), func(d string) (string, string) {
		v := strconv.FormatInt(seen[d], 10)
		return v, v
	})...)
	for _, r := range scriptHsetNewer.ExecMulti(ctx, c.rdb, calls...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("record last state: %w", err)
		}
	}
	return nil
}

// hsetNewerCalls are the runs of hset_newer on the hash key (mode: how it
// tells a stored value's time) that set the devices' fields, at most
// devicesPerStateCall devices a run; triple gives a device's time and value.
func hsetNewerCalls(key, mode string, devices []string, triple func(device string) (t, v string)) []rueidis.LuaExec {
	var calls []rueidis.LuaExec
	for part := range slices.Chunk(devices, devicesPerStateCall) {
		args := make([]string, 0, 1+3*len(part))
		args = append(args, mode)
		for _, d := range part {
			t, v := triple(d)
			args = append(args, d, t, v)
		}
		calls = append(calls, rueidis.LuaExec{Keys: []string{key}, Args: args})
	}
	return calls
}

// devicesPerStateCall is the most devices whose last state one run of
// hset_newer sets: it decodes each stored position, about 4 us a device on
// this box, and Redis serves nobody else meanwhile (ItemsPerCall).
const devicesPerStateCall = 500

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

// DeviceStatesOf returns the state of the given devices only (HMGET of the
// three hashes, in chunks of 1,000 fields, all in one round trip), so that
// its cost follows the request rather than the fleet. A device Redis knows
// nothing of gets a zero DeviceState.
func (c *Client) DeviceStatesOf(ctx context.Context, devices []string) (map[string]DeviceState, error) {
	out := make(map[string]DeviceState, len(devices))
	const chunk = 1000
	cmds := make(rueidis.Commands, 0, 3*((len(devices)+chunk-1)/chunk))
	for start := 0; start < len(devices); start += chunk {
		ids := devices[start:min(start+chunk, len(devices))]
		cmds = append(cmds,
			c.rdb.B().Hmget().Key(c.keys.Links()).Field(ids...).Build(),
			c.rdb.B().Hmget().Key(c.keys.LastLocation()).Field(ids...).Build(),
			c.rdb.B().Hmget().Key(c.keys.LastSeen()).Field(ids...).Build())
	}
	res := c.rdb.DoMulti(ctx, cmds...)
	for n, start := 0, 0; start < len(devices); n, start = n+3, start+chunk {
		ids := devices[start:min(start+chunk, len(devices))]
		var vals [3][]rueidis.RedisMessage
		for i, r := range res[n : n+3] {
			v, err := r.ToArray()
			if err != nil {
				return nil, fmt.Errorf("device states of %d devices: %w", len(devices), err)
			}
			if len(v) != len(ids) {
				return nil, fmt.Errorf("device states: HMGET returned %d values for %d fields", len(v), len(ids))
			}
			vals[i] = v
		}
		for j, d := range ids {
			var st DeviceState
			st.Link, _ = vals[0][j].ToString() // nil (not connected) leaves ""
			if loc, err := vals[1][j].ToString(); err == nil {
				st.Location = []byte(loc)
			}
			if seen, err := vals[2][j].ToString(); err == nil {
				st.LastSeen, _ = strconv.ParseInt(seen, 10, 64)
			}
			out[d] = st
		}
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
	c.receive(ctx, c.keys.GatewayChannel(gateway), fn, nil)
}

// unsubscribeTimeout bounds the UNSUBSCRIBE sent when a subscription ends.
const unsubscribeTimeout = 5 * time.Second

// receive runs a subscription to channel until ctx ends, then unsubscribes.
// rueidis's Receive returns on ctx's end without telling Redis, which keeps
// the connection subscribed: a gateway whose viewers came and went stayed
// subscribed to every device they ever watched, and Redis kept sending it
// their messages to drop. The UNSUBSCRIBE goes on the connection that holds
// the subscription (rueidis's return hook) and is answered before receive
// returns, so a caller that waits for receive before subscribing again to
// the same channel (the gateway's hub does) is not unsubscribed by it.
func (c *Client) receive(ctx context.Context, channel string, fn func([]byte), subscribed func(first bool)) {
	done := ctx
	ctx = rueidis.WithOnReceiveReturnHook(ctx, func(err error, cc rueidis.CommandClient) error {
		if done.Err() == nil {
			return err
		}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(done), unsubscribeTimeout)
		defer cancel()
		_ = cc.Do(uctx, cc.B().Unsubscribe().Channel(channel).Build()).Error()
		return err
	})
	if subscribed != nil {
		var confirmed atomic.Bool
		ctx = rueidis.WithOnSubscriptionHook(ctx, func(s rueidis.PubSubSubscription) {
			if s.Kind == "subscribe" {
				subscribed(!confirmed.Swap(true))
			}
		})
	}
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		// The command is built anew for every attempt: rueidis recycles a
		// command once it has been sent.
		err := c.rdb.Receive(ctx, c.rdb.B().Subscribe().Channel(channel).Build(), func(m rueidis.PubSubMessage) { fn([]byte(m.Message)) })
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

// Presence is the viewer-protocol message that a device came or went.
type Presence struct {
	Type   string `json:"type"` // "presence"
	Device string `json:"device"`
	Online bool   `json:"online"`
	TS     int64  `json:"ts"` // Unix ms of the change
}

// PublishPresence tells the device's live viewers that it came or went.
func (c *Client) PublishPresence(ctx context.Context, device string, online bool) error {
	b, _ := json.Marshal(Presence{Type: "presence", Device: device, Online: online, TS: time.Now().UnixMilli()})
	if err := c.rdb.Do(ctx, c.rdb.B().Publish().Channel(c.keys.LiveChannel(device)).Message(rueidis.BinaryString(b)).Build()).Error(); err != nil {
		return fmt.Errorf("publish presence %s: %w", device, err)
	}
	return nil
}

package wsgateway

import (
	"context"
	"encoding/json"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// control is a message on a gateway's control channel.
type control struct {
	Type    string            `json:"type"` // "kick" or "command"
	Device  string            `json:"device"`
	Link    string            `json:"link,omitempty"`    // kick: the connection to close
	Command *protocol.Command `json:"command,omitempty"` // command: what to send
}

// replaceRemote tells the gateway instance holding an older connection of
// device to close it. A dead instance's connection is gone anyway.
func (g *Gateway) replaceRemote(device, oldLink string) {
	gw := redisq.LinkGateway(oldLink)
	if gw == g.instance {
		if c := g.conns.get(device); c != nil && c.link == oldLink {
			c.close(closeReplaced, "replaced by a newer connection")
		}
		return
	}
	b, _ := json.Marshal(control{Type: "kick", Device: device, Link: oldLink})
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.RedisTimeout)
	defer cancel()
	if err := g.presence.PublishGateway(ctx, gw, b); err != nil {
		g.log.Warn("kick older connection", zap.String("device", device), zap.String("other_gateway", gw), zap.Error(err))
	}
}

// controlLoop handles kicks and commands sent to this gateway instance: the
// links name the instance, so that is where others route them.
func (g *Gateway) controlLoop(ctx context.Context) {
	g.presence.ReceiveGateway(ctx, g.instance, func(b []byte) {
		var m control
		if err := json.Unmarshal(b, &m); err != nil {
			g.log.Warn("bad control message", zap.Error(err))
			return
		}
		switch m.Type {
		case "kick":
			for _, c := range g.conns.snapshot() {
				if c.device.ID == m.Device && c.link == m.Link {
					c.close(closeReplaced, "replaced by a newer connection")
				}
			}
		case "command":
			if c := g.conns.get(m.Device); c != nil && m.Command != nil {
				c.fr.command(c, m.Command)
			}
		}
	})
}

// warnUnlessStopping logs a warning unless ctx has ended: a background
// call cut short by a stop is no fault.
func (g *Gateway) warnUnlessStopping(ctx context.Context, msg string, fields ...zap.Field) {
	if ctx.Err() == nil {
		g.log.Warn(msg, fields...)
	}
}

// heartbeatLoop keeps the instance's heartbeat alive, asserts its links
// again when Redis lost them (a restart without persistence), and sweeps the
// links of dead instances. Until its first sweep succeeds, it also sweeps
// every other instance of its own id: ids are unique among running
// gateways, so those are predecessors killed without cleaning up, whose
// heartbeat may not have expired yet.
func (g *Gateway) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.HeartbeatTTL / 3)
	defer t.Stop()
	predecessorsSwept := false
	for {
		predecessorsSwept = g.beat(ctx, !predecessorsSwept) || predecessorsSwept
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// beat renews the heartbeat and sweeps; with predecessors it also sweeps
// the other instances of this gateway's id. It reports whether the sweep
// succeeded.
func (g *Gateway) beat(ctx context.Context, predecessors bool) bool {
	c, cancel := context.WithTimeout(ctx, g.cfg.RedisTimeout)
	defer cancel()
	existed, err := g.presence.GatewayHeartbeat(c, g.instance, g.cfg.HeartbeatTTL)
	if err != nil {
		g.warnUnlessStopping(ctx, "gateway heartbeat", zap.Error(err))
		return false
	}
	if !existed {
		if n := len(g.conns.snapshot()); n > 0 && !predecessors {
			// Not our first beat: Redis lost its data, or a gateway started
			// with our id and took us for its dead predecessor.
			g.log.Warn("heartbeat key was gone; asserting device links again", zap.Int("devices", n))
		}
		for _, dc := range g.conns.snapshot() {
			if g.conns.get(dc.device.ID) != dc {
				continue
			}
			if _, err := g.presence.EnsureLink(c, dc.device.ID, dc.link); err != nil {
				g.warnUnlessStopping(ctx, "assert device link", zap.Error(err))
				break
			}
		}
	}
	g.ingest.prune(time.Now())
	g.logins.prune(time.Now())
	g.addrs.prune(time.Now())
	g.conns.pruneDrops(time.Now())
	for dev, link := range g.orphans.take() {
		removed, err := g.presence.DeleteLink(c, dev, link)
		if err != nil {
			g.orphans.putBack(dev, link)
			continue
		}
		if removed {
			g.presenceChanged(dev, false)
		}
	}
	var gone func(string) bool
	var prior []string
	if predecessors {
		gone = func(inst string) bool {
			if inst != g.instance && redisq.InstanceGateway(inst) == g.cfg.ID {
				prior = append(prior, inst)
				return true
			}
			return false
		}
	}
	removed, err := g.presence.SweepLinks(c, gone)
	if err != nil {
		g.warnUnlessStopping(ctx, "sweep links", zap.Error(err))
	}
	if len(removed) > 0 {
		g.log.Info("swept links of dead gateway instances", zap.Int("devices", len(removed)),
			zap.Strings("predecessors", prior))
	}
	for _, d := range removed {
		g.presenceChanged(d, false)
	}
	if err != nil {
		return false
	}
	// A predecessor's heartbeat would keep others from sweeping what it may
	// still write, were it alive after all (a duplicate id): dropping it
	// makes such a duplicate assert its links again at its next beat.
	for _, inst := range prior {
		if err := g.presence.GatewayGone(c, inst); err != nil {
			g.log.Warn("drop a predecessor's heartbeat", zap.String("predecessor", inst), zap.Error(err))
		}
	}
	return true
}

// revokeLoop closes the connections of revoked devices within RevokePoll,
// and evicts them from the token cache first, so that they cannot connect
// again. Its first round runs at once: the token cache serves nothing until
// both polls have completed one.
func (g *Gateway) revokeLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.RevokePoll)
	defer t.Stop()
	// Look a little back at each poll: clocks of the CLI host and this one
	// may differ slightly, and closing twice is harmless.
	since := time.Now().Add(-time.Minute).UnixMilli()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		start := time.Now()
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		ids, err := g.store.RevokedSince(c, since)
		cancel()
		if err != nil {
			g.warnUnlessStopping(ctx, "poll revoked devices", zap.Error(err))
			continue
		}
		since = start.UnixMilli() - 10_000
		g.tokens.revocationsChecked(start, ids)
		for _, id := range ids {
			for _, dc := range g.conns.snapshot() {
				if dc.device.ID == id {
					dc.log.Info("closing revoked device")
					dc.close(closeRevoked, "token revoked")
				}
			}
		}
	}
}

// pingLoop pings every device connection each PingPeriod. One goroutine for
// the gateway instead of a ticker per connection; WriteControl may run
// concurrently with the connection's other writes.
func (g *Gateway) pingLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.PingPeriod)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, c := range g.conns.snapshot() {
			// A deadline of its own for each: one stuck socket must not
			// use up the time of those after it.
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(g.cfg.WriteWait)); err != nil {
				_ = c.ws.Close()
			}
		}
	}
}

// commandResults publishes a device's command results on its live channel,
// giving up at deadline.
func (g *Gateway) commandResults(deadline time.Time, device string, results []protocol.CommandResult) {
	msgs := make([]redisq.LiveMessage, len(results))
	now := time.Now().UnixMilli()
	for i, res := range results {
		payload, _ := json.Marshal(struct {
			protocol.CommandResult
			Device string `json:"device"`
		}{res, device})
		msgs[i] = redisq.LiveMessage{Device: device, Payload: payload, ReceivedAt: now}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := g.presence.PublishLive(ctx, msgs); err != nil {
		g.log.Warn("publish command results", zap.String("device", device), zap.Int("results", len(msgs)), zap.Error(err))
	}
}

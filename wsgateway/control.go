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

// replaceRemote tells the gateway holding an older connection of device to
// close it. A dead gateway's connection is gone anyway.
func (g *Gateway) replaceRemote(device, oldLink string) {
	gw := redisq.LinkGateway(oldLink)
	if gw == g.cfg.ID {
		if c := g.conns.get(device); c != nil && c.link == oldLink {
			c.close(closeReplaced, "replaced by a newer connection")
		}
		return
	}
	b, _ := json.Marshal(control{Type: "kick", Device: device, Link: oldLink})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.presence.PublishGateway(ctx, gw, b); err != nil {
		g.log.Warn("kick older connection", zap.String("device", device), zap.String("other_gateway", gw), zap.Error(err))
	}
}

// controlLoop handles kicks and commands sent to this gateway.
func (g *Gateway) controlLoop(ctx context.Context) {
	g.presence.ReceiveGateway(ctx, g.cfg.ID, func(b []byte) {
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
				c.send(m.Command)
			}
		}
	})
}

// heartbeatLoop keeps the gateway's heartbeat alive, asserts its links again
// when Redis lost them (a restart without persistence), and sweeps the links
// of dead gateways.
func (g *Gateway) heartbeatLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.HeartbeatTTL / 3)
	defer t.Stop()
	for {
		g.beat(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (g *Gateway) beat(ctx context.Context) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	existed, err := g.presence.GatewayHeartbeat(c, g.cfg.ID, g.cfg.HeartbeatTTL)
	if err != nil {
		g.log.Warn("gateway heartbeat", zap.Error(err))
		return
	}
	if !existed {
		for _, dc := range g.conns.snapshot() {
			if g.conns.get(dc.device.ID) != dc {
				continue
			}
			if _, err := g.presence.EnsureLink(c, dc.device.ID, dc.link); err != nil {
				g.log.Warn("assert device link", zap.Error(err))
				break
			}
		}
	}
	g.ingest.prune(time.Now())
	g.logins.prune(time.Now())
	g.addrs.prune(time.Now())
	removed, err := g.presence.SweepLinks(c)
	if err != nil {
		g.log.Warn("sweep links", zap.Error(err))
	}
	if len(removed) > 0 {
		g.log.Info("swept links of dead gateways", zap.Int("devices", len(removed)))
	}
	for _, d := range removed {
		g.presenceChanged(d, false)
	}
}

// revokeLoop closes the connections of revoked devices within RevokePoll.
func (g *Gateway) revokeLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.RevokePoll)
	defer t.Stop()
	// Look a little back at each poll: clocks of the CLI host and this one
	// may differ slightly, and closing twice is harmless.
	since := time.Now().Add(-time.Minute).UnixMilli()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now().UnixMilli()
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		ids, err := g.store.RevokedSince(c, since)
		cancel()
		if err != nil {
			g.log.Warn("poll revoked devices", zap.Error(err))
			continue
		}
		since = now - 10_000
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
		deadline := time.Now().Add(g.cfg.WriteWait)
		for _, c := range g.conns.snapshot() {
			if err := c.ws.WriteControl(websocket.PingMessage, nil, deadline); err != nil {
				_ = c.ws.Close()
			}
		}
	}
}

// commandResult publishes a device's command result on its live channel.
func (g *Gateway) commandResult(device string, res protocol.CommandResult) {
	payload, _ := json.Marshal(struct {
		protocol.CommandResult
		Device string `json:"device"`
	}{res, device})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	msg := redisq.LiveMessage{Device: device, Payload: payload, ReceivedAt: time.Now().UnixMilli()}
	if err := g.presence.PublishLive(ctx, []redisq.LiveMessage{msg}); err != nil {
		g.log.Warn("publish command result", zap.String("device", device), zap.Error(err))
	}
}

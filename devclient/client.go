// Package devclient is a device-side client of the devtrack protocol for Go
// programs: it holds the WebSocket, reconnects with backoff and jitter, and
// resends every frame that was not acked, with the same id, so that nothing
// is lost or stored twice across disconnects. devtrack sim uses it.
package devclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/gorilla/websocket"
)

// Frame is a location or log frame to send. ID is assigned if empty; TS
// defaults to now.
type Frame struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	TS   int64  `json:"ts"`
	Data any    `json:"data"`
}

// Config configures a client.
type Config struct {
	// URL of the device socket, e.g. ws://host:8080/ws/device.
	URL string
	// Token is the device token.
	Token string
	// OnAck is called for every acked id with the time since it was last sent.
	OnAck func(id string, latency time.Duration)
	// OnError is called for frames refused for good (invalid_frame and the
	// like). Frames refused as unavailable or rate_limited are resent.
	OnError func(e protocol.ErrorFrame)
	// OnCommand answers downlink commands; nil answers ok:false.
	OnCommand func(c protocol.Command) protocol.CommandResult
	// OnState is told when the client connects (true) or loses the connection (false).
	OnState func(connected bool, err error)
	// MinBackoff and MaxBackoff bound the reconnect wait. Defaults 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// RetryAfter is the wait before resending frames refused as unavailable
	// or rate_limited. Default 500 ms.
	RetryAfter time.Duration
	// Dialer is the WebSocket dialer; default websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

// ErrUnauthorized is returned by Run when the gateway refuses the token.
var ErrUnauthorized = errors.New("devclient: token refused (401)")

type pending struct {
	raw    []byte
	sentAt time.Time
}

// Client is one device connection. Send may be called from any goroutine.
type Client struct {
	cfg Config
	seq atomic.Uint64

	mu      sync.Mutex
	ws      *websocket.Conn // nil while disconnected
	pending map[string]*pending
	order   []string // ids in send order, for resending in order
	wmu     sync.Mutex
}

// New returns a client; call Run to connect.
func New(cfg Config) *Client {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 200 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 500 * time.Millisecond
	}
	if cfg.Dialer == nil {
		cfg.Dialer = websocket.DefaultDialer
	}
	return &Client{cfg: cfg, pending: map[string]*pending{}}
}

// Pending is the number of frames sent and not yet acked.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Send queues a frame and writes it if connected; it is resent after every
// reconnect until acked. It returns the frame's id.
func (c *Client) Send(f Frame) (string, error) {
	if f.ID == "" {
		f.ID = "f-" + strconv.FormatUint(c.seq.Add(1), 36) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	}
	if f.TS == 0 {
		f.TS = time.Now().UnixMilli()
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("devclient: encode frame: %w", err)
	}
	p := &pending{raw: raw, sentAt: time.Now()}
	c.mu.Lock()
	if _, dup := c.pending[f.ID]; !dup {
		c.order = append(c.order, f.ID)
	}
	c.pending[f.ID] = p
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		c.write(ws, raw)
	}
	return f.ID, nil
}

func (c *Client) write(ws *websocket.Conn, raw []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := ws.WriteMessage(websocket.TextMessage, raw); err != nil {
		_ = ws.Close() // the reader notices and reconnects
	}
}

// Run connects and keeps the connection until ctx ends. It returns nil when
// ctx ends, ErrUnauthorized if the token is refused.
func (c *Client) Run(ctx context.Context) error {
	backoff := c.cfg.MinBackoff
	for ctx.Err() == nil {
		up, err := c.session(ctx)
		if errors.Is(err, ErrUnauthorized) {
			return err
		}
		if c.cfg.OnState != nil {
			c.cfg.OnState(false, err)
		}
		if ctx.Err() != nil {
			break
		}
		if up >= c.cfg.MaxBackoff {
			backoff = c.cfg.MinBackoff // the last connection was good: start over
		}
		// Jitter in [backoff/2, 1.5 backoff): a fleet that lost its gateway
		// at once does not come back at once.
		wait := time.Duration(rand.Int64N(int64(backoff))) + backoff/2
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
	return nil
}

// session runs one connection: dial, resend what is pending, read until it
// fails. It returns how long the connection was up.
func (c *Client) session(ctx context.Context) (time.Duration, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cfg.Token)
	ws, resp, err := c.cfg.Dialer.DialContext(ctx, c.cfg.URL, h)
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return 0, ErrUnauthorized
		}
		return 0, fmt.Errorf("devclient: dial: %w", err)
	}
	connected := time.Now()
	stop := context.AfterFunc(ctx, func() {
		c.wmu.Lock()
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		c.wmu.Unlock()
		_ = ws.Close()
	})
	defer stop()
	c.mu.Lock()
	c.ws = ws
	resend := make([][]byte, 0, len(c.pending))
	for _, id := range c.order {
		if p, ok := c.pending[id]; ok {
			p.sentAt = time.Now()
			resend = append(resend, p.raw)
		}
	}
	c.mu.Unlock()
	if c.cfg.OnState != nil {
		c.cfg.OnState(true, nil)
	}
	for _, raw := range resend {
		c.write(ws, raw)
	}
	defer func() {
		c.mu.Lock()
		c.ws = nil
		c.mu.Unlock()
		_ = ws.Close()
	}()
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			return time.Since(connected), err
		}
		c.handle(ws, msg)
	}
}

func (c *Client) handle(ws *websocket.Conn, msg []byte) {
	var head struct {
		Type string   `json:"type"`
		IDs  []string `json:"ids"`
	}
	if json.Unmarshal(msg, &head) != nil {
		return
	}
	switch head.Type {
	case protocol.TypeAck:
		now := time.Now()
		c.mu.Lock()
		for _, id := range head.IDs {
			if p, ok := c.pending[id]; ok {
				delete(c.pending, id)
				if c.cfg.OnAck != nil {
					c.cfg.OnAck(id, now.Sub(p.sentAt))
				}
			}
		}
		c.compact()
		c.mu.Unlock()
	case protocol.TypeError:
		var e protocol.ErrorFrame
		_ = json.Unmarshal(msg, &e)
		if e.Code == protocol.CodeUnavailable || e.Code == protocol.CodeRateLimited {
			c.mu.Lock()
			p := c.pending[e.ID]
			c.mu.Unlock()
			if p != nil {
				time.AfterFunc(c.cfg.RetryAfter, func() {
					c.mu.Lock()
					cur := c.ws
					_, still := c.pending[e.ID]
					if still {
						p.sentAt = time.Now()
					}
					c.mu.Unlock()
					if still && cur == ws {
						c.write(ws, p.raw)
					}
				})
			}
			return
		}
		c.mu.Lock()
		delete(c.pending, e.ID)
		c.mu.Unlock()
		if c.cfg.OnError != nil {
			c.cfg.OnError(e)
		}
	case protocol.TypeCommand:
		var cmd protocol.Command
		_ = json.Unmarshal(msg, &cmd)
		res := protocol.CommandResult{ID: cmd.ID, Error: "not supported"}
		if c.cfg.OnCommand != nil {
			res = c.cfg.OnCommand(cmd)
		}
		res.Type, res.ID = protocol.TypeCommandResult, cmd.ID
		b, _ := json.Marshal(res)
		c.write(ws, b)
	}
}

// compact drops acked ids from the send order once it is mostly garbage.
func (c *Client) compact() {
	if len(c.order) < 64 || len(c.order) < 2*len(c.pending) {
		return
	}
	kept := c.order[:0]
	for _, id := range c.order {
		if _, ok := c.pending[id]; ok {
			kept = append(kept, id)
		}
	}
	c.order = kept
}

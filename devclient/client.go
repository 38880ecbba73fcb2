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

// Config configures a client. Only URL and Token are required; every other
// zero field takes the default its comment names.
type Config struct {
	// URL of the gateway's device socket, e.g. ws://host:8080/ws/device
	// (wss:// behind TLS).
	URL string
	// Token is the device token (devtrack device add); it names the device.
	Token string
	// OnAck, if set, is called for every acked id with the time since the
	// frame was last sent.
	OnAck func(id string, latency time.Duration)
	// OnError, if set, is called for each frame refused for good
	// (CodeInvalidFrame and the like); the frame is dropped. Frames refused as
	// CodeUnavailable or CodeRateLimited are resent instead.
	OnError func(e FrameError)
	// OnCommand answers downlink commands; the client sends the result with
	// the command's id. If nil, every command is answered OK false, "not
	// supported".
	OnCommand func(c Command) CommandResult
	// OnState, if set, is told when the client connects (true, nil) and when
	// it loses the connection (false, and why).
	OnState func(connected bool, err error)
	// MinBackoff and MaxBackoff bound the wait before a reconnect. Defaults
	// 200 ms and 10 s.
	MinBackoff, MaxBackoff time.Duration
	// RetryAfter is the wait before resending a frame refused as unavailable
	// or rate_limited. Default 500 ms.
	RetryAfter time.Duration
	// MaxFrameBytes bounds the JSON of one frame: Send refuses a larger one
	// with ErrFrameTooLarge, since the gateway would refuse it without its id
	// and it would stay pending for ever. Set it to the gateway's --max-frame.
	// Default 64 KiB, the gateway's default.
	MaxFrameBytes int
	// Dialer is the WebSocket dialer (TLS settings, proxy, handshake
	// timeout). Default websocket.DefaultDialer.
	Dialer *websocket.Dialer
}

// ErrUnauthorized is returned by Run when the gateway refuses the token
// (missing, wrong or revoked).
var ErrUnauthorized = errors.New("devclient: token refused (401)")

// ErrFrameTooLarge is returned by Send for a frame over Config.MaxFrameBytes.
var ErrFrameTooLarge = errors.New("devclient: frame too large")

type pending struct {
	raw    []byte
	sentAt time.Time
}

// Client is one device's connection to a gateway. Its methods may be called
// from any goroutine.
type Client struct {
	cfg Config
	// Assigned ids are idPrefix and a sequence number. The prefix is random
	// per Client, so that a restarted program does not reuse the ids of the
	// last run, which the gateway would take for resends and drop.
	idPrefix string
	seq      atomic.Uint64

	mu      sync.Mutex
	ws      *websocket.Conn // nil while disconnected
	pending map[string]*pending
	order   []string // ids in send order, for resending in order
	wmu     sync.Mutex
}

// New returns a client with cfg's defaults filled in; call Run to connect.
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
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = protocol.DefaultMaxFrameBytes
	}
	if cfg.Dialer == nil {
		cfg.Dialer = websocket.DefaultDialer
	}
	return &Client{cfg: cfg, idPrefix: "f-" + strconv.FormatUint(rand.Uint64(), 36) + "-", pending: map[string]*pending{}}
}

// Pending is the number of frames sent and not yet acked or refused.
func (c *Client) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Send queues a frame and writes it if connected; it stays pending, and is
// resent after every reconnect, until it is acked or refused for good. It
// returns the frame's id. It does not wait for the ack, but it may wait for
// the socket (up to 10 s on a stalled connection). An error means the frame
// was not queued: it does not encode as JSON, or it is ErrFrameTooLarge.
//
// Sending a frame again with the id of a pending one replaces it.
func (c *Client) Send(f Frame) (string, error) {
	if f.ID == "" {
		f.ID = c.idPrefix + strconv.FormatUint(c.seq.Add(1), 36)
	}
	if f.TS == 0 {
		f.TS = time.Now().UnixMilli()
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return "", fmt.Errorf("devclient: encode frame: %w", err)
	}
	if len(raw) > c.cfg.MaxFrameBytes {
		return "", fmt.Errorf("%w: %d bytes, the limit is %d", ErrFrameTooLarge, len(raw), c.cfg.MaxFrameBytes)
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

// Run connects and keeps the connection, reconnecting with backoff, until
// ctx ends; then it closes the socket normally and returns nil. It returns
// ErrUnauthorized at once if the gateway refuses the token. Run once at a
// time; the callbacks are called from its goroutine.
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
		type acked struct {
			id      string
			latency time.Duration
		}
		var done []acked // told to OnAck once the lock is released, so that it may call Send
		c.mu.Lock()
		for _, id := range head.IDs {
			if p, ok := c.pending[id]; ok {
				delete(c.pending, id)
				done = append(done, acked{id, now.Sub(p.sentAt)})
			}
		}
		c.compact()
		c.mu.Unlock()
		if c.cfg.OnAck != nil {
			for _, a := range done {
				c.cfg.OnAck(a.id, a.latency)
			}
		}
	case protocol.TypeError:
		var wire protocol.ErrorFrame
		_ = json.Unmarshal(msg, &wire)
		e := FrameError{ID: wire.ID, Code: wire.Code, Message: wire.Message}
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
		res := CommandResult{Error: "not supported"}
		if c.cfg.OnCommand != nil {
			res = c.cfg.OnCommand(Command{ID: cmd.ID, Name: cmd.Name, Args: cmd.Args})
		}
		wire := protocol.CommandResult{Type: protocol.TypeCommandResult, ID: cmd.ID, OK: res.OK, Data: res.Data, Error: res.Error}
		b, err := json.Marshal(wire)
		if err != nil { // Data is not JSON: say so rather than send nothing
			wire.OK, wire.Data, wire.Error = false, nil, "devclient: the device's result data is not valid JSON"
			b, _ = json.Marshal(wire)
		}
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

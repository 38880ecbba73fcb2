package bench

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// viewers are n /ws/live sockets of the admin, viewer i subscribed at the
// handshake to device(i). Each records the publish-to-receive latency of
// live messages whose id is "t<unix ns of the publish>".
type viewers struct {
	conns     []*websocket.Conn
	snapshots atomic.Int64 // viewers that got their snapshot
	received  atomic.Int64
	mu        sync.Mutex
	lat       []time.Duration
	record    atomic.Bool
	wg        sync.WaitGroup
}

// dialViewers opens n viewers concurrently (at most 500 handshakes at a
// time) and returns once every one has its snapshot.
func dialViewers(ctx context.Context, g *Gateway, tok string, n int, device func(i int) string) (*viewers, error) {
	v := &viewers{conns: make([]*websocket.Conn, n)}
	base := strings.Replace(g.Base, "http://", "ws://", 1) + "/ws/live"
	dialer := &websocket.Dialer{HandshakeTimeout: 30 * time.Second}
	sem := make(chan struct{}, 500)
	var dialWG sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	for i := range n {
		dialWG.Add(1)
		sem <- struct{}{}
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			u := base + "?subscribe=" + url.QueryEscape(device(i))
			h := http.Header{"Authorization": {"Bearer " + tok}}
			c, resp, err := dialer.DialContext(ctx, u, h)
			if err != nil {
				if resp != nil {
					err = fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
				}
				errMu.Lock()
				firstErr = cmpErr(firstErr, fmt.Errorf("dial viewer %d: %w", i, err))
				errMu.Unlock()
				return
			}
			v.conns[i] = c
			v.wg.Add(1)
			go v.read(c)
		}()
	}
	dialWG.Wait()
	if firstErr != nil {
		v.Close()
		return nil, firstErr
	}
	if err := Poll(ctx, 120*time.Second, func() bool { return v.snapshots.Load() >= int64(n) }); err != nil {
		v.Close()
		return nil, fmt.Errorf("snapshots: %w (%d of %d)", err, v.snapshots.Load(), n)
	}
	return v, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

var idMark = []byte(`"id":"t`)

func (v *viewers) read(c *websocket.Conn) {
	defer v.wg.Done()
	for {
		_, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		// A message may hold several newline-separated JSON messages if the
		// gateway merges them; count each.
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			i := bytes.Index(line, idMark)
			if i < 0 {
				// The snapshot is encoded from a map: "type" comes last.
				if bytes.Contains(line, []byte(`"type":"snapshot"`)) {
					v.snapshots.Add(1)
				}
				continue
			}
			rest := line[i+len(idMark):]
			j := bytes.IndexByte(rest, '"')
			if j < 0 {
				continue
			}
			sent, err := strconv.ParseInt(string(rest[:j]), 10, 64)
			if err != nil {
				continue
			}
			if v.record.Load() {
				v.received.Add(1)
				v.mu.Lock()
				v.lat = append(v.lat, time.Duration(now-sent))
				v.mu.Unlock()
			}
		}
	}
}

// Close closes every socket and waits for the readers.
func (v *viewers) Close() {
	for _, c := range v.conns {
		if c != nil {
			c.Close()
		}
	}
	v.wg.Wait()
}

// publishLive publishes rate messages per second for d on the live channels
// of device(k) for the k-th message, as a worker does (PUBLISH of viewer
// protocol JSON), pipelined per millisecond tick. It returns how many it
// published.
func (e *Env) publishLive(ctx context.Context, rate float64, d time.Duration, device func(k int) string) (int, error) {
	start := time.Now()
	k := 0
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		el := time.Since(start)
		if el >= d {
			return k, nil
		}
		due := int(rate * el.Seconds())
		if due > k {
			cmds := make([]rueidisCmd, 0, due-k)
			for ; k < due; k++ {
				dev := device(k)
				now := time.Now()
				msg := `{"type":"location","device":"` + dev + `","id":"t` + strconv.FormatInt(now.UnixNano(), 10) +
					`","ts":` + strconv.FormatInt(now.UnixMilli(), 10) + `,"received_at":` + strconv.FormatInt(now.UnixMilli(), 10) +
					`,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5}}`
				cmds = append(cmds, e.RDB.B().Publish().Channel(e.Keys.LiveChannel(dev)).Message(msg).Build())
			}
			for _, r := range e.RDB.DoMulti(ctx, cmds...) {
				if err := r.Error(); err != nil {
					return k, fmt.Errorf("publish live: %w", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return k, ctx.Err()
		case <-t.C:
		}
	}
}

package wsgateway

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The viewer's writer. A viewer has no writer goroutine while it is idle:
// whatever queues something for it (a live message, a control message, the
// ping timer, a ping to answer, the close) starts one if none runs, and that
// goroutine writes until the queue is empty and ends. Each round takes
// everything queued and writes it as consecutive WebSocket frames, one
// message per frame as before, in one write(2) of up to writeChunk bytes:
// a fan-out of a busy device costs a few writes per viewer instead of one
// per message. The writer is the only one writing data frames; it writes
// its frames itself (server frames are unmasked and uncompressed, the
// upgrader negotiates no extension), and answers pings itself so that
// gorilla never writes behind its back during a round.

// writeChunk is the most bytes one write(2) of a round carries; a larger
// backlog is written in several.
const writeChunk = 64 << 10

// frameBufs holds the writers' frame buffers between rounds: an idle viewer
// holds none.
var frameBufs = sync.Pool{New: func() any { b := make([]byte, 0, writeChunk+16); return &b }}

// gorillaWriteBufs keeps gorilla from allocating a write buffer per
// connection: it would only use one for NextWriter and WriteMessage, which
// the viewer no longer calls.
var gorillaWriteBufs = &sync.Pool{}

// queueLocked adds b to the queue and makes sure a writer runs. v.mu held.
func (v *viewer) queueLocked(b []byte) {
	v.queue = append(v.queue, b)
	v.wakeLocked()
}

// wakeLocked starts the writer unless one runs or the socket is not
// upgraded yet (start wakes it then). v.mu held.
func (v *viewer) wakeLocked() {
	if v.writing || v.ws == nil {
		return
	}
	v.writing = true
	v.writers.Add(1)
	go v.writeLoop()
}

// pingTick is the ping timer's: ask the writer for a ping.
func (v *viewer) pingTick() {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return
	}
	v.pingDue = true
	v.wakeLocked()
	v.ping.Reset(v.g.cfg.PingPeriod)
}

// answerPing is the socket's ping handler (run by the reader): the writer
// sends the pong.
func (v *viewer) answerPing(data string) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if !v.closed {
		v.pong = append(v.pong[:0], data...)
		v.pongDue = true
		v.wakeLocked()
	}
	return nil
}

// writeLoop writes rounds until nothing is queued, or ends the socket once
// the viewer is closed: the close frame (if any), then the socket.
func (v *viewer) writeLoop() {
	defer v.writers.Done()
	bufp := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(bufp)
	for {
		v.mu.Lock()
		if v.closed {
			// writing stays true: no writer starts after this one.
			v.mu.Unlock()
			v.finish()
			return
		}
		if len(v.queue) == 0 && len(v.latest) == 0 && !v.pingDue && !v.pongDue {
			v.writing = false
			if cap(v.queue) > keepQueue || cap(v.spare) > keepQueue {
				v.queue, v.spare = nil, nil // a burst's arrays are not kept while idle
			}
			v.mu.Unlock()
			return
		}
		msgs := v.queue
		v.queue = v.spare[:0]
		latest := v.latest
		v.latest = nil
		ping, pong := v.pingDue, v.pongDue
		v.pingDue, v.pongDue = false, false
		buf := (*bufp)[:0]
		if pong {
			buf = appendFrame(buf, websocket.PongMessage, v.pong)
		}
		v.mu.Unlock()
		if ping {
			buf = appendFrame(buf, websocket.PingMessage, nil)
		}
		for _, b := range latest {
			msgs = append(msgs, b)
		}
		ok := v.writeFrames(bufp, buf, msgs)
		clear(msgs)
		v.mu.Lock()
		if cap(msgs) <= 2*viewerQueue {
			v.spare = msgs[:0] // the queue and spare take turns
		}
		v.mu.Unlock()
		if !ok {
			v.close() // a failed write ends the viewer too
		}
	}
}

// writeFrames writes buf (control frames already encoded) and the messages
// as text frames, in writes of up to writeChunk bytes, each under WriteWait.
// The pending bytes of every message are released.
func (v *viewer) writeFrames(bufp *[]byte, buf []byte, msgs [][]byte) bool {
	ok := true
	flush := func() {
		if len(buf) == 0 || !ok {
			return
		}
		select {
		case <-v.done:
			ok = false // closeWith's deadline (now) may be set: write nothing
			return
		default:
		}
		v.refreshWriteDeadline()
		if _, err := v.ws.NetConn().Write(buf); err != nil {
			ok = false
		}
		buf = buf[:0]
	}
	for _, m := range msgs {
		if len(buf) > 0 && len(buf)+len(m)+14 > writeChunk {
			flush()
		}
		if ok {
			if len(m)+14 > cap(buf) {
				flush()
				buf = appendFrame(buf[:0:0], websocket.TextMessage, m) // an outsize message: its own buffer
				flush()
				buf = (*bufp)[:0]
			} else {
				buf = appendFrame(buf, websocket.TextMessage, m)
			}
		}
		v.pending.Add(-int64(len(m)))
	}
	flush()
	return ok
}

// refreshWriteDeadline gives the next write WriteWait at most and 3/4 of it
// at least: the deadline is moved only once a quarter of it has passed.
// Setting it before every write took 11% of the gateway's CPU in the
// fan-out scenario (a poller lock and timer update per write). A deadline
// set by closeWith (now, for a slow consumer) is never pushed back: the
// writer checks done first, and closeWith sets it after closing done.
func (v *viewer) refreshWriteDeadline() {
	now := time.Now()
	if v.writeDeadline.Sub(now) >= v.g.cfg.WriteWait*3/4 {
		return
	}
	v.writeDeadline = now.Add(v.g.cfg.WriteWait)
	_ = v.ws.NetConn().SetWriteDeadline(v.writeDeadline)
}

// appendFrame appends one final, unmasked frame of the given opcode.
func appendFrame(buf []byte, opcode int, payload []byte) []byte {
	buf = append(buf, 0x80|byte(opcode))
	switch n := len(payload); {
	case n < 126:
		buf = append(buf, byte(n))
	case n <= 0xffff:
		buf = append(buf, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}

// finish sends the close frame of the viewer's reason, if any, and closes
// the socket, which ends the reader.
func (v *viewer) finish() {
	if v.reason.code != 0 {
		_ = v.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(v.reason.code, v.reason.text),
			time.Now().Add(time.Second))
	}
	_ = v.ws.Close()
	v.mu.Lock()
	n := 0
	for _, b := range v.queue {
		n += len(b)
	}
	for _, b := range v.latest {
		n += len(b)
	}
	v.queue, v.latest = nil, nil
	v.mu.Unlock()
	v.pending.Add(-int64(n))
}

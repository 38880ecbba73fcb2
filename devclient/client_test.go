package devclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/gorilla/websocket"
)

// fakeGateway is a scripted device endpoint: each connection is handed to
// the next handler in turn. The real gateway is exercised through the
// client by devtrack sim's end-to-end tests; this one lets a test decide
// exactly which frames are acked before the connection drops.
type fakeGateway struct {
	t        *testing.T
	mu       sync.Mutex
	handlers []func(ws *websocket.Conn)
	conns    int
	srv      *httptest.Server
}

func newFakeGateway(t *testing.T, handlers ...func(ws *websocket.Conn)) *fakeGateway {
	f := &fakeGateway{t: t, handlers: handlers}
	up := websocket.Upgrader{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		f.mu.Lock()
		n := f.conns
		f.conns++
		f.mu.Unlock()
		if n >= len(f.handlers) {
			http.Error(w, "no more connections scripted", http.StatusServiceUnavailable)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		f.handlers[n](ws)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGateway) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") }

func readFrame(t *testing.T, ws *websocket.Conn) devclient.Frame {
	t.Helper()
	var fr devclient.Frame
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := ws.ReadJSON(&fr); err != nil {
		t.Errorf("read frame: %v", err)
	}
	return fr
}

func ack(ws *websocket.Conn, ids ...string) {
	_ = ws.WriteJSON(map[string]any{"type": protocol.TypeAck, "ids": ids})
}

func run(t *testing.T, c *devclient.Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// Frames not acked when the connection drops are resent after the
// reconnect, with the same ids and in order; acked ones are not.
func TestUnackedFramesAreResentWithTheSameIDs(t *testing.T) {
	firstIDs := make(chan []string, 1)
	secondIDs := make(chan []string, 1)
	gw := newFakeGateway(t,
		func(ws *websocket.Conn) {
			var ids []string
			for range 3 {
				ids = append(ids, readFrame(t, ws).ID)
			}
			ack(ws, ids[0])
			time.Sleep(50 * time.Millisecond) // let the ack arrive before the drop
			firstIDs <- ids
		},
		func(ws *websocket.Conn) {
			var ids []string
			for range 2 {
				ids = append(ids, readFrame(t, ws).ID)
			}
			ack(ws, ids...)
			secondIDs <- ids
			_, _, _ = ws.ReadMessage() // hold the connection until the client leaves
		})
	var mu sync.Mutex
	acked := map[string]int{}
	c := devclient.New(devclient.Config{URL: gw.url(), Token: "good", MinBackoff: 10 * time.Millisecond,
		OnAck: func(id string, _ time.Duration) { mu.Lock(); acked[id]++; mu.Unlock() }})
	run(t, c)
	for i := range 3 {
		if _, err := c.Send(devclient.Frame{Type: devclient.TypeLocation, Data: devclient.Location{Lat: float64(i), Lng: 1}}); err != nil {
			t.Fatal(err)
		}
	}
	first := <-firstIDs
	var second []string
	select {
	case second = <-secondIDs:
	case <-time.After(10 * time.Second):
		t.Fatal("the client did not reconnect and resend")
	}
	if len(second) != 2 || second[0] != first[1] || second[1] != first[2] {
		t.Fatalf("resent %v after %v with %s acked; want %v", second, first, first[0], first[1:])
	}
	testutil.CheckFor(t, 5*time.Second, "nothing pending", func() bool { return c.Pending() == 0 })
	mu.Lock()
	defer mu.Unlock()
	for _, id := range first {
		if acked[id] != 1 {
			t.Errorf("OnAck for %s called %d times, want 1", id, acked[id])
		}
	}
}

// A frame refused as unavailable is resent with its id; one refused as
// invalid is reported and dropped.
func TestUnavailableIsRetriedInvalidIsReported(t *testing.T) {
	result := make(chan []string, 1)
	gw := newFakeGateway(t, func(ws *websocket.Conn) {
		a, b := readFrame(t, ws), readFrame(t, ws)
		_ = ws.WriteJSON(protocol.ErrorFrame{Type: protocol.TypeError, ID: a.ID, Code: protocol.CodeUnavailable, Message: "redis down"})
		_ = ws.WriteJSON(protocol.ErrorFrame{Type: protocol.TypeError, ID: b.ID, Code: protocol.CodeInvalidFrame, Message: "lat out of range"})
		again := readFrame(t, ws)
		ack(ws, again.ID)
		result <- []string{a.ID, b.ID, again.ID}
		_, _, _ = ws.ReadMessage()
	})
	errs := make(chan devclient.FrameError, 4)
	c := devclient.New(devclient.Config{URL: gw.url(), Token: "good", RetryAfter: 20 * time.Millisecond,
		OnError: func(e devclient.FrameError) { errs <- e }})
	run(t, c)
	_, _ = c.Send(devclient.Frame{Type: devclient.TypeLocation, Data: devclient.Location{Lat: 1, Lng: 1}})
	_, _ = c.Send(devclient.Frame{Type: devclient.TypeLocation, Data: devclient.Location{Lat: 100, Lng: 1}})
	ids := <-result
	if ids[2] != ids[0] {
		t.Errorf("after unavailable the client sent %s, want %s again", ids[2], ids[0])
	}
	select {
	case e := <-errs:
		if e.ID != ids[1] || e.Code != devclient.CodeInvalidFrame || e.Message != "lat out of range" {
			t.Errorf("OnError got %+v, want invalid_frame for %s", e, ids[1])
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnError not called for the invalid frame")
	}
	testutil.CheckFor(t, 5*time.Second, "nothing pending", func() bool { return c.Pending() == 0 })
}

// A refused token ends Run with ErrUnauthorized instead of retrying forever.
func TestRefusedTokenStopsRun(t *testing.T) {
	gw := newFakeGateway(t)
	c := devclient.New(devclient.Config{URL: gw.url(), Token: "bad"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Run(ctx); !errors.Is(err, devclient.ErrUnauthorized) {
		t.Fatalf("Run = %v, want ErrUnauthorized", err)
	}
}

// Commands are answered through OnCommand, with the command's id.
func TestCommandsAreAnswered(t *testing.T) {
	answer := make(chan protocol.CommandResult, 1)
	gw := newFakeGateway(t, func(ws *websocket.Conn) {
		_ = ws.WriteJSON(protocol.Command{Type: protocol.TypeCommand, ID: "c-1", Name: "ping", Args: json.RawMessage(`{"n":1}`)})
		var res protocol.CommandResult
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		if err := ws.ReadJSON(&res); err != nil {
			t.Errorf("read result: %v", err)
		}
		answer <- res
		_, _, _ = ws.ReadMessage()
	})
	c := devclient.New(devclient.Config{URL: gw.url(), Token: "good", OnCommand: func(cmd devclient.Command) devclient.CommandResult {
		return devclient.CommandResult{OK: cmd.Name == "ping" && string(cmd.Args) == `{"n":1}`, Data: json.RawMessage(`{"pong":true}`)}
	}})
	run(t, c)
	res := <-answer
	if res.Type != protocol.TypeCommandResult || res.ID != "c-1" || !res.OK || string(res.Data) != `{"pong":true}` {
		t.Fatalf("command result %+v", res)
	}
}

// A command without OnCommand, or whose result data is not JSON, is still
// answered, with ok:false and why.
func TestCommandsAreAnsweredWhenTheyCannotBeHandled(t *testing.T) {
	for _, tc := range []struct {
		name      string
		onCommand func(devclient.Command) devclient.CommandResult
		wantError string
	}{
		{"no OnCommand", nil, "not supported"},
		{"data not JSON", func(devclient.Command) devclient.CommandResult {
			return devclient.CommandResult{OK: true, Data: json.RawMessage(`{"half":`)}
		}, "devclient: the device's result data is not valid JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			answer := make(chan protocol.CommandResult, 1)
			gw := newFakeGateway(t, func(ws *websocket.Conn) {
				_ = ws.WriteJSON(protocol.Command{Type: protocol.TypeCommand, ID: "c-2", Name: "reboot"})
				var res protocol.CommandResult
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				if err := ws.ReadJSON(&res); err != nil {
					t.Errorf("read result: %v", err)
				}
				answer <- res
				_, _, _ = ws.ReadMessage()
			})
			run(t, devclient.New(devclient.Config{URL: gw.url(), Token: "good", OnCommand: tc.onCommand}))
			want := protocol.CommandResult{Type: protocol.TypeCommandResult, ID: "c-2", Error: tc.wantError}
			if res := <-answer; res.Type != want.Type || res.ID != want.ID || res.OK || res.Data != nil || res.Error != want.Error {
				t.Fatalf("command result %+v, want %+v", res, want)
			}
		})
	}
}

// Callbacks may call the client: OnAck runs outside the client's lock.
func TestOnAckMayCallTheClient(t *testing.T) {
	gw := newFakeGateway(t, func(ws *websocket.Conn) {
		ack(ws, readFrame(t, ws).ID)
		ack(ws, readFrame(t, ws).ID)
		_, _, _ = ws.ReadMessage()
	})
	var c *devclient.Client
	second := make(chan string, 1)
	c = devclient.New(devclient.Config{URL: gw.url(), Token: "good",
		OnAck: func(id string, _ time.Duration) {
			if c.Pending() == 0 && id != "second" {
				_, _ = c.Send(devclient.Frame{Type: devclient.TypeLog, ID: "second", Data: devclient.Log{Level: "info", Message: "after the first ack"}})
			}
			if id == "second" {
				second <- id
			}
		}})
	run(t, c)
	_, _ = c.Send(devclient.Frame{Type: devclient.TypeLog, Data: devclient.Log{Level: "info", Message: "first"}})
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		t.Fatal("the frame sent from OnAck was not acked (OnAck blocked the client?)")
	}
}

// A frame the gateway would refuse without its id, so that it would stay
// pending for ever, is refused by Send.
func TestSendRefusesFramesOverMaxFrameBytes(t *testing.T) {
	c := devclient.New(devclient.Config{URL: "ws://127.0.0.1:1/ws/device", Token: "good", MaxFrameBytes: 200})
	_, err := c.Send(devclient.Frame{Type: devclient.TypeLog, Data: devclient.Log{Level: "info", Message: strings.Repeat("x", 200)}})
	if !errors.Is(err, devclient.ErrFrameTooLarge) || c.Pending() != 0 {
		t.Fatalf("Send = %v with %d pending, want ErrFrameTooLarge and nothing pending", err, c.Pending())
	}
	if _, err := c.Send(devclient.Frame{Type: devclient.TypeLog, Data: devclient.Log{Level: "info", Message: "short"}}); err != nil {
		t.Fatalf("Send of a short frame: %v", err)
	}
}

// Assigned ids are not reused by another client, such as the same program
// after a restart: the gateway would drop the new frames as resends.
func TestAssignedIDsDifferBetweenClients(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		c := devclient.New(devclient.Config{URL: "ws://127.0.0.1:1/ws/device", Token: "good"})
		for range 3 {
			id, err := c.Send(devclient.Frame{Type: devclient.TypeLocation, Data: devclient.Location{Lat: 1, Lng: 2}})
			if err != nil {
				t.Fatal(err)
			}
			if seen[id] || len(id) > protocol.DefaultMaxIDLen {
				t.Fatalf("assigned id %q: seen before %v, %d bytes", id, seen[id], len(id))
			}
			seen[id] = true
		}
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/gorilla/websocket"
)

// syncBuffer is the program's stdout, written by the client's goroutine
// and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The example against a stand-in gateway: it sends its location and log,
// answers ping, and exits 0 when its context ends (as on SIGINT). The real
// gateway is driven by devclient in cmd/devtrack's end-to-end tests.
func TestExampleSendsAnswersAndStops(t *testing.T) {
	type frame struct {
		Type string          `json:"type"`
		ID   string          `json:"id"`
		OK   bool            `json:"ok"`
		Data json.RawMessage `json:"data"`
	}
	got := make(chan []frame, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		var frames []frame
		read := func() frame {
			var f frame
			if err := ws.ReadJSON(&f); err != nil {
				t.Errorf("read: %v", err)
			}
			frames = append(frames, f)
			return f
		}
		loc, lg := read(), read()
		_ = ws.WriteJSON(map[string]any{"type": "ack", "ids": []string{loc.ID, lg.ID}})
		_ = ws.WriteJSON(map[string]any{"type": "command", "id": "c-1", "name": "ping"})
		read()
		got <- frames
		_, _, _ = ws.ReadMessage() // until the example leaves
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"-gateway", "ws" + strings.TrimPrefix(srv.URL, "http"), "-token", "tok"}, &stdout, &stderr)
	}()
	var frames []frame
	select {
	case frames = <-got:
	case <-time.After(15 * time.Second):
		t.Fatalf("the gateway did not get two frames and a command result; stdout:\n%s", stdout.String())
	}
	if frames[0].Type != "location" || frames[1].Type != "log" || frames[2].Type != "command_result" ||
		frames[2].ID != "c-1" || !frames[2].OK || string(frames[2].Data) != `{"pong":true}` {
		t.Errorf("frames %+v", frames)
	}
	testutil.CheckFor(t, 10*time.Second, "two acks printed", func() bool { return strings.Count(stdout.String(), "acked ") == 2 })
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Errorf("exit code %d, want 0; stderr: %s", c, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the example did not stop when its context ended")
	}
	if out := stdout.String(); strings.Count(out, "acked ") != 2 || !strings.Contains(out, "command c-1: ping") || !strings.HasSuffix(out, "stopped\n") {
		t.Errorf("stdout:\n%s", out)
	}
}

func TestExampleNeedsAToken(t *testing.T) {
	t.Setenv("DEVTRACK_DEVICE_TOKEN", "")
	var stdout, stderr syncBuffer
	if code := run(context.Background(), nil, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), "-token") {
		t.Errorf("exit code %d, stderr %q; want 2 and a usage line", code, stderr.String())
	}
}

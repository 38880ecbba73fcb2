package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/gorilla/websocket"
)

// cliStdin runs a devtrack command with stdin to completion.
func (c *cluster) cliStdin(stdin string, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env()
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("devtrack %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// liveFrame is what these tests read of a /ws/live message.
type liveFrame struct {
	Type    string `json:"type"`
	Device  string `json:"device"`
	ID      string `json:"id"`
	Devices []struct {
		Device string `json:"device"`
	} `json:"devices"`
}

// dialLiveAll opens /ws/live subscribed to all the user may see, with hdr
// (a token or a session cookie), and returns it with its snapshot's ids.
func dialLiveAll(t *testing.T, base string, hdr http.Header) (*websocket.Conn, string) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/live?all=1", hdr)
	if err != nil {
		t.Fatalf("dial live: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	m := readFrame(t, ws)
	if m.Type != "snapshot" {
		t.Fatalf("want a snapshot, got %+v", m)
	}
	var ids []string
	for _, d := range m.Devices {
		ids = append(ids, d.Device)
	}
	return ws, strings.Join(ids, ",")
}

func readFrame(t *testing.T, ws *websocket.Conn) liveFrame {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read live: %v", err)
	}
	var m liveFrame
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("live message %s: %v", b, err)
	}
	return m
}

// nextLocationOf reads ws until a location comes and returns "device/id".
func nextLocationOf(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	for {
		if m := readFrame(t, ws); m.Type == "location" {
			return m.Device + "/" + m.ID
		}
	}
}

// closedWith reads ws until it closes and returns the close code; it fails
// if that takes longer than within.
func closedWith(t *testing.T, ws *websocket.Conn, within time.Duration) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := ws.ReadMessage()
		if ce, ok := err.(*websocket.CloseError); ok {
			return ce.Code
		}
		if err != nil {
			t.Fatalf("socket not closed with a close frame within %s: %v", within, err)
		}
	}
}

// devtrack device move and devtrack user passwd, run from a shell beside a
// running gateway, reach its open sockets within its credentials poll: the
// operator's live socket watching the moved device closes (4003) and, open
// again, gets none of its positions; the password change ends the user's
// web session (401 with the old cookie) and closes the live socket opened
// with it (4001), while the API token keeps working.
func TestDeviceMoveAndPasswdReachARunningGateway(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1")
	opTok := lastLine(c.cli("user", "add", "op", "--role", "operator", "--groups", "g1", "--password", "old-password"))
	c.cli("device", "add", "d1", "--group", "g1")
	c.cli("device", "add", "d2", "--group", "g1")
	rdb, err := redisq.Open(context.Background(), c.redis.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	publish := func(device, id string) {
		t.Helper()
		now := time.Now().UnixMilli()
		payload := fmt.Sprintf(`{"type":"location","device":%q,"id":%q,"ts":%d,"received_at":%d,"data":{"lat":1,"lng":1}}`, device, id, now, now)
		if err := rdb.PublishLive(context.Background(), []redisq.LiveMessage{{Device: device, Payload: []byte(payload), IsLocation: true}}); err != nil {
			t.Fatal(err)
		}
	}
	bearer := http.Header{"Authorization": {"Bearer " + opTok}}

	ws, ids := dialLiveAll(t, base, bearer)
	if ids != "d1,d2" {
		t.Fatalf("snapshot before the move: %s, want d1,d2", ids)
	}
	publish("d1", "p1")
	if got := nextLocationOf(t, ws); got != "d1/p1" {
		t.Fatalf("before the move: %s, want d1/p1", got)
	}
	moved := time.Now()
	c.cli("device", "move", "d1", "g2")
	if code := closedWith(t, ws, 3*time.Second); code != 4003 {
		t.Fatalf("operator's socket after device move: closed with %d, want 4003", code)
	}
	t.Logf("closed %s after device move started (the command itself included)", time.Since(moved).Round(time.Millisecond))
	ws, ids = dialLiveAll(t, base, bearer)
	if ids != "d2" {
		t.Fatalf("snapshot after the move: %s, want d2", ids)
	}
	publish("d1", "p2")
	publish("d2", "q2")
	if got := nextLocationOf(t, ws); got != "d2/q2" {
		t.Fatalf("after the move the operator got %s first, want d2/q2 (none of d1)", got)
	}

	// A session as the web UI's page makes it.
	body := strings.NewReader(`{"name":"op","password":"old-password"}`)
	req, _ := http.NewRequest("POST", base+"/api/v1/login", body)
	req.Header.Set("Origin", base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, ck := range resp.Cookies() {
		if ck.Name == "devtrack_session" {
			cookie = ck
		}
	}
	if resp.StatusCode != 200 || cookie == nil {
		t.Fatalf("login: %d, cookie %v", resp.StatusCode, cookie)
	}
	me := func() int {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
		req.Header.Set("Origin", base)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := me(); s != 200 {
		t.Fatalf("session before passwd: %d", s)
	}
	wsSession, _ := dialLiveAll(t, base, http.Header{"Origin": {base}, "Cookie": {cookie.Name + "=" + cookie.Value}})

	if out := c.cliStdin("new-password\n", "user", "passwd", "op"); !strings.Contains(out, "password set") {
		t.Fatalf("user passwd printed %q", out)
	}
	if s := me(); s != 401 {
		t.Errorf("old session after user passwd: %d, want 401", s)
	}
	if code := closedWith(t, wsSession, 3*time.Second); code != 4001 {
		t.Fatalf("session socket after user passwd: closed with %d, want 4001", code)
	}
	if s := apiStatus(t, base, opTok); s != 200 {
		t.Errorf("API token after user passwd: %d, want 200", s)
	}
	publish("d2", "q3")
	if got := nextLocationOf(t, ws); got != "d2/q3" {
		t.Errorf("token socket after user passwd: %s, want d2/q3", got)
	}
}

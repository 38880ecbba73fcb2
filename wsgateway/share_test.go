package wsgateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

type shareCreated struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Device    string    `json:"device"`
	ExpiresAt time.Time `json:"expires_at"`
}

// createShare makes a share of device with ttl seconds and wants 201.
func (e *env) createShare(tok, device string, ttl int) shareCreated {
	e.t.Helper()
	code, body := e.post(tok, "/api/v1/devices/"+device+"/shares", fmt.Sprintf(`{"ttl_s":%d}`, ttl))
	if code != http.StatusCreated {
		e.t.Fatalf("create share of %s: %d %s", device, code, body)
	}
	var s shareCreated
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// secretOf is the secret in a share URL.
func secretOf(t *testing.T, shareURL string) string {
	t.Helper()
	u, err := url.Parse(shareURL)
	if err != nil || !strings.HasPrefix(u.Path, "/s/") {
		t.Fatalf("share url %q: want /s/SECRET", shareURL)
	}
	return strings.TrimPrefix(u.Path, "/s/")
}

func (e *env) dialShare(secret string) (*websocket.Conn, *http.Response, error) {
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/share?s="+url.QueryEscape(secret), nil)
	if err == nil {
		e.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

func TestShareAPI(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "ga")
	e.addDevice("b1", "gb")
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "ga")
	opA2 := e.addUser("anna", storage.RoleOperator, "ga")
	opB := e.addUser("bob", storage.RoleOperator, "gb")

	for _, tc := range []struct {
		name, tok, device, body string
		want                    int
	}{
		{"no token", "", "a1", `{"ttl_s":60}`, 401},
		{"other group", opB, "a1", `{"ttl_s":60}`, 403},
		{"unknown device", admin, "nope", `{"ttl_s":60}`, 404},
		{"ttl missing", opA, "a1", `{}`, 400},
		{"ttl zero", opA, "a1", `{"ttl_s":0}`, 400},
		{"ttl negative", opA, "a1", `{"ttl_s":-5}`, 400},
		{"ttl over 7 days", opA, "a1", `{"ttl_s":604801}`, 400},
		{"ttl fractional", opA, "a1", `{"ttl_s":1.5}`, 400},
		{"not JSON", opA, "a1", `ttl=60`, 400},
		{"ttl 7 days", opA, "a1", `{"ttl_s":604800}`, 201},
		{"admin", admin, "b1", `{"ttl_s":60}`, 201},
	} {
		if code, body := e.post(tc.tok, "/api/v1/devices/"+tc.device+"/shares", tc.body); code != tc.want {
			t.Errorf("create share (%s): %d %s, want %d", tc.name, code, body, tc.want)
		}
	}

	s := e.createShare(opA, "a1", 3600)
	if s.ID == "" || s.Device != "a1" || !strings.HasPrefix(s.URL, e.base+"/s/dts_") {
		t.Fatalf("created share = %+v", s)
	}
	if d := time.Until(s.ExpiresAt); d < 3590*time.Second || d > 3601*time.Second {
		t.Errorf("expires_at %s is not an hour from now", s.ExpiresAt)
	}
	secret := secretOf(t, s.URL)

	// Active shares of a1: the 7-day one and s; visible to its group only.
	code, body := e.get(opA2, "/api/v1/devices/a1/shares")
	if code != 200 || strings.Count(body, `"id"`) != 2 || !strings.Contains(body, s.ID) || strings.Contains(body, secret) {
		t.Errorf("list shares of a1: %d %s", code, body)
	}
	if code, _ := e.get(opB, "/api/v1/devices/a1/shares"); code != 403 {
		t.Errorf("list shares of a1 by another group: %d, want 403", code)
	}

	// The secret is no user token: the query API and /ws/live refuse it.
	for _, p := range []string{"/api/v1/devices", "/api/v1/devices/a1", "/api/v1/devices/a1/locations", "/api/v1/me", "/api/v1/logs"} {
		if code, _ := e.get(secret, p); code != 401 {
			t.Errorf("GET %s with the share secret: %d, want 401", p, code)
		}
		if code, _ := e.get("", p+"?s="+url.QueryEscape(secret)); code != 401 {
			t.Errorf("GET %s?s=secret: %d, want 401", p, code)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live?token="+url.QueryEscape(secret), nil); err == nil || resp.StatusCode != 401 {
		t.Errorf("/ws/live with the share secret: %v, want 401", err)
	}

	// Revoking: not by another group, by an operator of the group (not the
	// creator), then again (204, kept), unknown 404.
	if code, _ := e.do("DELETE", opB, "/api/v1/shares/"+s.ID, ""); code != 403 {
		t.Errorf("revoke by another group: %d, want 403", code)
	}
	if code, _ := e.do("DELETE", "", "/api/v1/shares/"+s.ID, ""); code != 401 {
		t.Errorf("revoke without token: %d, want 401", code)
	}
	if code, body := e.do("DELETE", opA2, "/api/v1/shares/"+s.ID, ""); code != 204 {
		t.Errorf("revoke by an operator of the group: %d %s, want 204", code, body)
	}
	if code, _ := e.do("DELETE", admin, "/api/v1/shares/"+s.ID, ""); code != 204 {
		t.Errorf("revoke again: %d, want 204", code)
	}
	if code, _ := e.do("DELETE", admin, "/api/v1/shares/sh_nope", ""); code != 404 {
		t.Errorf("revoke unknown: %d, want 404", code)
	}
	if code, body := e.get(opA, "/api/v1/devices/a1/shares"); code != 200 || strings.Contains(body, s.ID) {
		t.Errorf("list after revoke still has it: %d %s", code, body)
	}
	if _, resp, err := e.dialShare(secret); err == nil || resp.StatusCode != http.StatusGone {
		t.Errorf("share socket of a revoked share: %v, want 410", err)
	}
	if _, resp, err := e.dialShare("dts_wrong"); err == nil || resp.StatusCode != 401 {
		t.Errorf("share socket with a wrong secret: %v, want 401", err)
	}
}

// readShare reads the next message of a share socket, or its close error.
func readShare(t *testing.T, ws *websocket.Conn, within time.Duration) (liveMsg, error) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	_, b, err := ws.ReadMessage()
	if err != nil {
		return liveMsg{}, err
	}
	var m liveMsg
	_ = json.Unmarshal(b, &m)
	m.Raw = string(b)
	return m, nil
}

// wantShareClosed reads until the socket is closed with 4010, within d,
// and fails on any message but a location of device.
func wantShareClosed(t *testing.T, ws *websocket.Conn, device string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, err := readShare(t, ws, time.Until(deadline))
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4010 {
			return
		}
		if err != nil {
			t.Fatalf("share socket: %v, want closed with 4010 within %s", err, d)
		}
		switch m.Type {
		case "share", "snapshot":
		case "location", "presence":
			if m.Device == device {
				continue
			}
			fallthrough
		default:
			t.Fatalf("share socket sent %s", m.Raw)
		}
	}
}

func TestShareSocketShowsOneDeviceUntilRevoked(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "ga")
	e.addDevice("a2", "ga")
	op := e.addUser("alice", storage.RoleOperator, "ga")
	s := e.createShare(op, "a1", 600)
	ws, _, err := e.dialShare(secretOf(t, s.URL))
	if err != nil {
		t.Fatal(err)
	}
	m, err := readShare(t, ws, 5*time.Second)
	if err != nil || m.Type != "share" || m.Device != "a1" || !strings.Contains(m.Raw, `"tiles_crs":"wgs84"`) {
		t.Fatalf("first message: %+v, %v; want the share of a1 with the tiles' crs", m, err)
	}
	m, err = readShare(t, ws, 5*time.Second)
	if err != nil || m.Type != "snapshot" || !strings.Contains(m.Raw, `"device":"a1"`) || strings.Contains(m.Raw, "a2") {
		t.Fatalf("second message: %s, %v; want a snapshot of a1 only", m.Raw, err)
	}
	// Subscribe requests are not read: asking for a2 changes nothing.
	_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","devices":["a2"],"all":true}`))
	e.subscribed("a1")
	ctx := context.Background()
	now := time.Now().UnixMilli()
	msgs := []redisq.LiveMessage{
		{Device: "a2", Payload: []byte(fmt.Sprintf(`{"type":"location","device":"a2","id":"x","ts":%d,"data":{"lat":2,"lng":2}}`, now)), IsLocation: true},
		{Device: "a1", Payload: []byte(fmt.Sprintf(`{"type":"log","device":"a1","id":"l1","ts":%d,"level":"info","message":"secret log"}`, now))},
		{Device: "a1", Payload: []byte(`{"type":"command_result","device":"a1","id":"c-1","ok":true}`)},
		{Device: "a1", Payload: []byte(fmt.Sprintf(`{"type":"location","device":"a1","id":"m1","ts":%d,"data":{"lat":1,"lng":1}}`, now)), IsLocation: true},
	}
	if err := e.rdb.PublishLive(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.PublishPresence(ctx, "a1", true); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"location", "presence"} {
		m, err := readShare(t, ws, 5*time.Second)
		if err != nil || m.Type != want || m.Device != "a1" {
			t.Fatalf("share socket got %s, %v; want a1's %s (no log, no command result, no a2)", m.Raw, err, want)
		}
	}
	if code, _ := e.do("DELETE", op, "/api/v1/shares/"+s.ID, ""); code != 204 {
		t.Fatalf("revoke: %d", code)
	}
	wantShareClosed(t, ws, "a1", 3*time.Second)
}

// A share socket ends at expiry, and a share revoked through another
// gateway's store (here: the store directly) ends at the next poll.
func TestShareSocketClosedOnExpiryAndOnRevocationElsewhere(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	e.addDevice("a1", "ga")
	admin := e.addUser("root", storage.RoleAdmin)

	short := e.createShare(admin, "a1", 2)
	ws, _, err := e.dialShare(secretOf(t, short.URL))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	wantShareClosed(t, ws, "a1", 4*time.Second)
	if d := time.Since(start); d < time.Second {
		t.Errorf("2 s share closed after %s", d)
	}
	if _, resp, err := e.dialShare(secretOf(t, short.URL)); err == nil || resp.StatusCode != http.StatusGone {
		t.Errorf("expired share: %v, want 410", err)
	}

	long := e.createShare(admin, "a1", 600)
	ws, _, err = e.dialShare(secretOf(t, long.URL))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readShare(t, ws, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.RevokeShare(context.Background(), long.ID); err != nil {
		t.Fatal(err)
	}
	wantShareClosed(t, ws, "a1", 2*time.Second)
}

// The page is public, one page for any secret (it looks nothing up), with
// the UI's security headers, and not cached: its URL is a capability.
func TestSharePage(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	for _, p := range []string{"/s/dts_anything", "/s/dts_other"} {
		resp, err := http.Get(e.base + p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), "/js/share.js") ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
			resp.Header.Get("Cache-Control") != "no-store" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: %d, headers %v", p, resp.StatusCode, resp.Header)
		}
	}
}

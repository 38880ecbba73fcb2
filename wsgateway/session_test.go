package wsgateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"
)

func TestLoginSessionCookieAndOriginCheck(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "group-a")
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret pass"), bcrypt.MinCost)
	if _, err := e.store.AddUser(context.Background(), storage.User{Name: "ops", Role: storage.RoleOperator, Groups: []string{"group-a"}},
		token.Hash(token.New(token.UserPrefix)), hash); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{`{"name":"ops","password":"wrong"}`, `{"name":"nobody","password":"s3cret pass"}`} {
		if status, _ := e.post("", "/api/v1/login", body); status != 401 {
			t.Fatalf("login %s: %d, want 401", body, status)
		}
	}
	resp, err := http.Post(e.base+"/api/v1/login", "application/json", strings.NewReader(`{"name":"ops","password":"s3cret pass"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "devtrack_session" {
			cookie = c
		}
	}
	if resp.StatusCode != 200 || cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode {
		t.Fatalf("login: %d cookie %+v; want an HttpOnly SameSite=Strict session cookie", resp.StatusCode, cookie)
	}
	withCookie := func(method, path, origin string) int {
		req, _ := http.NewRequest(method, e.base+path, nil)
		req.AddCookie(cookie)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := withCookie("GET", "/api/v1/devices", ""); s != 200 {
		t.Fatalf("API with session: %d", s)
	}
	if s := withCookie("POST", "/api/v1/devices/a1/commands", "https://evil.example"); s != 403 {
		t.Fatalf("cross-origin POST with session: %d, want 403", s)
	}
	liveURL := "ws" + strings.TrimPrefix(e.base, "http") + "/ws/live"
	h := http.Header{"Cookie": {cookie.String()}, "Origin": {"https://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial(liveURL, h); err == nil || resp.StatusCode != 403 {
		t.Fatalf("cross-site WebSocket with session: %v, want 403 and no upgrade", err)
	}
	h.Set("Origin", e.base)
	ws, _, err := websocket.DefaultDialer.Dial(liveURL, h)
	if err != nil {
		t.Fatalf("same-origin WebSocket with session: %v", err)
	}
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	if m := readLive(t, ws); m.Type != "snapshot" || !strings.Contains(m.Raw, `"a1"`) {
		t.Fatalf("snapshot over session: %s", m.Raw)
	}
	ws.Close()
	if s := withCookie("POST", "/api/v1/logout", e.base); s != 204 {
		t.Fatalf("logout: %d", s)
	}
	if s := withCookie("GET", "/api/v1/devices", ""); s != 401 {
		t.Fatalf("API after logout: %d, want 401", s)
	}
}

// Guessing passwords is slowed down: after 10 wrong passwords for a name,
// even the right one is refused with 429 for a while; other users can still
// sign in, and successful logins never count.
func TestFailedLoginsAreThrottledPerName(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	hash, _ := bcrypt.GenerateFromPassword([]byte("right"), bcrypt.MinCost)
	for _, name := range []string{"victim", "other"} {
		if _, err := e.store.AddUser(context.Background(), storage.User{Name: name, Role: storage.RoleAdmin},
			token.Hash(token.New(token.UserPrefix)), hash); err != nil {
			t.Fatal(err)
		}
	}
	for range 15 {
		if status, body := e.post("", "/api/v1/login", `{"name":"other","password":"right"}`); status != 200 {
			t.Fatalf("repeated good login: %d %s", status, body)
		}
	}
	for i := range 10 {
		if status, _ := e.post("", "/api/v1/login", `{"name":"victim","password":"guess"}`); status != 401 {
			t.Fatalf("wrong password %d: %d, want 401", i+1, status)
		}
	}
	if status, body := e.post("", "/api/v1/login", `{"name":"victim","password":"right"}`); status != 429 || !strings.Contains(body, "rate_limited") {
		t.Fatalf("11th attempt with the right password: %d %s, want 429 rate_limited", status, body)
	}
	if status, body := e.post("", "/api/v1/login", `{"name":"other","password":"right"}`); status != 200 {
		t.Fatalf("another user after the victim's lockout: %d %s", status, body)
	}
}

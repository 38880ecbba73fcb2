package wsgateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

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
	for _, c := range [][2]string{{"ops", "wrong"}, {"nobody", "s3cret pass"}} {
		if resp, body := e.login(c[0], c[1], nil); resp.StatusCode != 401 {
			t.Fatalf("login %v: %d %s, want 401", c, resp.StatusCode, body)
		}
	}
	resp, body := e.login("ops", "s3cret pass", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
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

// login posts a login as the web UI's page does (Origin of this gateway),
// with extra headers (nil for none); an Origin in hdr replaces the page's.
func (e *env) login(name, password string, hdr http.Header) (*http.Response, string) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	req, _ := http.NewRequest("POST", e.base+"/api/v1/login", bytes.NewReader(body))
	req.Header.Set("Origin", e.base)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func sessionCookieOf(resp *http.Response) *http.Cookie {
	for _, c := range resp.Cookies() {
		if c.Name == "devtrack_session" {
			return c
		}
	}
	return nil
}

func (e *env) addPasswordUser(name, role, password string) {
	e.t.Helper()
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if _, err := e.store.AddUser(context.Background(), storage.User{Name: name, Role: role},
		token.Hash(token.New(token.UserPrefix)), hash); err != nil {
		e.t.Fatal(err)
	}
}

// A stranger guessing a user's password cannot lock the user out: after the
// name's failures run out, each attempt for it waits a bounded time, and
// the right password still signs in; the stranger's own address is refused.
// Successful logins never count.
func TestFailedLoginsSlowANameButNeverLockItsOwnerOut(t *testing.T) {
	proxy := netip.MustParsePrefix("127.0.0.1/32")
	e := newEnv(t, wsgateway.Config{TrustedProxies: []netip.Prefix{proxy}})
	e.addPasswordUser("admin", storage.RoleAdmin, "right")
	e.addPasswordUser("other", storage.RoleAdmin, "right")
	stranger := http.Header{"X-Forwarded-For": {"203.0.113.9"}}
	owner := http.Header{"X-Forwarded-For": {"198.51.100.7"}}
	for range 15 {
		if resp, body := e.login("other", "right", stranger); resp.StatusCode != 200 {
			t.Fatalf("repeated good login: %d %s", resp.StatusCode, body)
		}
	}
	for i := range 10 { // the name's allowance of failures
		if resp, body := e.login("admin", "guess", stranger); resp.StatusCode != 401 {
			t.Fatalf("stranger's guess %d: %d %s, want 401", i+1, resp.StatusCode, body)
		}
	}
	// 50 more at once: each waits the name's delay, and past the address's
	// allowance (50) they are refused.
	statuses := make(chan int, 50)
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(map[string]string{"name": "admin", "password": "guess"})
			req, _ := http.NewRequest("POST", e.base+"/api/v1/login", bytes.NewReader(body))
			req.Header.Set("Origin", e.base)
			req.Header.Set("X-Forwarded-For", stranger.Get("X-Forwarded-For"))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	count := map[int]int{}
	for s := range statuses {
		count[s]++
	}
	if count[401]+count[429] != 50 || count[429] == 0 {
		t.Fatalf("stranger's 50 further guesses got %v, want only 401 and 429, some 429", count)
	}
	start := time.Now()
	resp, body := e.login("admin", "right", owner)
	took := time.Since(start)
	if resp.StatusCode != 200 || sessionCookieOf(resp) == nil {
		t.Fatalf("owner's right password after the stranger's guesses: %d %s, want 200 and a session", resp.StatusCode, body)
	}
	if took > 5*time.Second {
		t.Fatalf("owner's login took %s, want a bounded delay", took)
	}
	if resp, body := e.login("admin", "guess", owner); resp.StatusCode != 401 {
		t.Fatalf("a wrong password for the slowed name: %d %s, want 401", resp.StatusCode, body)
	}
	if resp, body := e.login("other", "right", owner); resp.StatusCode != 200 {
		t.Fatalf("another user after the guesses: %d %s", resp.StatusCode, body)
	}
}

// The session cookie is Secure when the request came over TLS: behind a
// trusted proxy that says so, never on the word of anyone else.
func TestSessionCookieSecureOnlyBehindATrustedProxy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		trusted string
		hdr     http.Header
		secure  bool
	}{
		{"plain http", "", nil, false},
		{"forwarded https, proxy not trusted", "", http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"forwarded https, other proxy trusted", "10.0.0.0/8", http.Header{"X-Forwarded-Proto": {"https"}}, false},
		{"forwarded https from a trusted proxy", "127.0.0.0/8", http.Header{"X-Forwarded-Proto": {"https"}}, true},
		{"forwarded http from a trusted proxy", "127.0.0.1", http.Header{"X-Forwarded-Proto": {"http"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxies, err := wsgateway.ParseTrustedProxies(tc.trusted)
			if err != nil {
				t.Fatal(err)
			}
			e := newEnv(t, wsgateway.Config{TrustedProxies: proxies})
			e.addPasswordUser("ops", storage.RoleOperator, "pw")
			resp, body := e.login("ops", "pw", tc.hdr)
			c := sessionCookieOf(resp)
			if resp.StatusCode != 200 || c == nil {
				t.Fatalf("login: %d %s", resp.StatusCode, body)
			}
			if c.Secure != tc.secure {
				t.Fatalf("cookie Secure = %v, want %v", c.Secure, tc.secure)
			}
		})
	}
}

// Login and logout are refused from a foreign page (login CSRF) and
// without an Origin, like every other cookie write.
func TestLoginAndLogoutCheckTheOrigin(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addPasswordUser("ops", storage.RoleOperator, "pw")
	for _, origin := range []string{"https://evil.example", ""} {
		resp, body := e.login("ops", "pw", http.Header{"Origin": {origin}})
		if resp.StatusCode != 403 || sessionCookieOf(resp) != nil || !strings.Contains(body, "forbidden") {
			t.Fatalf("login with Origin %q: %d %s, want 403 and no cookie", origin, resp.StatusCode, body)
		}
	}
	resp, _ := e.login("ops", "pw", nil)
	c := sessionCookieOf(resp)
	if c == nil {
		t.Fatal("same-origin login set no cookie")
	}
	logout := func(origin string) int {
		req, _ := http.NewRequest("POST", e.base+"/api/v1/logout", nil)
		req.AddCookie(c)
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
	if s := logout("https://evil.example"); s != 403 {
		t.Fatalf("cross-origin logout: %d, want 403", s)
	}
	if s, _ := e.withSession(c, "GET", "/api/v1/me"); s != 200 {
		t.Fatalf("session after a refused logout: %d, want 200", s)
	}
	if s := logout(e.base); s != 204 {
		t.Fatalf("same-origin logout: %d, want 204", s)
	}
	if s, _ := e.withSession(c, "GET", "/api/v1/me"); s != 401 {
		t.Fatalf("session after logout: %d, want 401", s)
	}
}

// withSession makes a same-origin request with the session cookie.
func (e *env) withSession(c *http.Cookie, method, path string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, nil)
	req.AddCookie(c)
	req.Header.Set("Origin", e.base)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

package wsgateway_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
	"golang.org/x/crypto/bcrypt"
)

// Changes made through one gateway (or the CLI) reach the live sockets of
// another through its credentials poll: a moved device, a password change.

// peer starts a second gateway, id, on e's Redis and store, with its own
// Redis client, as another process would be.
func (e *env) peer(id string, cfg wsgateway.Config) *env {
	e.t.Helper()
	p := &env{t: e.t, redis: e.redis, store: e.store, log: e.log}
	var err error
	if p.rdb, err = redisq.Open(context.Background(), e.redis.Addr(), "devtrack"); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.rdb.Close)
	cfg.ID = id
	p.startGateway(cfg)
	return p
}

// addLoginUser creates a user with a password and returns its API token.
func (e *env) addLoginUser(name, role, password string, groups ...string) string {
	e.t.Helper()
	tok := token.New(token.UserPrefix)
	hash, _ := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if _, err := e.store.AddUser(context.Background(), storage.User{Name: name, Role: role, Groups: groups}, token.Hash(tok), hash); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// loggedIn logs in on e and returns the session cookie.
func (e *env) loggedIn(name, password string) *http.Cookie {
	e.t.Helper()
	resp, body := e.login(name, password, nil)
	c := sessionCookieOf(resp)
	if c == nil {
		e.t.Fatalf("login of %s: %d %s", name, resp.StatusCode, body)
	}
	return c
}

// sessionDo makes a same-origin request with the session cookie and a body.
func (e *env) sessionDo(c *http.Cookie, method, path, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
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

// dialLiveSession opens /ws/live with the session cookie, as the web UI's
// page does, subscribed to all the user may see; it returns once the
// snapshot came.
func (e *env) dialLiveSession(c *http.Cookie) *websocket.Conn {
	e.t.Helper()
	h := http.Header{"Origin": {e.base}, "Cookie": {c.Name + "=" + c.Value}}
	ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live?all=1", h)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		e.t.Fatalf("dial live with a session: %v (%d)", err, status)
	}
	e.t.Cleanup(func() { ws.Close() })
	if m := readLive(e.t.(*testing.T), ws); m.Type != "snapshot" {
		e.t.Fatalf("want a snapshot, got %s", m.Raw)
	}
	return ws
}

// nextLocation reads ws until a location comes and returns "device/id".
func nextLocation(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	for {
		if m := readLive(t, ws); m.Type == "location" {
			return m.Device + "/" + m.ID
		}
	}
}

// staysOpen fails if ws gets a message or closes within d.
func staysOpen(t *testing.T, ws *websocket.Conn, d time.Duration, what string) {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(d))
	if _, b, err := ws.ReadMessage(); err == nil || !isTimeout(err) {
		t.Fatalf("%s: got %q, %v; want it open and quiet for %s", what, b, err, d)
	}
}

// A device moved through gateway A's API leaves, within a poll of gateway
// B, the live sockets on B of users who may no longer see it: the
// operator's socket closes with 4003, and the socket it opens again gets
// none of the device's positions. Users who still see it keep theirs.
func TestMovedDeviceLeavesViewersOnAnotherGateway(t *testing.T) {
	a := newEnv(t, wsgateway.Config{RevokePoll: longPoll})
	b := a.peer("gw-b", wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	root := a.addUser("root", storage.RoleAdmin)
	op := a.addUser("op", storage.RoleOperator, "g1")
	both := a.addUser("both", storage.RoleOperator, "g1", "g2")
	a.addDevice("a1", "g1")
	a.addDevice("a2", "g1")

	wsOp, seen := b.subscribedAll(op)
	if strings.Join(seen, ",") != "a1,a2" {
		t.Fatalf("operator's snapshot on B: %v, want a1,a2", seen)
	}
	wsBoth, _ := b.subscribedAll(both)
	wsRoot, _ := b.subscribedAll(root)
	b.publish("a1", "p1", 0)
	for name, ws := range map[string]*websocket.Conn{"op": wsOp, "both": wsBoth, "root": wsRoot} {
		if got := nextLocation(t, ws); got != "a1/p1" {
			t.Fatalf("%s before the move: %s, want a1/p1", name, got)
		}
	}

	if status, body := a.do("PATCH", root, "/api/v1/devices/a1", `{"group":"g2"}`); status != 200 || !strings.Contains(body, `"group":"g2"`) {
		t.Fatalf("move through A: %d %s", status, body)
	}
	moved := time.Now()
	if code := waitClosed(t, wsOp, 2*time.Second); code != 4003 {
		t.Fatalf("operator's socket on B closed with %d, want 4003", code)
	}
	t.Logf("operator's socket on B closed %s after the move", time.Since(moved).Round(time.Millisecond))

	// Reconnected, the operator sees a2 alone: a1's next position does not
	// reach them, a2's does.
	wsOp, seen = b.subscribedAll(op)
	if strings.Join(seen, ",") != "a2" {
		t.Fatalf("operator's snapshot after the move: %v, want a2", seen)
	}
	b.publish("a1", "p2", 0)
	b.publish("a2", "q2", 0)
	if got := nextLocation(t, wsOp); got != "a2/q2" {
		t.Fatalf("operator after the move got %s first, want a2/q2 (none of a1)", got)
	}
	for name, ws := range map[string]*websocket.Conn{"both": wsBoth, "root": wsRoot} {
		if got := nextLocation(t, ws); got != "a1/p2" {
			t.Fatalf("%s (still sees a1) after the move: %s, want a1/p2", name, got)
		}
		if got := nextLocation(t, ws); got != "a2/q2" {
			t.Fatalf("%s after the move: %s, want a2/q2", name, got)
		}
	}
	// The move stays in B's look-back window for a minute: the polls that
	// see it again close nothing more.
	staysOpen(t, wsBoth, time.Second, "socket of a user who sees both groups")
	staysOpen(t, wsOp, 10*time.Millisecond, "operator's new socket")
}

// A password changed through gateway A ends the user's web sessions on
// every gateway: requests with an old cookie get 401 on A and B at once,
// and the live socket opened with it on B closes (4001) within a poll.
// The API token and the sockets opened with it stay; the new password
// logs in, the old one does not.
func TestPasswordChangeEndsSessionsOnEveryGateway(t *testing.T) {
	a := newEnv(t, wsgateway.Config{RevokePoll: longPoll})
	b := a.peer("gw-b", wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	root := a.addUser("root", storage.RoleAdmin)
	opTok := a.addLoginUser("ops", storage.RoleOperator, "old-password", "g1")
	a.addDevice("a1", "g1")

	onB, onA := b.loggedIn("ops", "old-password"), a.loggedIn("ops", "old-password")
	liveSession := b.dialLiveSession(onB)
	liveToken, _ := b.subscribedAll(opTok)
	for _, s := range []struct {
		e *env
		c *http.Cookie
	}{{b, onB}, {a, onA}} {
		if status, body := s.e.withSession(s.c, "GET", "/api/v1/me"); status != 200 {
			t.Fatalf("session before the change: %d %s", status, body)
		}
	}

	if status, body := a.do("PATCH", root, "/api/v1/users/ops", `{"password":"new-password"}`); status != 200 || !strings.Contains(body, `"password_changed_at":`) {
		t.Fatalf("password change through A: %d %s", status, body)
	}
	changed := time.Now()
	for _, s := range []struct {
		name string
		e    *env
		c    *http.Cookie
	}{{"B", b, onB}, {"A", a, onA}} {
		if status, body := s.e.withSession(s.c, "GET", "/api/v1/me"); status != 401 || !strings.Contains(body, "password") {
			t.Errorf("old session on %s right after the change: %d %s, want 401", s.name, status, body)
		}
	}
	if code := waitClosed(t, liveSession, 2*time.Second); code != 4001 {
		t.Fatalf("session socket on B closed with %d, want 4001", code)
	}
	t.Logf("session socket on B closed %s after the change", time.Since(changed).Round(time.Millisecond))

	if status, _ := b.get(opTok, "/api/v1/me"); status != 200 {
		t.Errorf("API token after the change: %d, want 200", status)
	}
	b.publish("a1", "p1", 0)
	if got := nextLocation(t, liveToken); got != "a1/p1" {
		t.Fatalf("token socket after the change: %s, want a1/p1", got)
	}
	staysOpen(t, liveToken, time.Second, "socket opened with the API token")
	if resp, _ := b.login("ops", "old-password", nil); resp.StatusCode != 401 {
		t.Errorf("login with the old password: %d, want 401", resp.StatusCode)
	}
	fresh := b.loggedIn("ops", "new-password")
	if status, body := a.withSession(fresh, "GET", "/api/v1/me"); status != 200 {
		t.Errorf("new session on A: %d %s", status, body)
	}
	b.dialLiveSession(fresh)
}

// An admin who changes their own password from the web UI keeps the
// session they did it with, and its live socket; their other sessions end.
func TestOwnPasswordChangeKeepsThatSession(t *testing.T) {
	a := newEnv(t, wsgateway.Config{RevokePoll: longPoll})
	b := a.peer("gw-b", wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	a.addLoginUser("root", storage.RoleAdmin, "old-password")
	a.addDevice("a1", "g1")
	mine, other := a.loggedIn("root", "old-password"), b.loggedIn("root", "old-password")
	liveMine := b.dialLiveSession(mine) // the page's socket may be served by either gateway
	liveOther := b.dialLiveSession(other)

	if status, body := a.sessionDo(mine, "PATCH", "/api/v1/users/root", `{"password":"new-password"}`); status != 200 {
		t.Fatalf("own password change: %d %s", status, body)
	}
	if status, body := b.withSession(other, "GET", "/api/v1/me"); status != 401 {
		t.Errorf("the other session: %d %s, want 401", status, body)
	}
	if code := waitClosed(t, liveOther, 2*time.Second); code != 4001 {
		t.Fatalf("the other session's socket closed with %d, want 4001", code)
	}
	for name, e := range map[string]*env{"A": a, "B": b} {
		if status, body := e.withSession(mine, "GET", "/api/v1/me"); status != 200 {
			t.Errorf("the session of the change on %s: %d %s, want 200", name, status, body)
		}
	}
	b.publish("a1", "p1", 0)
	if got := nextLocation(t, liveMine); got != "a1/p1" {
		t.Fatalf("the socket of the change's session: %s, want a1/p1", got)
	}
	staysOpen(t, liveMine, time.Second, "socket of the change's session")
}

package wsgateway_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// waitClosed reads until the socket closes and returns the close code.
func waitClosed(t *testing.T, ws *websocket.Conn, within time.Duration) int {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(within))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if errors.As(err, &ce) {
			return ce.Code
		}
		t.Fatalf("socket not closed with a close frame within %s: %v", within, err)
	}
}

// Revoking a user stops its token at once and closes its open live sockets
// within seconds; deleting a user does too. Others are not touched.
func TestRevokedOrDeletedUsersLoseTheirLiveSockets(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	ctx := context.Background()
	alice := e.addUser("alice", storage.RoleAdmin)
	bob := e.addUser("bob", storage.RoleAdmin)
	carol := e.addUser("carol", storage.RoleAdmin)
	wsA, wsB, wsC := e.dialLive(alice), e.dialLive(bob), e.dialLive(carol)
	for _, ws := range []*websocket.Conn{wsA, wsB, wsC} {
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
		if m := readLive(t, ws); m.Type != "snapshot" {
			t.Fatalf("want a snapshot, got %s", m.Raw)
		}
	}
	newTok := token.New(token.UserPrefix)
	if _, err := e.store.RevokeUser(ctx, "alice", token.Hash(newTok)); err != nil {
		t.Fatal(err)
	}
	if status, _ := e.get(alice, "/api/v1/me"); status != 401 {
		t.Fatalf("old token right after revoke: %d, want 401", status)
	}
	if status, _ := e.get(newTok, "/api/v1/me"); status != 200 {
		t.Fatalf("new token: %d, want 200", status)
	}
	if code := waitClosed(t, wsA, 5*time.Second); code != 4001 {
		t.Fatalf("revoked user's socket closed with %d, want 4001", code)
	}
	if err := e.store.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, wsB, 5*time.Second); code != 4001 {
		t.Fatalf("deleted user's socket closed with %d, want 4001", code)
	}
	// carol's socket is still served, and a socket with alice's new token stays.
	wsA2 := e.dialLive(newTok)
	_ = wsA2.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	_ = wsC.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	for _, ws := range []*websocket.Conn{wsA2, wsC} {
		if m := readLive(t, ws); m.Type != "snapshot" {
			t.Fatalf("untouched socket: %s, want a snapshot", m.Raw)
		}
	}
}

// A revoke ends the user's web sessions.
func TestRevokeEndsWebSessions(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addPasswordUser("ops", storage.RoleOperator, "pw")
	resp, body := e.login("ops", "pw", nil)
	c := sessionCookieOf(resp)
	if c == nil {
		t.Fatalf("login: %d %s", resp.StatusCode, body)
	}
	if s, body := e.withSession(c, "GET", "/api/v1/me"); s != 200 {
		t.Fatalf("session before revoke: %d %s", s, body)
	}
	if _, err := e.store.RevokeUser(context.Background(), "ops", token.Hash(token.New(token.UserPrefix))); err != nil {
		t.Fatal(err)
	}
	if s, body := e.withSession(c, "GET", "/api/v1/me"); s != 401 {
		t.Fatalf("session after revoke: %d %s, want 401", s, body)
	}
	resp, _ = e.login("ops", "pw", nil)
	if c := sessionCookieOf(resp); c == nil {
		t.Fatal("no new login after revoke")
	} else if s, body := e.withSession(c, "GET", "/api/v1/me"); s != 200 {
		t.Fatalf("new session after revoke: %d %s", s, body)
	}
}

// Rotating a device's token closes the connection made with the old one
// within seconds and refuses the old token from then on: the poll that
// closes it has evicted the token from the token cache first (which is why
// the old token is not tried before: a cached handshake would replace the
// connection). One made with the new token stays.
func TestRotatedDeviceTokenClosesItsOldConnection(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	old := e.addDevice("d1", "g")
	e.addDevice("d2", "g")
	d := e.mustDial(old)
	newTok := token.New(token.DevicePrefix)
	if _, err := e.store.RotateDeviceToken(context.Background(), "d1", token.Hash(newTok)); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, d.ws, 5*time.Second); code != 4001 {
		t.Fatalf("connection with the old token closed with %d, want 4001", code)
	}
	if _, resp, err := e.dial(old); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("old token after rotation: %v, want 401", err)
	}
	d2 := e.mustDial(newTok)
	// Several polls pass (the rotation stays in the look-back window): the
	// new connection must outlive them.
	_ = d2.ws.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := d2.ws.ReadMessage(); err == nil || !isTimeout(err) {
		t.Fatalf("connection with the new token: %v, want it to stay open", err)
	}
}

func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}

// A device revoked through this gateway while its handshake is under way
// (its token read, its connection not yet registered) is closed once the
// connection opens, not left open until the next revocation poll. Redis is
// frozen to hold the handshake at its link, between the two.
func TestDeviceRevokedDuringItsHandshakeIsClosedAtOnce(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: longPoll, PushTimeout: 5 * time.Second})
	admin := e.addUser("root", storage.RoleAdmin)
	tok := e.addDevice("d1", "g")
	e.redis.Pause()
	type dialed struct {
		ws  *websocket.Conn
		err error
	}
	done := make(chan dialed, 1)
	go func() {
		ws, _, err := e.dial(tok)
		done <- dialed{ws, err}
	}()
	time.Sleep(300 * time.Millisecond) // the token is read; the link waits on Redis. Nothing to poll for.
	if status, body := e.post(admin, "/api/v1/devices/d1/revoke", ``); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	e.redis.Resume()
	d := <-done
	if d.err != nil {
		t.Fatalf("dial: %v; want the handshake that began before the revoke to complete", d.err)
	}
	defer d.ws.Close()
	if code := waitClosed(t, d.ws, time.Second); code != 4001 {
		t.Fatalf("closed with %d, want 4001", code)
	}
	if _, resp, err := e.dial(tok); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("revoked token: %v, want 401", err)
	}
}

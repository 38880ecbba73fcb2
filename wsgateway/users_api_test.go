package wsgateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// longPoll keeps the credentials and revocation polls out of a test: what
// closes a socket within a second is then the API request itself.
const longPoll = time.Minute

type userJSON struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Groups []string `json:"groups"`
	Token  string   `json:"token"`
}

// subscribedAll dials a live socket, subscribes to all it may see and
// returns it with the ids of its snapshot.
func (e *env) subscribedAll(tok string) (*websocket.Conn, []string) {
	e.t.Helper()
	ws := e.dialLive(tok)
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		e.t.Fatalf("read snapshot: %v", err)
	}
	var snap struct {
		Type    string `json:"type"`
		Devices []struct {
			Device string `json:"device"`
		} `json:"devices"`
	}
	if err := json.Unmarshal(b, &snap); err != nil || snap.Type != "snapshot" {
		e.t.Fatalf("want a snapshot, got %s", b)
	}
	var ids []string
	for _, d := range snap.Devices {
		ids = append(ids, d.Device)
	}
	return ws, ids
}

// An admin manages users over the API: creates an operator (token shown
// once, password for the UI), lists, edits groups and password, rotates the
// token and deletes. Each change holds at the next request, and the live
// sockets of this gateway close as the request returns (the polls are a
// minute apart here). Operators and strangers may do none of it.
func TestUsersAPI(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: longPoll})
	admin := e.addUser("root", storage.RoleAdmin)
	e.addDevice("a1", "g1")
	e.addDevice("b1", "g2")

	status, body := e.post(admin, "/api/v1/users", `{"name":"op","role":"operator","groups":["g1"],"password":"courier-pw"}`)
	var op userJSON
	if err := json.Unmarshal([]byte(body), &op); err != nil || status != 201 || op.Name != "op" || op.Role != "operator" ||
		strings.Join(op.Groups, ",") != "g1" || !strings.HasPrefix(op.Token, "dtu_") {
		t.Fatalf("create: %d %s", status, body)
	}
	if status, body := e.get(admin, "/api/v1/users"); status != 200 || !strings.Contains(body, `{"name":"op","role":"operator","groups":["g1"]`) ||
		strings.Contains(body, "dtu_") || !strings.Contains(body, `"name":"root"`) {
		t.Fatalf("list: %d %s", status, body)
	}
	// The operator sees g1's device only, with the token and with a session.
	if status, body := e.get(op.Token, "/api/v1/devices"); status != 200 || !strings.Contains(body, `"a1"`) || strings.Contains(body, `"b1"`) {
		t.Fatalf("operator's devices: %d %s", status, body)
	}
	if status, _ := e.get(op.Token, "/api/v1/devices/b1"); status != 403 {
		t.Fatalf("operator reads g2's device: %d, want 403", status)
	}
	resp, _ := e.login("op", "courier-pw", nil)
	session := sessionCookieOf(resp)
	if session == nil {
		t.Fatalf("login with the password: %d", resp.StatusCode)
	}

	for _, tc := range []struct {
		tok, method, path, body string
		status                  int
	}{
		{admin, "POST", "/api/v1/users", `{"name":"op2","role":"operator","groups":[]}`, 400},
		{admin, "POST", "/api/v1/users", `{"name":"op2","role":"root"}`, 400},
		{admin, "POST", "/api/v1/users", `{"name":"-bad","role":"admin"}`, 400},
		{admin, "POST", "/api/v1/users", `{"name":"op2","role":"admin","password":"short"}`, 400},
		{admin, "POST", "/api/v1/users", `{"name":"op","role":"admin"}`, 409},
		{admin, "PATCH", "/api/v1/users/op", `{"groups":[]}`, 400},
		{admin, "PATCH", "/api/v1/users/op", `{}`, 400},
		{admin, "PATCH", "/api/v1/users/nobody", `{"groups":["g1"]}`, 404},
		{admin, "PATCH", "/api/v1/users/root", `{"role":"operator","groups":["g1"]}`, 409},
		{admin, "DELETE", "/api/v1/users/root", ``, 409},
		{admin, "POST", "/api/v1/users/nobody/token", ``, 404},
		{admin, "DELETE", "/api/v1/users/nobody", ``, 404},
		{op.Token, "GET", "/api/v1/users", ``, 403},
		{op.Token, "POST", "/api/v1/users", `{"name":"x","role":"admin"}`, 403},
		{op.Token, "PATCH", "/api/v1/users/op", `{"groups":["g1","g2"]}`, 403},
		{op.Token, "POST", "/api/v1/users/op/token", ``, 403},
		{"", "GET", "/api/v1/users", ``, 401},
	} {
		if status, body := e.do(tc.method, tc.tok, tc.path, tc.body); status != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}
	if status, body := e.do("PATCH", admin, "/api/v1/users/op", `{"groups":[]}`); !strings.Contains(body, "at least one group") {
		t.Errorf("operator without groups: %d %s; want the reason", status, body)
	}

	// New groups: the next request sees g2 too, and the socket opened with
	// g1 alone is closed (4003) at once, to reconnect with both.
	ws, ids := e.subscribedAll(op.Token)
	if strings.Join(ids, ",") != "a1" {
		t.Fatalf("operator's snapshot: %v, want [a1]", ids)
	}
	if status, body := e.do("PATCH", admin, "/api/v1/users/op", `{"groups":["g1","g2"]}`); status != 200 || !strings.Contains(body, `"groups":["g1","g2"]`) {
		t.Fatalf("patch groups: %d %s", status, body)
	}
	if code := waitClosed(t, ws, time.Second); code != 4003 {
		t.Fatalf("socket after the groups changed: closed with %d, want 4003", code)
	}
	if status, _ := e.get(op.Token, "/api/v1/devices/b1"); status != 200 {
		t.Fatalf("operator reads g2's device after the change: %d, want 200", status)
	}
	if _, ids := e.subscribedAll(op.Token); strings.Join(ids, ",") != "a1,b1" {
		t.Fatalf("snapshot after reconnecting: %v, want [a1 b1]", ids)
	}

	// A new password: the old one no longer signs in; the session stays.
	if status, body := e.do("PATCH", admin, "/api/v1/users/op", `{"password":"another-pw"}`); status != 200 || !strings.Contains(body, `"name":"op"`) {
		t.Fatalf("patch password: %d %s", status, body)
	}
	if resp, _ := e.login("op", "courier-pw", nil); resp.StatusCode != 401 {
		t.Fatalf("login with the old password: %d, want 401", resp.StatusCode)
	}
	if resp, _ := e.login("op", "another-pw", nil); sessionCookieOf(resp) == nil {
		t.Fatalf("login with the new password: %d", resp.StatusCode)
	}

	// Rotation: the old token is refused at once, the new one shown once
	// works, the session ends and the live socket is closed (4001) at once.
	ws, _ = e.subscribedAll(op.Token)
	status, body = e.post(admin, "/api/v1/users/op/token", ``)
	var rotated userJSON
	if err := json.Unmarshal([]byte(body), &rotated); err != nil || status != 200 || !strings.HasPrefix(rotated.Token, "dtu_") || rotated.Token == op.Token {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if status, _ := e.get(op.Token, "/api/v1/me"); status != 401 {
		t.Fatalf("old token after rotation: %d, want 401", status)
	}
	if status, _ := e.get(rotated.Token, "/api/v1/me"); status != 200 {
		t.Fatalf("new token: %d, want 200", status)
	}
	if s, _ := e.withSession(session, "GET", "/api/v1/me"); s != 401 {
		t.Fatalf("session after rotation: %d, want 401", s)
	}
	if code := waitClosed(t, ws, time.Second); code != 4001 {
		t.Fatalf("socket after rotation: closed with %d, want 4001", code)
	}

	// Delete: the token stops and the socket closes at once.
	ws, _ = e.subscribedAll(rotated.Token)
	if status, body := e.do("DELETE", admin, "/api/v1/users/op", ``); status != 204 {
		t.Fatalf("delete: %d %s", status, body)
	}
	if status, _ := e.get(rotated.Token, "/api/v1/me"); status != 401 {
		t.Fatalf("token after delete: %d, want 401", status)
	}
	if code := waitClosed(t, ws, time.Second); code != 4001 {
		t.Fatalf("socket after delete: closed with %d, want 4001", code)
	}
	if _, body := e.get(admin, "/api/v1/users"); strings.Contains(body, `"op"`) {
		t.Fatalf("list after delete: %s", body)
	}
}

// A role or groups change made elsewhere (devtrack user edit on the store)
// closes the user's live sockets within a credentials poll, with 4003;
// other users' sockets stay.
func TestUserEditElsewhereClosesItsLiveSockets(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: 200 * time.Millisecond})
	e.addDevice("a1", "g1")
	op := e.addUser("op", storage.RoleOperator, "g1")
	other := e.addUser("other", storage.RoleOperator, "g1")
	wsOp, _ := e.subscribedAll(op)
	wsOther, _ := e.subscribedAll(other)
	admin := storage.RoleAdmin
	if _, err := e.store.UpdateUser(context.Background(), "op", storage.UserChange{Role: &admin}); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, wsOp, 5*time.Second); code != 4003 {
		t.Fatalf("socket of the changed user: closed with %d, want 4003", code)
	}
	_ = wsOther.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	if m := readLive(t, wsOther); m.Type != "snapshot" {
		t.Fatalf("other user's socket: %s, want a snapshot", m.Raw)
	}
}

// An admin renames and moves a device (operators of its old group lose it
// at once, on the API and on their sockets here), revokes it (its
// connection closes at once) and deletes it with its archive.
func TestDeviceAdminAPI(t *testing.T) {
	e := newEnv(t, wsgateway.Config{RevokePoll: longPoll})
	admin := e.addUser("root", storage.RoleAdmin)
	op := e.addUser("op", storage.RoleOperator, "g1")
	tokA := e.addDevice("a1", "g1")
	tokB := e.addDevice("b1", "g1")
	e.saveLogs(storage.LogEntry{Device: "a1", ID: "l1", TS: time.Now().UnixMilli(), Level: "info", Message: "hello"})

	ws, _ := e.subscribedAll(op)
	if status, body := e.do("PATCH", admin, "/api/v1/devices/a1", `{"name":"Van 7","group":"g2"}`); status != 200 ||
		!strings.Contains(body, `"name":"Van 7"`) || !strings.Contains(body, `"group":"g2"`) {
		t.Fatalf("patch name and group: %d %s", status, body)
	}
	if code := waitClosed(t, ws, time.Second); code != 4003 {
		t.Fatalf("operator's socket watching the moved device: closed with %d, want 4003", code)
	}
	if status, _ := e.get(op, "/api/v1/devices/a1"); status != 403 {
		t.Fatalf("operator reads the moved device: %d, want 403", status)
	}
	if _, ids := e.subscribedAll(op); strings.Join(ids, ",") != "b1" {
		t.Fatalf("operator's snapshot after the move: %v, want [b1]", ids)
	}
	for _, tc := range []struct {
		tok, method, path, body string
		status                  int
	}{
		{admin, "PATCH", "/api/v1/devices/a1", `{"group":"a b"}`, 400},
		{admin, "PATCH", "/api/v1/devices/a1", `{"name":"` + strings.Repeat("x", 257) + `"}`, 400},
		{admin, "PATCH", "/api/v1/devices/nope", `{"name":"x"}`, 404},
		{op, "PATCH", "/api/v1/devices/b1", `{"name":"mine"}`, 403},
		{op, "POST", "/api/v1/devices/b1/revoke", ``, 403},
		{op, "DELETE", "/api/v1/devices/b1", ``, 403},
		{admin, "POST", "/api/v1/devices/nope/revoke", ``, 404},
		{admin, "DELETE", "/api/v1/devices/nope", ``, 404},
	} {
		if status, body := e.do(tc.method, tc.tok, tc.path, tc.body); status != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}

	// Revoke: the connection closes as the request returns.
	dB := e.mustDial(tokB)
	if status, body := e.post(admin, "/api/v1/devices/b1/revoke", ``); status != 200 || !strings.Contains(body, `"id":"b1"`) {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if code := waitClosed(t, dB.ws, time.Second); code != 4001 {
		t.Fatalf("revoked device's connection: closed with %d, want 4001", code)
	}
	if _, resp, err := e.dial(tokB); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("revoked token: %v, want 401", err)
	}

	// Delete: the device, its token and archive go; its connection closes.
	dA := e.mustDial(tokA)
	status, body := e.do("DELETE", admin, "/api/v1/devices/a1", ``)
	if status != 200 || !strings.Contains(body, `"deleted":{"locations":0,"logs":1}`) {
		t.Fatalf("delete: %d %s", status, body)
	}
	if code := waitClosed(t, dA.ws, time.Second); code != 4001 {
		t.Fatalf("deleted device's connection: closed with %d, want 4001", code)
	}
	if _, resp, err := e.dial(tokA); err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("deleted device's token: %v, want 401", err)
	}
	if status, _ := e.get(admin, "/api/v1/devices/a1"); status != 404 {
		t.Fatalf("deleted device: %d, want 404", status)
	}
	if _, body := e.get(admin, "/api/v1/logs?device=a1"); strings.Contains(body, "hello") {
		t.Fatalf("deleted device's logs: %s", body)
	}
	// The id can be enrolled again, as a new device.
	if status, body := e.post(admin, "/api/v1/devices", `{"id":"a1","group":"g1"}`); status != 201 || !strings.Contains(body, `"token":"dtd_`) {
		t.Fatalf("enrol the deleted id again: %d %s", status, body)
	}
}

package main

import (
	"bytes"
	"errors"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// cliFails runs a devtrack command that must fail and returns its exit code
// and stderr.
func (c *cluster) cliFails(args ...string) (int, string) {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env()
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		c.t.Fatalf("devtrack %v: %v, want a failing exit", args, err)
	}
	return ee.ExitCode(), errb.String()
}

func apiStatus(t *testing.T, base, tok string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/me", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// user list / revoke / delete and device rotate through the built binary,
// against a running gateway: a revoked or rotated token stops working at
// once, the new one (alone on the last line) works.
func TestAccountCommandsRevokeRotateListDelete(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1")

	old := lastLine(c.cli("user", "add", "alice", "--role", "operator", "--groups", "north,south"))
	c.cli("user", "add", "root", "--role", "admin")
	list := c.cli("user", "list")
	if !strings.Contains(list, "alice") || !strings.Contains(list, "north,south") || !strings.Contains(list, "root") ||
		strings.Index(list, "alice") > strings.Index(list, "root") {
		t.Fatalf("user list:\n%s\nwant alice (north,south) then root", list)
	}
	if s := apiStatus(t, base, old); s != 200 {
		t.Fatalf("alice's token before revoke: %d", s)
	}
	live, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/live", http.Header{"Authorization": {"Bearer " + old}})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()

	out := c.cli("user", "revoke", "alice")
	fresh := lastLine(out)
	if !strings.HasPrefix(fresh, "dtu_") || fresh == old || strings.Count(strings.TrimSpace(out), fresh) != 1 {
		t.Fatalf("user revoke printed:\n%s\nwant a new token alone on the last line", out)
	}
	if s := apiStatus(t, base, old); s != 401 {
		t.Fatalf("old token right after revoke: %d, want 401", s)
	}
	if s := apiStatus(t, base, fresh); s != 200 {
		t.Fatalf("new token: %d, want 200", s)
	}
	_ = live.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := live.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4001 {
			break
		}
		if err != nil {
			t.Fatalf("live socket of the revoked token: %v, want close 4001 within 5 s", err)
		}
	}
	if list := c.cli("user", "list"); !strings.Contains(list, "replaced ") {
		t.Fatalf("user list after revoke:\n%s\nwant alice's token shown as replaced", list)
	}

	devTok := lastLine(c.cli("device", "add", "d1"))
	rot := c.cli("device", "rotate", "d1")
	newDev := lastLine(rot)
	if !strings.HasPrefix(newDev, "dtd_") || newDev == devTok {
		t.Fatalf("device rotate printed:\n%s\nwant a new token on the last line", rot)
	}
	wsURL := "ws" + strings.TrimPrefix(base, "http") + "/ws/device"
	if _, resp, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + devTok}}); err == nil || resp.StatusCode != 401 {
		t.Fatalf("old device token: %v, want 401", err)
	}
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, http.Header{"Authorization": {"Bearer " + newDev}})
	if err != nil {
		t.Fatalf("new device token: %v", err)
	}
	ws.Close()

	c.cli("user", "delete", "alice")
	if s := apiStatus(t, base, fresh); s != 401 {
		t.Fatalf("deleted user's token: %d, want 401", s)
	}
	if list := c.cli("user", "list"); strings.Contains(list, "alice") {
		t.Fatalf("user list after delete:\n%s", list)
	}
	for _, args := range [][]string{{"user", "delete", "alice"}, {"user", "revoke", "nobody"}, {"device", "rotate", "nope"}} {
		if code, stderr := c.cliFails(args...); code != 1 || !strings.Contains(stderr, "no ") {
			t.Errorf("devtrack %v: exit %d, stderr %q; want 1 and a clear line", args, code, stderr)
		}
	}
}

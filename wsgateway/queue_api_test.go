package wsgateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// Dead letters are listed with their errors and requeued by an admin only.
func TestDeadLettersListAndRequeueAdminOnly(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	op := e.addUser("alice", storage.RoleOperator, "group-a")
	ctx := context.Background()
	const worker = "w-test"
	for _, item := range []string{`{"device":"a1","id":"1"}`, `{"device":"a1","id":"2"}`, `<not json>`} {
		if err := e.rdb.Push(ctx, []byte(item)); err != nil {
			t.Fatal(err)
		}
		taken, err := e.rdb.Take(ctx, worker, 1, 0)
		if err != nil || len(taken) != 1 {
			t.Fatalf("take: %v %v", taken, err)
		}
		if err := e.rdb.Bury(ctx, worker, redisq.DeadLetter{Item: taken[0], Key: redisq.AttemptKey(taken[0]), Error: "store refused: " + item, Attempts: 5, Worker: worker}); err != nil {
			t.Fatal(err)
		}
	}

	for _, c := range []struct {
		method, tok, path string
		status            int
	}{
		{"GET", "", "/api/v1/queue/dead", http.StatusUnauthorized},
		{"GET", op, "/api/v1/queue/dead", http.StatusForbidden},
		{"POST", op, "/api/v1/queue/dead/requeue", http.StatusForbidden},
		{"GET", admin, "/api/v1/queue/dead?limit=0", http.StatusBadRequest},
		{"GET", admin, "/api/v1/queue/dead?limit=abc", http.StatusBadRequest},
	} {
		if status, body := e.do(c.method, c.tok, c.path, ""); status != c.status {
			t.Errorf("%s %s: status %d (%s), want %d", c.method, c.path, status, body, c.status)
		}
	}
	if _, body := e.get(op, "/api/v1/queue/dead"); strings.Contains(body, "store refused") {
		t.Errorf("operator saw dead letters: %s", body)
	}

	status, body := e.get(admin, "/api/v1/queue/dead?limit=2")
	var page struct{ Items []redisq.DeadLetter }
	if err := json.Unmarshal([]byte(body), &page); err != nil || status != 200 {
		t.Fatalf("dead list: %d %s", status, body)
	}
	if len(page.Items) != 2 || page.Items[0].Item != "<not json>" || !strings.HasPrefix(page.Items[0].Error, "store refused") {
		t.Fatalf("dead list, newest first with errors, limit 2: %+v", page.Items)
	}

	status, body = e.post(admin, "/api/v1/queue/dead/requeue", `{"count":1}`)
	if status != 200 || !strings.Contains(body, `"requeued":1`) {
		t.Fatalf("requeue 1: %d %s", status, body)
	}
	status, body = e.post(admin, "/api/v1/queue/dead/requeue", "")
	if status != 200 || !strings.Contains(body, `"requeued":2`) {
		t.Fatalf("requeue the rest: %d %s", status, body)
	}
	if _, body := e.get(admin, "/api/v1/queue"); !strings.Contains(body, `"pending":3`) || !strings.Contains(body, `"dead":0`) {
		t.Fatalf("after requeue: %s", body)
	}
	if status, body := e.post(admin, "/api/v1/queue/dead/requeue", `{"count":-1}`); status != 400 {
		t.Errorf("negative count: %d %s", status, body)
	}
}

// /api/v1/me says who is signed in and the map's tiles; one device is served
// in the list's shape, only to those who may see it.
func TestMeAndSingleDevice(t *testing.T) {
	e := newEnv(t, wsgateway.Config{Tiles: "none"})
	e.addDevice("a1", "group-a")
	e.addDevice("b1", "group-b")
	op := e.addUser("alice", storage.RoleOperator, "group-a")

	status, body := e.get(op, "/api/v1/me")
	var me struct {
		Name, Role, Tiles string
		Groups            []string
	}
	if err := json.Unmarshal([]byte(body), &me); err != nil || status != 200 {
		t.Fatalf("me: %d %s", status, body)
	}
	if me.Name != "alice" || me.Role != storage.RoleOperator || len(me.Groups) != 1 || me.Groups[0] != "group-a" || me.Tiles != "" {
		t.Errorf("me = %+v; want alice, operator, [group-a], no tiles", me)
	}
	if status, _ := e.get("", "/api/v1/me"); status != 401 {
		t.Errorf("me without a token: %d, want 401", status)
	}
	if status, body := e.get(op, "/api/v1/devices/a1"); status != 200 || !strings.Contains(body, `"id":"a1"`) || !strings.Contains(body, `"online":false`) {
		t.Errorf("own device: %d %s", status, body)
	}
	if status, body := e.get(op, "/api/v1/devices/b1"); status != 403 || strings.Contains(body, "group-b") {
		t.Errorf("other group's device: %d %s, want 403 without its data", status, body)
	}
	if status, _ := e.get(op, "/api/v1/devices/nope"); status != 404 {
		t.Errorf("unknown device: %d, want 404", status)
	}
}

// The web UI is served at / with a policy that runs only its own scripts.
func TestWebUIServedWithContentSecurityPolicy(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	resp, err := http.Get(e.base + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
		!strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("GET /: %d %q, CSP %q", resp.StatusCode, resp.Header.Get("Content-Type"), csp)
	}
	if resp.Header.Get("ETag") == "" {
		t.Errorf("no ETag on /")
	}
	resp, err = http.Get(e.base + "/no-such-file.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("missing file: %d, want 404", resp.StatusCode)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

// The two-host deployment, on one machine: the gateway and the worker are
// separate processes in working directories of their own, sharing nothing
// but Redis and a PostgreSQL database. Frames are acked, stored once,
// found by a substring search in Chinese and in English, and shown on a
// viewer's /ws/live; neither process leaves a file behind.
func TestPostgresGatewayAndWorkerShareOnlyRedisAndTheDatabase(t *testing.T) {
	pg := pgtest.Start(t)
	c := newCluster(t)
	c.dsn = pg.NewDB(t)
	c.cli("migrate")
	gwDir, workerDir := t.TempDir(), t.TempDir()
	_, base := c.startGatewayIn(gwDir, "gw1", "--device-rate", "1000")
	c.startIn(workerDir, "worker1", "worker")
	admin := lastLine(c.cli("user", "add", "root", "--role", "admin"))

	const devices, frames = 10, 100
	ids, toks := c.addFleet("pg", devices)
	viewer := dialViewer(t, base, admin)

	want := sendFleet(t, base, ids, toks, frames)()
	logDev := dialDevice(t, base, ids[0], toks[0])
	for i, msg := range []string{"設備開門失敗 (door 7)", "upload failed twice", "all good"} {
		frame, _ := json.Marshal(map[string]any{"type": "log", "id": fmt.Sprintf("log-%d", i),
			"data": map[string]any{"level": "warn", "message": msg}})
		if err := logDev.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
			t.Fatal(err)
		}
	}
	c.checkStoredOnce(60*time.Second, "every acked location stored", ids, want)
	for q, wantMsg := range map[string]string{"開門": "設備開門失敗 (door 7)", "FAIL twice": "upload failed twice"} {
		var msgs []string
		checkFor(t, 20*time.Second, "search "+q, func() bool {
			msgs = searchLogs(t, base, admin, q)
			return len(msgs) > 0
		})
		if len(msgs) != 1 || msgs[0] != wantMsg {
			t.Fatalf("search %q: %q, want [%q]", q, msgs, wantMsg)
		}
	}
	// The viewer subscribed to all devices before the first frame: it must
	// have had a live location of every device.
	seen := map[string]bool{}
	_ = viewer.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(seen) < devices {
		_, msg, err := viewer.ReadMessage()
		if err != nil {
			t.Fatalf("/ws/live: %v after locations of %d devices", err, len(seen))
		}
		var m struct{ Type, Device string }
		if json.Unmarshal(msg, &m) == nil && m.Type == "location" {
			seen[m.Device] = true
		}
	}
	for _, dir := range []string{gwDir, workerDir} {
		if left, _ := os.ReadDir(dir); len(left) > 0 {
			t.Errorf("a process left %v in its working directory %s", left, dir)
		}
	}
	stats := c.cli("queue", "stats")
	if !strings.Contains(stats, "pending: 0") || !strings.Contains(stats, "dead: 0") {
		t.Fatalf("queue stats after drain:\n%s", stats)
	}
}

// A worker or a gateway that cannot reach PostgreSQL at start says so in one
// line and exits 1, without a password in the message.
func TestPostgresUnreachableAtStartOneLineExitOne(t *testing.T) {
	c := newCluster(t)
	port := redistest.FreePort(t) // free: nothing listens there
	dsn := fmt.Sprintf("postgres://devtrack:s3cret-pw@127.0.0.1:%d/devtrack?connect_timeout=2", port)
	for _, role := range [][]string{{"worker"}, {"gateway", "--listen", "127.0.0.1:0"}, {"migrate"}} {
		cmd := exec.Command(binary, append(role, "--store", dsn, "--redis", c.redis.Addr(), "--log-format", "console")...)
		cmd.Env = os.Environ()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		start := time.Now()
		err := cmd.Run()
		code := cmd.ProcessState.ExitCode()
		lines := strings.Split(strings.TrimSpace(errb.String()), "\n")
		if err == nil || code != 1 {
			t.Errorf("%s: exit %d (%v), want 1\n%s", role[0], code, err, errb.String())
			continue
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "127.0.0.1") {
			t.Errorf("%s: stderr has %d lines, want one naming the server:\n%s", role[0], len(lines), errb.String())
		}
		if strings.Contains(errb.String(), "s3cret-pw") {
			t.Errorf("%s: the password is in the error:\n%s", role[0], errb.String())
		}
		if took := time.Since(start); took > 30*time.Second {
			t.Errorf("%s: took %s to give up", role[0], took)
		}
	}
}

// dialViewer opens /ws/live with a user's token and subscribes to every device.
func dialViewer(t *testing.T, base, tok string) *websocket.Conn {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/live", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		t.Fatalf("/ws/live: %v", err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"subscribe","all":true}`)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("/ws/live before the snapshot: %v", err)
		}
		if bytes.Contains(msg, []byte(`"snapshot"`)) {
			return ws
		}
	}
}

// searchLogs is GET /api/v1/logs?q=, the messages found.
func searchLogs(t *testing.T, base, tok, q string) []string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/api/v1/logs?q="+url.QueryEscape(q), nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct {
		Items []struct {
			Message string `json:"message"`
		} `json:"items"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&page) != nil {
		t.Fatalf("GET /api/v1/logs?q=%s: %d", q, resp.StatusCode)
	}
	var msgs []string
	for _, it := range page.Items {
		msgs = append(msgs, it.Message)
	}
	return msgs
}

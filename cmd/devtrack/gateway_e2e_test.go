package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/gorilla/websocket"
)

// offlineRecorder records the devices whose offline presence was published.
type offlineRecorder struct {
	mu  sync.Mutex
	off map[string]bool
}

func (c *cluster) recordOffline() *offlineRecorder {
	or := &offlineRecorder{off: map[string]bool{}}
	c.watchLive("presence subscription", func(msg []byte) {
		var p struct {
			Type, Device string
			Online       bool
		}
		if json.Unmarshal(msg, &p) == nil && p.Type == "presence" && !p.Online {
			or.mu.Lock()
			or.off[p.Device] = true
			or.mu.Unlock()
		}
	})
	return or
}

func (or *offlineRecorder) all(devices []string) bool {
	or.mu.Lock()
	defer or.mu.Unlock()
	for _, d := range devices {
		if !or.off[d] {
			return false
		}
	}
	return true
}

// A gateway with a fixed --id (a systemd unit) killed -9 and restarted at
// once: the new process sweeps the dead one's links at start, long before
// the heartbeat TTL, with offline presence, and serves the devices again.
func TestGatewayKilledAndRestartedWithTheSameIDSweepsItsLinks(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	admin := lastLine(c.cli("user", "add", "root", "--role", "admin"))
	gw, base := c.startGateway("gw1", "--heartbeat-ttl", "30s")
	const n = 20
	ids := make([]string, n)
	toks := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("r%02d", i)
		toks[i] = lastLine(c.cli("device", "add", ids[i]))
		dialDevice(t, base, ids[i], toks[i])
	}
	links := func() map[string]string {
		m := map[string]string{}
		for _, id := range ids {
			if v, _ := c.redis.Do("HGET", "devtrack:device:links", id); v != "" {
				m[id] = v
			}
		}
		return m
	}
	checkFor(t, 5*time.Second, "every device linked", func() bool { return len(links()) == n })
	old := links()[ids[0]]
	offline := c.recordOffline()

	gw.kill9()
	start := time.Now()
	_, base = c.startGateway("gw1", "--heartbeat-ttl", "30s")
	checkFor(t, 5*time.Second, "the dead process's links swept", func() bool { return len(links()) == 0 })
	checkFor(t, 5*time.Second, "offline presence of every swept device", func() bool { return offline.all(ids) })
	t.Logf("links swept and offline published %s after the restart began (heartbeat TTL 30s)", time.Since(start).Round(time.Millisecond))

	d := dialDevice(t, base, ids[0], toks[0])
	checkFor(t, 5*time.Second, "new link", func() bool { v := links()[ids[0]]; return v != "" && v != old })
	if nv := links()[ids[0]]; !strings.HasPrefix(nv, "gw1~") || redisq.LinkGateway(nv) == redisq.LinkGateway(old) {
		t.Fatalf("link after reconnect %q names the dead instance of %q", nv, old)
	}
	req, _ := http.NewRequest("POST", base+"/api/v1/devices/"+ids[0]+"/commands", strings.NewReader(`{"name":"locate"}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("command: %d", resp.StatusCode)
	}
	_ = d.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := d.ws.ReadMessage()
	if err != nil || !strings.Contains(string(b), `"locate"`) {
		t.Fatalf("device after restart: %s %v, want the command", b, err)
	}
	acked, refused := d.sendAll(t, "after", 10)
	if len(acked) != 10 || len(refused) != 0 {
		t.Fatalf("after restart: %d acked, refused %v", len(acked), refused)
	}
}

// A gateway limited to 600 file descriptors under 700 slow clients that
// never authenticate: accept never fails, /healthz and devices still get in
// within 2 s.
func TestGatewayWith600FDsSurvives700SlowClients(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	tok := lastLine(c.cli("device", "add", "f1"))
	addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	gw := c.startCmd("gw1", exec.Command("sh", "-c", `ulimit -n 600 && exec "$0" "$@"`,
		binary, "gateway", "--listen", addr, "--id", "gw1"))
	base := "http://" + addr
	checkFor(t, 20*time.Second, "gateway ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	limits, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", gw.cmd.Process.Pid))
	if err == nil && !strings.Contains(string(limits), "Max open files            600") {
		t.Fatalf("gateway not limited to 600 files:\n%s", limits)
	}

	slow := testutil.OpenSlowClients(t, addr, 500, 200)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 5 {
		start := time.Now()
		resp, err := hc.Get(base + "/healthz")
		if err != nil {
			t.Fatalf("healthz %d during the flood: %v", i, err)
		}
		resp.Body.Close()
		if took := time.Since(start); resp.StatusCode != 200 || took > 2*time.Second {
			t.Fatalf("healthz %d during the flood: %d after %s", i, resp.StatusCode, took)
		}
	}
	start := time.Now()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	dialer := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	ws, _, err := dialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/device", h)
	if err != nil {
		t.Fatalf("device handshake during the flood: %v", err)
	}
	defer ws.Close()
	d := &device{id: "f1", ws: ws}
	acked, refused := d.sendAll(t, "flood", 1)
	if took := time.Since(start); len(acked) != 1 || took > 2*time.Second {
		t.Fatalf("device during the flood: acked %v refused %v after %s", acked, refused, took)
	}
	open := slow.Open()
	t.Logf("700 slow clients: %d still open; healthz and a device handshake + ack within 2 s", open)
	log, _ := os.ReadFile(gw.log)
	if strings.Contains(string(log), "too many open files") {
		t.Fatalf("the gateway ran out of file descriptors:\n%s", tail(string(log), 2000))
	}
}

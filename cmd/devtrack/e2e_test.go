package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/gorilla/websocket"
	"github.com/redis/rueidis"
)

// binary is the devtrack binary built once for the end-to-end tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "devtrack-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "devtrack")
	build := exec.Command("go", "build", "-race", "-o", binary, ".")
	if os.Getenv("DEVTRACK_E2E_NORACE") != "" {
		build = exec.Command("go", "build", "-o", binary, ".")
	}
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build devtrack:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a real redis-server, a SQLite file and devtrack processes.
type cluster struct {
	t     *testing.T
	redis *redistest.Server
	dir   string
	dsn   string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	c := &cluster{t: t, redis: redistest.Start(t), dir: t.TempDir()}
	c.dsn = "sqlite://" + filepath.Join(c.dir, "devtrack.db")
	return c
}

func (c *cluster) env() []string {
	return append(os.Environ(), "DEVTRACK_REDIS="+c.redis.Addr(), "DEVTRACK_STORE="+c.dsn, "DEVTRACK_LOG_FORMAT=json")
}

// cli runs a devtrack command to completion and returns its stdout.
func (c *cluster) cli(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Fatalf("devtrack %v: %v\n%s", args, err, errb.String())
	}
	return out.String()
}

// lastLine is the token line of device add / user add.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// proc is a long-running devtrack process.
type proc struct {
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed once the process has exited
}

func (c *cluster) start(name string, args ...string) *proc {
	c.t.Helper()
	return c.startIn("", name, args...)
}

// startIn starts devtrack with dir as its working directory ("" for the
// test's).
func (c *cluster) startIn(dir, name string, args ...string) *proc {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Dir = dir
	return c.startCmd(name, cmd)
}

// startCmd starts cmd (devtrack, or a shell that execs it) as name.
func (c *cluster) startCmd(name string, cmd *exec.Cmd) *proc {
	c.t.Helper()
	logPath := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
		if c.t.Failed() {
			b, _ := os.ReadFile(logPath)
			c.t.Logf("--- %s log:\n%s", name, tail(string(b), 4000))
		}
	})
	return p
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// stop sends SIGTERM and returns the exit code.
func (p *proc) stop(t *testing.T) int { return p.signal(t, syscall.SIGTERM) }

// signal sends sig, waits up to 30 s for the exit and returns the exit code.
func (p *proc) signal(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("process did not stop within 30 s of %v", sig)
	}
	return p.cmd.ProcessState.ExitCode()
}

func (p *proc) kill9() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// startGateway starts a gateway on a free port and waits until it is ready.
func (c *cluster) startGateway(name string, args ...string) (*proc, string) {
	c.t.Helper()
	return c.startGatewayIn("", name, args...)
}

// startGatewayIn is startGateway with dir as the working directory.
func (c *cluster) startGatewayIn(dir, name string, args ...string) (*proc, string) {
	c.t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(c.t))
	p := c.startIn(dir, name, append([]string{"gateway", "--listen", addr, "--id", name}, args...)...)
	base := "http://" + addr
	checkFor(c.t, 20*time.Second, name+" ready", func() bool {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p, base
}

func checkFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.CheckFor(t, timeout, what, cond)
}

// storedIDs opens the archive (SQLite or PostgreSQL) and counts each
// (device, id) of the devices' locations.
func (c *cluster) storedIDs(devices []string) map[string]int {
	c.t.Helper()
	ctx := context.Background()
	st, err := backend.Open(ctx, c.dsn, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	defer st.Close()
	got := map[string]int{}
	for _, d := range devices {
		q := storage.LocationQuery{Device: d, Limit: 1000}
		for {
			items, next, err := st.Locations(ctx, q)
			if err != nil {
				c.t.Fatal(err)
			}
			for _, it := range items {
				got[it.Device+"/"+it.ID]++
			}
			if next == "" {
				break
			}
			q.Cursor = next
		}
	}
	return got
}

// liveRecorder counts the (device, id) pairs published on live channels.
type liveRecorder struct {
	mu  sync.Mutex
	ids map[string]int
}

func (c *cluster) recordLive() *liveRecorder {
	lr := &liveRecorder{ids: map[string]int{}}
	c.watchLive("live subscription", func(msg []byte) {
		var l protocol.Live
		if json.Unmarshal(msg, &l) == nil && l.ID != "" {
			lr.mu.Lock()
			lr.ids[l.Device+"/"+l.ID]++
			lr.mu.Unlock()
		}
	})
	return lr
}

// watchLive calls fn with every message published on the live channels
// until the test ends; it returns once the subscription is in place.
func (c *cluster) watchLive(what string, fn func(msg []byte)) {
	c.t.Helper()
	rdb, err := redisq.Open(context.Background(), c.redis.Addr(), "devtrack")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(rdb.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c.t.Cleanup(func() { cancel(); <-done })
	r := rdb.Redis()
	go func() {
		defer close(done)
		_ = r.Receive(ctx, r.B().Psubscribe().Pattern(rdb.Keys().LivePattern()).Build(), func(m rueidis.PubSubMessage) {
			fn([]byte(m.Message))
		})
	}()
	checkFor(c.t, 5*time.Second, what, func() bool {
		n, err := r.Do(context.Background(), r.B().PubsubNumpat().Build()).AsInt64()
		return err == nil && n > 0
	})
}

func (lr *liveRecorder) count() int {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return len(lr.ids)
}

func (lr *liveRecorder) has(key string) bool {
	lr.mu.Lock()
	defer lr.mu.Unlock()
	return lr.ids[key] > 0
}

// device is a test device speaking the protocol directly.
type device struct {
	id string
	ws *websocket.Conn
}

func dialDevice(t *testing.T, base, id, tok string) *device {
	t.Helper()
	h := http.Header{"Authorization": {"Bearer " + tok}}
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/device", h)
	if err != nil {
		t.Fatalf("dial %s: %v", id, err)
	}
	t.Cleanup(func() { ws.Close() })
	return &device{id: id, ws: ws}
}

func locFrame(id string, i int) []byte {
	b, _ := json.Marshal(map[string]any{"type": "location", "id": id, "ts": time.Now().UnixMilli(),
		"data": map[string]any{"lat": 31.2 + float64(i%1000)/10000, "lng": 121.4, "speed": 3.5}})
	return b
}

// sendAll sends n frames pipelined and collects acks; it returns acked ids
// and refused ones by code.
func (d *device) sendAll(t *testing.T, prefix string, n int) (acked []string, refused map[string]string) {
	t.Helper()
	frames := make(map[string][]byte, n)
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		frames[ids[i]] = locFrame(ids[i], i)
	}
	// Frames refused as unavailable or rate_limited are sent again with the
	// same id, as a device does (devclient); only other refusals are final.
	// On a loaded machine a gateway may answer unavailable for a moment
	// (its Redis push timed out) and must not ack; the resend must then be
	// acked and stored once.
	refused = map[string]string{}
	for try := 0; len(ids) > 0; try++ {
		if try > 0 {
			if try > 20 {
				t.Fatalf("%s: %d frames still refused as unavailable after 20 resends", d.id, len(ids))
			}
			time.Sleep(250 * time.Millisecond)
		}
		ok, again := d.sendRound(t, ids, frames, refused)
		acked = append(acked, ok...)
		ids = again
	}
	return acked, refused
}

// sendRound writes the frames of ids and reads a reply for each: acked ids,
// ids refused for a moment (to send again), and final refusals into refused.
func (d *device) sendRound(t *testing.T, ids []string, frames map[string][]byte, refused map[string]string) (acked, again []string) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		for _, id := range ids {
			if err := d.ws.WriteMessage(websocket.TextMessage, frames[id]); err != nil {
				errc <- err
				return
			}
		}
		errc <- nil
	}()
	for answered := 0; answered < len(ids); {
		_ = d.ws.SetReadDeadline(time.Now().Add(20 * time.Second))
		_, b, err := d.ws.ReadMessage()
		if err != nil {
			t.Fatalf("%s read after %d acks: %v", d.id, len(acked), err)
		}
		var r struct {
			Type string   `json:"type"`
			IDs  []string `json:"ids"`
			ID   string   `json:"id"`
			Code string   `json:"code"`
		}
		_ = json.Unmarshal(b, &r)
		switch r.Type {
		case "ack":
			acked = append(acked, r.IDs...)
			answered += len(r.IDs)
		case "error":
			answered++
			if r.Code == "unavailable" || r.Code == "rate_limited" {
				again = append(again, r.ID)
			} else {
				refused[r.ID] = r.Code
			}
		}
	}
	if err := <-errc; err != nil {
		t.Fatalf("%s write: %v", d.id, err)
	}
	return acked, again
}

// checkStoredOnce waits up to timeout until the archive holds as many
// frames of devices as want has (device/id), then fails the test unless it
// holds every one of them exactly once and nothing else.
func (c *cluster) checkStoredOnce(timeout time.Duration, what string, devices []string, want map[string]bool) {
	c.t.Helper()
	checkFor(c.t, timeout, what, func() bool { return len(c.storedIDs(devices)) >= len(want) })
	got := c.storedIDs(devices)
	for k := range want {
		if got[k] != 1 {
			c.t.Fatalf("%s stored %d times", k, got[k])
		}
	}
	if len(got) != len(want) {
		c.t.Fatalf("stored %d frames, acked %d", len(got), len(want))
	}
}

// addFleet adds n devices named prefix00, prefix01, ... to the group fleet
// and returns their ids and tokens.
func (c *cluster) addFleet(prefix string, n int) (ids, toks []string) {
	ids = make([]string, n)
	toks = make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s%02d", prefix, i)
		toks[i] = lastLine(c.cli("device", "add", ids[i], "--group", "fleet"))
	}
	return ids, toks
}

// sendFleet connects every device (ids[i] with toks[i]) and has all of them
// send frames locations at once, each with sendAll. It returns at once; the
// function it returns waits for every device and gives the acked frames as
// device/id, or stops the test if a device had a frame refused or unacked
// (reported with t.Errorf, so every device is heard from).
func sendFleet(t *testing.T, base string, ids, toks []string, frames int) (wait func() map[string]bool) {
	t.Helper()
	want := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := dialDevice(t, base, ids[i], toks[i])
			acked, refused := d.sendAll(t, "m", frames)
			if len(acked) != frames || len(refused) != 0 {
				t.Errorf("%s: %d acked, refused %v", ids[i], len(acked), refused)
			}
			mu.Lock()
			for _, id := range acked {
				want[ids[i]+"/"+id] = true
			}
			mu.Unlock()
		}()
	}
	return func() map[string]bool {
		t.Helper()
		wg.Wait()
		if t.Failed() {
			t.FailNow()
		}
		return want
	}
}

func TestEndToEndEveryFrameAckedStoredOnceAndPublished(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--device-rate", "1000")
	c.start("worker1", "worker")
	live := c.recordLive()

	const devices, frames = 50, 200
	ids, toks := c.addFleet("d", devices)
	httpTok := lastLine(c.cli("device", "add", "courier", "--group", "fleet"))

	fleetAcked := sendFleet(t, base, ids, toks, frames)
	// 1,000 frames over HTTP ingest, 100 per request as a JSON array, while
	// the devices send.
	var httpAcked []string
	for r := range 10 {
		var body bytes.Buffer
		body.WriteByte('[')
		for i := range 100 {
			if i > 0 {
				body.WriteByte(',')
			}
			body.Write(locFrame(fmt.Sprintf("h-%d-%d", r, i), i))
		}
		body.WriteByte(']')
		req, _ := http.NewRequest("POST", base+"/api/v1/ingest", &body)
		req.Header.Set("Authorization", "Bearer "+httpTok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Accepted int      `json:"accepted"`
			IDs      []string `json:"ids"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || out.Accepted != 100 {
			t.Fatalf("ingest: status %d accepted %d", resp.StatusCode, out.Accepted)
		}
		httpAcked = append(httpAcked, out.IDs...)
	}
	want := fleetAcked()
	for _, id := range httpAcked {
		want["courier/"+id] = true
	}
	if len(want) != devices*frames+1000 {
		t.Fatalf("%d distinct acked frames, want %d", len(want), devices*frames+1000)
	}
	c.checkStoredOnce(60*time.Second, "every acked frame stored", append(ids, "courier"), want)
	checkFor(t, 10*time.Second, "every stored frame published", func() bool { return live.count() >= len(want) })
	for k := range want {
		if !live.has(k) {
			t.Fatalf("%s never published", k)
		}
	}
	stats := c.cli("queue", "stats")
	if !strings.Contains(stats, "pending: 0") || !strings.Contains(stats, "dead: 0") {
		t.Fatalf("queue stats after drain:\n%s", stats)
	}
}

func TestWorkerKill9MidStreamLosesAndDuplicatesNothing(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--device-rate", "5000")
	w1 := c.start("worker1", "worker", "--id", "w1", "--heartbeat-ttl", "2s", "--batch", "50")

	const devices, frames = 10, 600
	var mu sync.Mutex
	want := map[string]bool{}
	var wg sync.WaitGroup
	ids := make([]string, devices)
	for i := range devices {
		ids[i] = fmt.Sprintf("k%02d", i)
		tok := lastLine(c.cli("device", "add", ids[i]))
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := dialDevice(t, base, ids[i], tok)
			for round := range 6 {
				acked, refused := d.sendAll(t, fmt.Sprintf("r%d", round), frames/6)
				if len(refused) != 0 {
					t.Errorf("refused %v", refused)
				}
				mu.Lock()
				for _, id := range acked {
					want[ids[i]+"/"+id] = true
				}
				mu.Unlock()
				time.Sleep(50 * time.Millisecond) // a steady stream, not a burst
			}
		}()
	}
	// Kill the worker while it is busy: once some, not all, are stored.
	checkFor(t, 30*time.Second, "worker busy", func() bool { return len(c.storedIDs(ids)) > 100 })
	w1.kill9()
	c.start("worker2", "worker", "--id", "w2", "--heartbeat-ttl", "2s")
	wg.Wait()
	c.checkStoredOnce(60*time.Second, "every acked frame stored after the kill", ids, want)
	checkFor(t, 10*time.Second, "dead worker's list recovered", func() bool {
		s := c.cli("queue", "stats")
		return strings.Contains(s, "in_flight: 0") && strings.Contains(s, "pending: 0") && strings.Contains(s, "dead: 0")
	})
}

func TestRedisRestartMidStreamNoFalseAckNothingLost(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--device-rate", "5000")
	c.start("worker1", "worker", "--heartbeat-ttl", "3s")
	tok := lastLine(c.cli("device", "add", "r1"))
	d := dialDevice(t, base, "r1", tok)

	acked := map[string]bool{}
	send := func(id string) (string, string) {
		if err := d.ws.WriteMessage(websocket.TextMessage, locFrame(id, 1)); err != nil {
			t.Fatalf("write: %v", err)
		}
		_ = d.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := d.ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var r struct{ Type, Code string }
		_ = json.Unmarshal(b, &r)
		if r.Type == "ack" {
			acked["r1/"+id] = true
		}
		return r.Type, r.Code
	}
	for i := range 100 {
		if typ, _ := send(fmt.Sprintf("a%d", i)); typ != "ack" {
			t.Fatalf("before the outage: %s", typ)
		}
	}
	c.redis.Stop()
	for i := range 20 {
		start := time.Now()
		typ, code := send(fmt.Sprintf("b%d", i))
		if typ != "error" || code != "unavailable" {
			t.Fatalf("while Redis is down: got %s %s, want error unavailable", typ, code)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Fatalf("unavailable took %s", took)
		}
	}
	c.redis.Restart()
	n := 0
	checkFor(t, 20*time.Second, "acks after Redis is back", func() bool {
		n++
		typ, _ := send(fmt.Sprintf("c%d", n))
		return typ == "ack"
	})
	for i := range 100 {
		if typ, _ := send(fmt.Sprintf("d%d", i)); typ != "ack" {
			t.Fatalf("after the outage: %s", typ)
		}
	}
	checkFor(t, 30*time.Second, "every acked frame stored", func() bool { return len(c.storedIDs([]string{"r1"})) >= len(acked) })
	got := c.storedIDs([]string{"r1"})
	for k := range acked {
		if got[k] != 1 {
			t.Fatalf("%s stored %d times", k, got[k])
		}
	}
	for k := range got {
		if !acked[k] {
			t.Fatalf("%s stored but never acked", k)
		}
	}
}

func TestLinksOfAKilledGatewayAreSweptByAnother(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	gwA, baseA := c.startGateway("gwA", "--heartbeat-ttl", "1s")
	tok := lastLine(c.cli("device", "add", "s1"))
	dialDevice(t, baseA, "s1", tok)
	link := func() string { v, _ := c.redis.Do("HGET", "devtrack:device:links", "s1"); return v }
	checkFor(t, 5*time.Second, "link set", func() bool { return strings.HasPrefix(link(), "gwA~") })
	gwA.kill9()
	time.Sleep(100 * time.Millisecond)
	if !strings.HasPrefix(link(), "gwA~") {
		t.Fatal("link vanished without a sweeper")
	}
	c.startGateway("gwB", "--heartbeat-ttl", "1s")
	checkFor(t, 10*time.Second, "dead gateway's link swept", func() bool { return link() == "" })
}

func TestSigtermExitsZeroAndBadConfigExitsTwo(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	gw, _ := c.startGateway("gw1")
	metrics := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	w := c.start("worker1", "worker", "--metrics", metrics)
	checkFor(t, 10*time.Second, "worker registered", func() bool { return strings.Contains(c.cli("queue", "stats"), "workers: 1") })
	checkFor(t, 10*time.Second, "worker metrics", func() bool {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		return strings.Contains(b.String(), "devtrack_worker_items_stored_total")
	})
	if code := w.stop(t); code != 0 {
		t.Fatalf("worker exit %d after SIGTERM, want 0", code)
	}
	if code := gw.stop(t); code != 0 {
		t.Fatalf("gateway exit %d after SIGTERM, want 0", code)
	}
	for _, args := range [][]string{
		{"worker", "--no-such-flag"},
		{"worker", "--store", "mysql://x"},
		{"worker", "--concurrency", "0"},
		{"worker", "--concurrency", "17", "--redis", "127.0.0.1:1"}, // checked before Redis is dialled
		{"gateway", "--redis", "not an address"},
		{"user", "add", "bob", "--role", "king"},
	} {
		cmd := exec.Command(binary, args...)
		cmd.Env = c.env()
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if cmd.ProcessState.ExitCode() != 2 {
			t.Fatalf("devtrack %v: exit %d (%v), want 2; stderr %s", args, cmd.ProcessState.ExitCode(), err, errb.String())
		}
		lines := 0
		sc := bufio.NewScanner(&errb)
		for sc.Scan() {
			lines++
		}
		if lines != 1 {
			t.Fatalf("devtrack %v: want one clear line, got:\n%s", args, errb.String())
		}
	}
}

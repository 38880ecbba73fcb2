package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// demoRun is a running `devtrack demo` and what it printed.
type demoRun struct {
	*proc
	fields map[string]string // url, user, password, token, store, redis, ...
	out    *strings.Builder
	stdout io.ReadCloser    // the read end of the demo's output pipe
	stderr *strings.Builder // its log; read it only once it exited (done)
}

// closeOutput closes the reader of the demo's output, as `| head` does.
func (d *demoRun) closeOutput() error { return d.stdout.Close() }

// startDemo runs devtrack demo with env and waits for its credentials.
func startDemo(t *testing.T, env []string, args ...string) *demoRun {
	t.Helper()
	cmd := exec.Command(binary, append([]string{"demo", "--listen", "127.0.0.1:0", "--tiles", "none"}, args...)...)
	cmd.Env = env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &demoRun{proc: &proc{cmd: cmd, done: make(chan struct{})}, fields: map[string]string{}, out: &strings.Builder{}, stdout: stdout, stderr: &stderr}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			d.out.WriteString(line + "\n")
			if k, v, ok := strings.Cut(line, ": "); ok {
				d.fields[k] = v
			}
			if strings.HasPrefix(line, "Press Ctrl-C") {
				close(ready)
			}
		}
		_ = cmd.Wait()
		close(d.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-d.done
		if t.Failed() {
			t.Logf("--- demo stderr:\n%s", tail(stderr.String(), 4000))
		}
	})
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("demo exited early: %s\n%s", d.out, stderr.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("demo printed no credentials within 60 s: %s", d.out)
	}
	return d
}

// interrupt sends SIGINT (Ctrl-C) and returns the exit code.
func (d *demoRun) interrupt(t *testing.T) int { return d.signal(t, syscall.SIGINT) }

// login signs in through the web UI's endpoint and returns a client holding
// the session cookie.
func login(t *testing.T, base, name, password string) *http.Client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"name": name, "password": password})
	req, _ := http.NewRequest("POST", base+"api/v1/login", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", strings.TrimSuffix(base, "/")) // as the login page's fetch does
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login %s: status %d", name, resp.StatusCode)
	}
	return c
}

type demoDevices struct {
	Items []struct {
		ID, Group string
		Online    bool
		Location  *struct{ Lat, Lng float64 }
	}
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// checkDemo checks what a user of the demo sees: the admin signs in with the
// printed password and sees the whole fleet online and moving, logs
// archived, live locations on /ws/live with the printed token; the operator
// sees group north only.
func checkDemo(t *testing.T, d *demoRun, devices int) {
	base := d.fields["url"]
	if d.fields["user"] != "admin" || d.fields["password"] == "" || !strings.HasPrefix(d.fields["token"], "dtu_") || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("demo printed %q", d.out)
	}
	admin := login(t, base, "admin", d.fields["password"])
	var devs demoDevices
	checkFor(t, 30*time.Second, "whole fleet online with a position", func() bool {
		getJSON(t, admin, base+"api/v1/devices", &devs)
		n := 0
		for _, it := range devs.Items {
			if it.Online && it.Location != nil && it.Location.Lat > 31 && it.Location.Lat < 31.5 {
				n++
			}
		}
		return len(devs.Items) == devices && n == devices
	})
	var logs struct {
		Items []struct{ Level, Message string }
	}
	checkFor(t, 30*time.Second, "fleet logs archived", func() bool {
		getJSON(t, admin, base+"api/v1/logs?limit=5", &logs)
		return len(logs.Items) > 0
	})

	// Each group has its depot geofence and its enter and exit rules, the
	// operator sees north's only.
	var fences struct{ Items []struct{ ID, Group string } }
	getJSON(t, admin, base+"api/v1/geofences", &fences)
	var rules struct {
		Items []struct{ Kind, Geofence string }
	}
	getJSON(t, admin, base+"api/v1/alert-rules", &rules)
	if len(fences.Items) != len(demoGroups) || len(rules.Items) != 2*len(demoGroups) {
		t.Errorf("demo has %d geofences and %d alert rules; want a depot and its enter and exit rules per group (%d groups)",
			len(fences.Items), len(rules.Items), len(demoGroups))
	}

	op := login(t, base, d.fields["operator"], d.fields["operator-password"])
	getJSON(t, op, base+"api/v1/geofences", &fences)
	if len(fences.Items) != 1 || fences.Items[0].Group != "north" {
		t.Errorf("operator north sees geofences %+v; want north's depot only", fences.Items)
	}
	getJSON(t, op, base+"api/v1/devices", &devs)
	if len(devs.Items) == 0 || len(devs.Items) >= devices {
		t.Errorf("operator sees %d of %d devices; want group north only", len(devs.Items), devices)
	}
	for _, it := range devs.Items {
		if it.Group != "north" {
			t.Errorf("operator north sees %s of group %s", it.ID, it.Group)
		}
	}

	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"ws/live?token="+d.fields["token"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for got := map[string]bool{}; !got["snapshot"] || !got["location"]; {
		var m struct{ Type string }
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("/ws/live: %v (seen %v)", err, got)
		}
		got[m.Type] = true
	}
}

// checkDemoStops interrupts the demo and checks that it exits 0 and leaves
// nothing behind: no listener, no temp dir; and that it logged no warning or
// error all along, its stop included.
func checkDemoStops(t *testing.T, d *demoRun) {
	host := strings.TrimSuffix(strings.TrimPrefix(d.fields["url"], "http://"), "/")
	store := strings.TrimPrefix(d.fields["store"], "sqlite://")
	if code := d.interrupt(t); code != 0 {
		t.Fatalf("demo exit code %d after Ctrl-C, want 0", code)
	}
	for line := range strings.Lines(d.stderr.String()) {
		if strings.Contains(line, `"level":"warn"`) || strings.Contains(line, `"level":"error"`) {
			t.Errorf("demo logged: %s", line)
		}
	}
	if !strings.Contains(d.out.String(), "stopped") {
		t.Errorf("demo did not say it stopped: %s", d.out)
	}
	if c, err := net.DialTimeout("tcp", host, time.Second); err == nil {
		c.Close()
		t.Errorf("%s still accepts after the demo stopped", host)
	}
	if _, err := os.Stat(filepath.Dir(store)); !os.IsNotExist(err) {
		t.Errorf("demo temp dir %s still there: %v", filepath.Dir(store), err)
	}
}

// The demo as a user runs it: a redis-server on PATH and the default fleet of
// 200 devices, which dial from loopback at once while the admin signs in
// from loopback too.
func TestDemoWithRedisServer(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil && os.Getenv("CI") == "" {
		t.Skip("redis-server not installed")
	}
	d := startDemo(t, os.Environ(), "--devices", "200")
	if !strings.HasPrefix(d.fields["redis"], "redis-server on 127.0.0.1:") {
		t.Fatalf("redis line %q, want a redis-server from PATH", d.fields["redis"])
	}
	redisAddr := strings.TrimPrefix(d.fields["redis"], "redis-server on ")
	checkDemo(t, d, 200)
	checkDemoStops(t, d)
	if c, err := net.DialTimeout("tcp", redisAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("the demo's redis-server on %s outlived the demo", redisAddr)
	}
}

// On a machine with Go only, the demo runs on its embedded Redis.
func TestDemoWithoutRedisServer(t *testing.T) {
	goDir := filepath.Dir(must(exec.LookPath("go")))
	env := []string{"PATH=" + goDir, "HOME=" + os.Getenv("HOME"), "TMPDIR=" + t.TempDir()}
	d := startDemo(t, env, "--devices", "12")
	if !strings.HasPrefix(d.fields["redis"], "embedded") {
		t.Fatalf("redis line %q, want the embedded one", d.fields["redis"])
	}
	checkDemo(t, d, 12)
	checkDemoStops(t, d)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// The demo runs again on the store of an earlier run (new credentials, the
// archive kept), and removes its temp dir even when its output pipe was
// closed (devtrack demo | head).
func TestDemoAgainAndWithAClosedPipe(t *testing.T) {
	tmp := t.TempDir()
	env := append(os.Environ(), "TMPDIR="+tmp)
	db := "sqlite://" + filepath.Join(t.TempDir(), "demo.db")
	first := startDemo(t, env, "--devices", "3", "--store", db)
	if code := first.interrupt(t); code != 0 {
		t.Fatalf("first demo: exit %d", code)
	}
	again := startDemo(t, env, "--devices", "3", "--store", db)
	if again.fields["token"] == first.fields["token"] || again.fields["token"] == "" {
		t.Errorf("second run's token %q, want a new one", again.fields["token"])
	}
	checkDemo(t, again, 3)

	// Close the reader of the demo's output, as head does, then stop it:
	// its last lines go nowhere, and it still cleans up.
	if err := again.closeOutput(); err != nil {
		t.Fatal(err)
	}
	if code := again.interrupt(t); code != 0 {
		t.Fatalf("demo with a closed pipe: exit %d after Ctrl-C, want 0", code)
	}
	left, _ := filepath.Glob(filepath.Join(tmp, "devtrack-demo-*"))
	if len(left) != 0 {
		t.Errorf("temp dirs left behind: %v", left)
	}
}

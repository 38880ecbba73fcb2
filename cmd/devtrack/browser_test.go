package main

// Real-browser tests of the admin web UI: the system is set up through the
// devtrack binary (the cluster helper of e2e_test.go), then a node script in
// web/test drives headless Chromium with playwright-core. A script that fails
// exits non-zero and its output fails the Go test. A script that needs the
// test to act on the system (restart the gateway) prints "NEED <what>" and
// waits for "OK" (or "ERR <why>") on its stdin.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/redisq"
)

// webDir is the web UI's source tree, relative to this package.
const webDir = "../../web"

// chromiumPath is the browser the tests drive.
const chromiumPath = "/usr/bin/chromium"

// needBrowser skips the test when node, Chromium or playwright-core are
// missing, except in CI (CI=true), where a missing tool is a failure.
func needBrowser(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if _, err := os.Stat(chromiumPath); err != nil {
		missing = append(missing, chromiumPath)
	}
	if _, err := os.Stat(filepath.Join(webDir, "node_modules", "playwright-core", "package.json")); err != nil {
		missing = append(missing, "web/node_modules/playwright-core (npm ci in web/)")
	}
	if len(missing) == 0 {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("browser tests need %s", strings.Join(missing, ", "))
	}
	t.Skipf("browser tests need %s", strings.Join(missing, ", "))
}

// artifactsDir is where screenshots are kept: $DEVTRACK_ARTIFACTS if set,
// else a folder under the test's temp dir.
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("DEVTRACK_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "artifacts")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// randWord is a word no seeded or simulated message holds by chance.
func randWord(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// browserFleet is a running system with a moving fleet in two groups:
// simulated devices ga-0001... (group ga) and gb-0001... (group gb), and
// test devices of group ga driven by the scripts over HTTP ingest.
type browserFleet struct {
	c        *cluster
	gw       *proc
	base     string
	addr     string
	adminTok string
	users    map[string]string // name -> password
	groupA   []string          // every device of group ga
	groupB   []string          // every device of group gb
	tokens   map[string]string // test device id -> device token
	names    map[string]string // test device id -> display name
}

const (
	simA = 6 // simulated devices of group ga
	simB = 4 // simulated devices of group gb
)

// testDevice is a device of group ga that the node scripts drive.
type testDevice struct{ id, name string }

func newBrowserFleet(t *testing.T, devs ...testDevice) *browserFleet {
	t.Helper()
	setupStart := time.Now()
	defer func() { t.Logf("fleet ready in %s", time.Since(setupStart).Round(time.Millisecond)) }()
	c := newCluster(t)
	c.cli("migrate")
	gw, base := c.startGateway("gw1", "--tiles", "none")
	c.start("worker1", "worker")
	f := &browserFleet{c: c, gw: gw, base: base, addr: strings.TrimPrefix(base, "http://"),
		users: map[string]string{}, tokens: map[string]string{}, names: map[string]string{}}
	f.adminTok = f.addUser("admin", "admin", "")
	f.addUser("opa", "operator", "ga")
	for _, d := range devs {
		args := []string{"device", "add", d.id, "--group", "ga"}
		if d.name != "" {
			args = append(args, "--name", d.name)
		}
		f.tokens[d.id] = lastLine(c.cli(args...))
		f.names[d.id] = d.name
		f.groupA = append(f.groupA, d.id)
	}
	for _, s := range []struct {
		group string
		n     int
		ids   *[]string
	}{{"ga", simA, &f.groupA}, {"gb", simB, &f.groupB}} {
		c.start("sim-"+s.group, "sim", "--gateway", base, "--devices", fmt.Sprint(s.n), "--rate", "2",
			"--duration", "1h", "--device-prefix", s.group, "--group", s.group, "--log-every", "5")
		for i := range s.n {
			*s.ids = append(*s.ids, fmt.Sprintf("%s-%04d", s.group, i+1))
		}
	}
	// Every test device gets a first position near the simulated fleet
	// (around Shanghai), so that the whole fleet is on the map.
	for i, d := range devs {
		f.ingest(t, d.id, map[string]any{"type": "location", "id": "init", "ts": time.Now().UnixMilli(),
			"data": map[string]any{"lat": 31.21 + float64(i)*0.01, "lng": 121.45 + float64(i)*0.01}})
	}
	all := append(append([]string{}, f.groupA...), f.groupB...)
	checkFor(t, 60*time.Second, "every device registered and located", func() bool {
		located := map[string]bool{}
		for _, d := range f.devices(t) {
			if string(d.Location) != "null" && len(d.Location) > 0 {
				located[d.ID] = true
			}
		}
		for _, id := range all {
			if !located[id] {
				return false
			}
		}
		return true
	})
	return f
}

func (f *browserFleet) addUser(name, role, groups string) string {
	pw := randWord("pw-")
	args := []string{"user", "add", name, "--role", role, "--password", pw}
	if groups != "" {
		args = append(args, "--groups", groups)
	}
	tok := lastLine(f.c.cli(args...))
	f.users[name] = pw
	return tok
}

type apiDevice struct {
	ID       string          `json:"id"`
	Group    string          `json:"group"`
	Location json.RawMessage `json:"location"`
}

// devices is GET /api/v1/devices as the admin; nil when the call fails.
func (f *browserFleet) devices(t *testing.T) []apiDevice {
	req, _ := http.NewRequest("GET", f.base+"/api/v1/devices", nil)
	req.Header.Set("Authorization", "Bearer "+f.adminTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		Items []apiDevice `json:"items"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&out) != nil {
		return nil
	}
	return out.Items
}

// ingest posts one frame (or an array) with a test device's token.
func (f *browserFleet) ingest(t *testing.T, device string, body any) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", f.base+"/api/v1/ingest", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+f.tokens[device])
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(resp.Body)
		t.Fatalf("ingest %s: %d %s", device, resp.StatusCode, msg)
	}
}

// restartGateway kills the gateway with SIGKILL and starts a new one on the
// same address.
func (f *browserFleet) restartGateway(t *testing.T, name string) {
	t.Helper()
	f.gw.kill9()
	f.gw = f.c.start(name, "gateway", "--listen", f.addr, "--id", name, "--tiles", "none")
	checkFor(t, 20*time.Second, name+" ready", func() bool {
		resp, err := http.Get(f.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// config is what every script gets in DEVTRACK_TEST_CONFIG.
func (f *browserFleet) config() map[string]any {
	return map[string]any{
		"base":       f.base,
		"users":      f.users,
		"adminToken": f.adminTok,
		"groupA":     f.groupA,
		"groupB":     f.groupB,
		"tokens":     f.tokens,
		"names":      f.names,
	}
}

// runNode runs web/test/<script> with cfg (plus the browser's user-data dir,
// the artifacts dir and a screenshot prefix) and fails the test with the
// script's output if it exits non-zero. need answers the script's
// "NEED <what>" lines; nil refuses them all.
func runNode(t *testing.T, script string, cfg map[string]any, need func(what string) error) {
	t.Helper()
	cfg["userDataDir"] = t.TempDir()
	cfg["artifacts"] = artifactsDir(t)
	cfg["prefix"] = regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(t.Name(), "_")
	cfg["chromium"] = chromiumPath
	js, _ := json.Marshal(cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("test", script))
	cmd.Dir = webDir
	cmd.Env = append(os.Environ(), "DEVTRACK_TEST_CONFIG="+string(js))
	// Its own process group, so that Chromium goes with node.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var output strings.Builder
	record := func(line string) {
		mu.Lock()
		output.WriteString(line + "\n")
		mu.Unlock()
	}
	cmd.Stderr = writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		output.Write(p)
		mu.Unlock()
		return len(p), nil
	})
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }() // leftovers of the group

	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		record(line)
		what, ok := strings.CutPrefix(line, "NEED ")
		if !ok {
			continue
		}
		reply := "OK"
		if need == nil {
			reply = "ERR the Go test answers no NEED"
		} else if err := need(strings.TrimSpace(what)); err != nil {
			reply = "ERR " + err.Error()
		}
		record("(go) " + reply)
		_, _ = io.WriteString(stdin, reply+"\n")
	}
	err = cmd.Wait()
	mu.Lock()
	out := output.String()
	mu.Unlock()
	if err != nil {
		t.Fatalf("node %s failed after %s: %v\n%s", script, time.Since(start).Round(time.Millisecond), err, out)
	}
	t.Logf("node %s passed in %s:\n%s", script, time.Since(start).Round(time.Millisecond), out)
}

// commandDevice is a test device connected to the device socket with
// devclient; it answers every command ok with {"pong":true,"args":<args>}.
type commandDevice struct {
	id     string
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	got    []devclient.Command
}

// connect connects a test device and waits until the gateway has its link.
// It is disconnected when the test ends, or by stop.
func (f *browserFleet) connect(t *testing.T, id string) *commandDevice {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &commandDevice{id: id, cancel: cancel, done: make(chan struct{})}
	c := devclient.New(devclient.Config{
		URL:   "ws" + strings.TrimPrefix(f.base, "http") + "/ws/device",
		Token: f.tokens[id],
		OnCommand: func(c devclient.Command) devclient.CommandResult {
			d.mu.Lock()
			d.got = append(d.got, c)
			d.mu.Unlock()
			data, _ := json.Marshal(struct {
				Pong bool            `json:"pong"`
				Args json.RawMessage `json:"args,omitempty"`
			}{true, c.Args})
			return devclient.CommandResult{OK: true, Data: data}
		},
	})
	go func() {
		defer close(d.done)
		_ = c.Run(ctx)
	}()
	t.Cleanup(d.stop)
	links := redisq.NewKeys("devtrack").Links()
	checkFor(t, 20*time.Second, id+" connected", func() bool {
		v, _ := f.c.redis.Do("HGET", links, id)
		return v != ""
	})
	return d
}

// stop disconnects the device and waits until its client has returned.
func (d *commandDevice) stop() {
	d.cancel()
	<-d.done
}

// gotOnly checks that the device was sent exactly one command: id, with
// name and args.
func (d *commandDevice) gotOnly(id, name, args string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.got) != 1 {
		return fmt.Errorf("%s got %d commands, want 1", d.id, len(d.got))
	}
	c := d.got[0]
	if c.ID != id || c.Name != name || string(c.Args) != args {
		return fmt.Errorf("%s got command %s %q args %s, want %s %q args %s", d.id, c.ID, c.Name, c.Args, id, name, args)
	}
	return nil
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(p []byte) (int, error) { return w(p) }

// TestBrowser runs the browser scenarios against one system with a moving
// fleet; the gateway restart comes last.
func TestBrowser(t *testing.T) {
	needBrowser(t)
	f := newBrowserFleet(t,
		testDevice{"mover", "Mover One"},
		testDevice{"logger", "Log Writer"},
		testDevice{"xss", `<img src=x onerror=alert(1)>`},
		testDevice{"tracker", "Track Player"},
		testDevice{"plain", ""}, // unnamed: shown by its id, once
	)

	// Log in as admin; the map shows the whole fleet (standalone markers
	// plus cluster counts); a location sent over HTTP ingest moves the
	// device's marker on screen within a second. The search and the status
	// and group filters narrow the list, the markers and the counters; names
	// show on markers from zoom 15; the unnamed device shows its id once;
	// the follow bar fits a 390 px screen.
	t.Run("MapShowsFleetAndLiveMoves", func(t *testing.T) {
		runNode(t, "map.js", f.config(), nil)
	})

	// A word of a seeded message finds it; 150 matches page through
	// #logs-older; both exports hold every match.
	t.Run("LogSearchPagingAndExport", func(t *testing.T) {
		cfg := f.config()
		cfg["word"] = randWord("quokka")
		cfg["needle"] = randWord("needle")
		cfg["seed"] = 150
		runNode(t, "logs.js", cfg, nil)
	})

	// An operator of group ga sees no device of group gb on the map, in the
	// list, in the API or on /ws/live.
	t.Run("OperatorSeesOnlyTheirGroups", func(t *testing.T) {
		runNode(t, "isolation.js", f.config(), nil)
	})

	// Device-provided names and log messages that look like HTML show as
	// text; no script runs.
	t.Run("DeviceTextIsNeverMarkup", func(t *testing.T) {
		runNode(t, "xss.js", f.config(), nil)
	})

	// The device page of a connected device with a stored track (the
	// script seeds 30 positions): #track-load loads it all, the slider moves
	// the playback marker and #track-time from the start to the end of the
	// drawn track. A command goes to the device (checked here, on the
	// device's side) and its answer shows; invalid arguments send nothing;
	// a device that is not connected is reported offline.
	t.Run("DevicePageTrackAndCommand", func(t *testing.T) {
		dev := f.connect(t, "tracker")
		cfg := f.config()
		cfg["trackDevice"] = "tracker"
		cfg["offlineDevice"] = "logger"
		cfg["seed"] = 30
		runNode(t, "device.js", cfg, func(what string) error {
			id, ok := strings.CutPrefix(what, "device-got ")
			if !ok {
				return fmt.Errorf("unknown need %q", what)
			}
			return dev.gotOnly(id, "ping", `{"n":1}`)
		})
		dev.stop()
	})

	// Items the worker refuses, pushed straight onto the ingest list as a
	// third-party producer would, become dead letters; the queue page shows
	// them with their errors; "Requeue all" (confirmed) sends them through
	// the worker again, which refuses them again. An operator has no queue
	// page and gets 403 for the dead letters.
	t.Run("QueuePageDeadLettersAndRequeue", func(t *testing.T) {
		keys := redisq.NewKeys("devtrack")
		if n, err := f.c.redis.Do("LLEN", keys.Dead()); err != nil || n != "0" {
			t.Fatalf("dead letters before the test: %q %v, want 0", n, err)
		}
		word := randWord("bad")
		now := time.Now().UnixMilli()
		item := func(id, typ, data string) string {
			return fmt.Sprintf(`{"v":1,"device":"logger","id":"%s-%s","type":"%s","ts":%d,"received_at":%d,"data":%s}`,
				word, id, typ, now, now, data)
		}
		bad := []struct{ item, err string }{
			{"<b>not JSON</b> " + word, `^undecodable item: .*not a JSON object`},
			{item("lat", "location", `{"lat":123.4,"lng":121.4}`), `^undecodable item: .*\blat\b.*outside`},
			{item("type", "teleport", `{"lat":31.2,"lng":121.4}`), `^undecodable item: .*type must be`},
		}
		cfg := f.config()
		var items, errs []string
		for _, b := range bad {
			if _, err := f.c.redis.Do("LPUSH", keys.Queue(), b.item); err != nil {
				t.Fatal(err)
			}
			items = append(items, b.item)
			errs = append(errs, b.err)
		}
		cfg["badItems"], cfg["badErrors"] = items, errs
		runNode(t, "queue.js", cfg, nil)
		// The refused location never reached the archive.
		if n := f.c.storedIDs([]string{"logger"})["logger/"+word+"-lat"]; n != 0 {
			t.Errorf("bad location %s-lat stored %d times", word, n)
		}
	})

	// With the page live, the gateway is killed and restarted on the same
	// port; the page goes reconnecting, then live, and a location sent
	// afterwards moves the marker.
	t.Run("ReconnectsAfterGatewayRestart", func(t *testing.T) {
		restarts := 0
		runNode(t, "reconnect.js", f.config(), func(what string) error {
			if what != "gateway-restart" {
				return fmt.Errorf("unknown need %q", what)
			}
			restarts++
			f.restartGateway(t, fmt.Sprintf("gw%d", restarts+1))
			return nil
		})
		if restarts != 1 {
			t.Fatalf("gateway restarted %d times, want 1", restarts)
		}
	})
}

// TestDemoInBrowser runs `devtrack demo` as a user on a fresh machine would,
// logs in with the credentials it prints, checks that the map shows its
// fleet, and stops it with Ctrl-C (SIGINT), expecting exit 0.
func TestDemoInBrowser(t *testing.T) {
	needBrowser(t)
	const devices = 40
	// A fresh machine: no store or Redis from the environment.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DEVTRACK_") {
			env = append(env, kv)
		}
	}
	d := startDemo(t, env, "--devices", fmt.Sprint(devices))
	if d.fields["user"] != "admin" {
		t.Fatalf("demo printed user %q, want admin", d.fields["user"])
	}
	base := strings.TrimSuffix(d.fields["url"], "/")
	f := &browserFleet{base: base, adminTok: d.fields["token"]}
	checkFor(t, 60*time.Second, "the demo fleet located", func() bool {
		located := 0
		for _, dev := range f.devices(t) {
			if len(dev.Location) > 0 && string(dev.Location) != "null" {
				located++
			}
		}
		return located == devices
	})
	runNode(t, "demo.js", map[string]any{
		"base": base, "users": map[string]string{"admin": d.fields["password"]},
		"adminToken": d.fields["token"], "devices": devices,
	}, nil)
	checkDemoStops(t, d)
}

// TestEmbeddedClientInBrowser serves examples/viewer/index.html from a
// second origin (an httptest server, another port), which imports the
// gateway's /client/devtrack-live.js, subscribes to a device once and
// fetches the device names over CORS. A location arrives live; the gateway
// is killed and restarted on the same port; the page, doing nothing,
// reconnects and resubscribes (the new gateway holds a subscription to the
// device's channel again), and the next location arrives too. Then the
// client's usage page on the gateway shows the device live.
func TestEmbeddedClientInBrowser(t *testing.T) {
	needBrowser(t)
	page := httptest.NewServer(http.FileServer(http.Dir("../../examples/viewer")))
	defer page.Close()
	origin := page.URL // http://127.0.0.1:PORT, another origin than the gateway's

	c := newCluster(t)
	c.cli("migrate")
	gwArgs := []string{"--tiles", "none", "--cors-origins", origin}
	gw, base := c.startGateway("gw1", gwArgs...)
	c.start("worker1", "worker")
	f := &browserFleet{c: c, gw: gw, base: base, addr: strings.TrimPrefix(base, "http://"),
		users: map[string]string{}, tokens: map[string]string{}, names: map[string]string{}}
	opTok := f.addUser("opa", "operator", "ga")
	f.adminTok = opTok // f.devices: emb-1 is in the operator's group
	f.tokens["emb-1"] = lastLine(c.cli("device", "add", "emb-1", "--group", "ga", "--name", "Embedded One"))
	c.cli("device", "add", "emb-b", "--group", "gb")
	f.ingest(t, "emb-1", map[string]any{"type": "location", "id": "init", "ts": time.Now().UnixMilli(),
		"data": map[string]any{"lat": 31.2, "lng": 121.4}})
	checkFor(t, 20*time.Second, "emb-1 located", func() bool {
		for _, d := range f.devices(t) {
			if d.ID == "emb-1" && len(d.Location) > 0 && string(d.Location) != "null" {
				return true
			}
		}
		return false
	})

	rdb, err := redisq.Open(context.Background(), c.redis.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	channel := rdb.Keys().LiveChannel("emb-1")
	subscribed := func() bool {
		r := rdb.Redis()
		m, err := r.Do(context.Background(), r.B().PubsubNumsub().Channel(channel).Build()).AsIntMap()
		return err == nil && m[channel] > 0
	}

	cfg := f.config()
	cfg["opToken"] = opTok
	cfg["pageURL"] = origin + "/#gateway=" + base + "&token=" + opTok + "&devices=emb-1,emb-b"
	restarted := false
	runNode(t, "embed.js", cfg, func(what string) error {
		switch what {
		case "gateway-restart":
			f.gw.kill9()
			checkFor(t, 5*time.Second, "the killed gateway's subscription gone", func() bool { return !subscribed() })
			f.gw = c.start("gw2", append([]string{"gateway", "--listen", f.addr, "--id", "gw2"}, gwArgs...)...)
			checkFor(t, 20*time.Second, "gw2 ready", func() bool {
				resp, err := http.Get(base + "/readyz")
				if err != nil {
					return false
				}
				resp.Body.Close()
				return resp.StatusCode == 200
			})
			restarted = true
			return nil
		case "live-subscribed":
			// Only a viewer's subscribe makes the new gateway listen on the
			// device's channel: the page has resubscribed by itself.
			deadline := time.Now().Add(15 * time.Second)
			for !subscribed() {
				if time.Now().After(deadline) {
					return fmt.Errorf("no gateway subscribed to %s after the restart", channel)
				}
				time.Sleep(50 * time.Millisecond)
			}
			return nil
		}
		return fmt.Errorf("unknown need %q", what)
	})
	if !restarted {
		t.Fatal("the gateway was never restarted")
	}
}

// TestLiveClientModule runs the embeddable client's unit test in node (a
// fake WebSocket and timers: what it resends after each reconnect, its
// backoff, when it stops). It needs node only.
func TestLiveClientModule(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the client's unit test needs node")
		}
		t.Skip("the client's unit test needs node")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("test", "client-unit.mjs"))
	cmd.Dir = webDir
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("node test/client-unit.mjs: %v\n%s", err, out)
	}
}

// TestShareLinkInBrowser: an operator's share link of one device, opened in
// a fresh browser profile, shows that device live and nothing else, reaches
// no device or API, and ends after revocation and after a 2 s expiry
// (web/test/share.js). A small system of its own: no simulated fleet.
func TestShareLinkInBrowser(t *testing.T) {
	needBrowser(t)
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--tiles", "none")
	c.start("worker1", "worker")
	opTok := lastLine(c.cli("user", "add", "opa", "--role", "operator", "--groups", "ga", "--password", "opa-secret"))
	tokens := map[string]string{}
	for _, id := range []string{"courier", "other"} {
		tokens[id] = lastLine(c.cli("device", "add", id, "--group", "ga", "--name", "Courier "+id))
	}
	runNode(t, "share.js", map[string]any{"base": base, "opToken": opTok, "opName": "opa", "opPassword": "opa-secret",
		"tokens": tokens, "device": "courier", "other": "other"}, nil)
}

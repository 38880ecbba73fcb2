package chaos

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
)

var fullFlag = flag.Bool("chaos.full", false, "run the full fault suite (minutes): longer faults, more frames, more repetitions")

// full reports whether the full form runs: -chaos.full or DEVTRACK_CHAOS_FULL=1.
func full() bool { return *fullFlag || os.Getenv("DEVTRACK_CHAOS_FULL") == "1" }

func TestMain(m *testing.M) {
	flag.Parse()
	dir, err := os.MkdirTemp("", "devtrack-chaos")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Without -race: the binary's speed matters here, not its own races
	// (the race-enabled e2e tests in cmd/devtrack cover those).
	// DEVTRACK_CHAOS_BINARY runs the suite against a binary built elsewhere
	// (another commit, a release).
	Binary = os.Getenv("DEVTRACK_CHAOS_BINARY")
	if Binary == "" {
		Binary = filepath.Join(dir, "devtrack")
		build := exec.Command("go", "build", "-o", Binary, "../../cmd/devtrack")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build devtrack:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// size holds the knobs that differ between the reduced form (go test ./...)
// and the full form (scripts/chaos).
type size struct {
	devices   int           // devices per fleet
	rate      int           // frames per second, whole fleet
	kills     int           // repetitions of a kill
	outage    time.Duration // length of a stall, partition or store outage
	backlog   int           // frames queued before the worker starts (Redis stall case)
	slow      int           // slow clients
	fdLimit   int           // the flooded gateway's ulimit -n
	redisKill int           // Redis kills per AOF policy
	// stalls are the Redis freezes of the stall case, one after another in
	// the same drain: 6 s is shorter than every client timeout (the worker's
	// 5 s Redis calls aside), 12 s outlasts rueidis's 10 s write timeout, so
	// that calls are abandoned while Redis still holds them.
	stalls []time.Duration
}

func sz() size {
	if full() {
		return size{devices: 50, rate: 3000, kills: 30, outage: 10 * time.Second, backlog: 20000, slow: 2000, fdLimit: 600, redisKill: 3,
			stalls: []time.Duration{6 * time.Second, 12 * time.Second, 20 * time.Second}}
	}
	return size{devices: 10, rate: 800, kills: 5, outage: 6 * time.Second, backlog: 10000, slow: 700, fdLimit: 600, redisKill: 1,
		stalls: []time.Duration{6 * time.Second, 12 * time.Second}}
}

var report = NewReport()

// TestChaos runs every case one after another (never in parallel: the
// timings mean something only on an otherwise idle pipeline) and prints
// the table at the end.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: not in -short")
	}
	t.Cleanup(func() {
		title := "devtrack fault suite, reduced form"
		if full() {
			title = "devtrack fault suite, full form"
		}
		var b strings.Builder
		report.Markdown(&b, title)
		fmt.Print(b.String())
		t.Log(b.String())
		for _, dir := range []string{os.Getenv("DEVTRACK_CHAOS_REPORT_DIR"), os.Getenv("DEVTRACK_ARTIFACTS")} {
			if dir != "" {
				_ = os.MkdirAll(dir, 0o755)
				_ = os.WriteFile(filepath.Join(dir, "chaos.md"), []byte(b.String()), 0o644)
			}
		}
	})
	for _, c := range []struct {
		name string
		run  func(t *testing.T, r *Result)
	}{
		{"1-worker-kill9", caseWorkerKill},
		{"1b-worker-kill9-large-batches", caseWorkerKillLargeBatches},
		{"2-gateway-kill9-same-id", caseGatewayKill},
		{"3-redis-sigstop-backlog", caseRedisStall},
		{"4a-redis-kill9-always", func(t *testing.T, r *Result) { caseRedisKill(t, r, "always") }},
		{"4b-redis-kill9-everysec", func(t *testing.T, r *Result) { caseRedisKill(t, r, "everysec") }},
		{"5a-store-full", caseStoreFull},
		{"5b-store-read-only", caseStoreReadOnly},
		{"6-slow-client-flood", caseSlowClients},
		{"7-two-workers-one-killed", caseTwoWorkers},
		{"8a-partition-gateway-redis", func(t *testing.T, r *Result) { casePartition(t, r, "gateway") }},
		{"8b-partition-worker-redis", func(t *testing.T, r *Result) { casePartition(t, r, "worker") }},
		{"9-postgres-stopped", casePostgresStopped},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &Result{Case: c.name}
			start := time.Now()
			c.run(t, r)
			r.Check()
			r.Note("took %s", time.Since(start).Round(time.Second))
			report.Add(r)
			fmt.Println(r.Line())
			t.Log(r.Line())
			for _, f := range r.Failures {
				t.Error(f)
			}
		})
	}
}

// streamFor streams at rate for d.
func streamFor(f *Fleet, rate int, d time.Duration) {
	stop := f.StreamBackground(rate)
	time.Sleep(d)
	stop()
}

// finish stops the fleets' streams, waits for their acks and verifies.
func finish(t *testing.T, c *Cluster, r *Result, faultEnd time.Time, fleets ...*Fleet) (map[string]time.Time, []string) {
	t.Helper()
	for _, f := range fleets {
		if left := f.WaitAcked(30 * time.Second); left > 0 {
			r.Note("%d frames still unacked 30 s after the last send", left)
		}
	}
	return c.Verify(r, faultEnd, 90*time.Second, fleets...)
}

// 1. The only worker is killed with SIGKILL every 2 s and restarted with the
// same id while devices stream.
func caseWorkerKill(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	args := []string{"--id", "w1", "--heartbeat-ttl", "2s", "--batch", "100"}
	w := c.StartWorker("w1", "", Wrap{}, args...)
	f := c.NewFleet("wk", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	for range s.kills {
		time.Sleep(2 * time.Second)
		w.Kill()
		w = c.StartWorker("w1", "", Wrap{}, args...)
	}
	faultEnd := time.Now()
	time.Sleep(time.Second)
	stop()
	r.Note("%d kills", s.kills)
	finish(t, c, r, faultEnd, f)
}

// 1b. The only worker runs with its default batch (20,000) and is killed
// with SIGKILL while it holds a large part of a backlog (its batch and the
// next, prefetched), then restarted with the same id, which resumes those
// items (one attempt each) before it takes new ones. Each round builds a
// new backlog while the worker is down, and kills only after the restarted
// worker has moved on to new items, so that each item is in hand at one
// kill at most and none may reach the dead letters.
func caseWorkerKillLargeBatches(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	f := c.NewFleet("wl", s.devices)
	f.Connect(c.API)
	keys := redisq.NewKeys("devtrack")
	args := []string{"--id", "w1", "--heartbeat-ttl", "2s"}
	per := 2 * s.backlog / s.devices // frames per device and round
	rounds := max(3, s.kills/3)
	var w *Proc
	for round := range rounds {
		for left := per; left > 0; left -= 500 {
			f.SendAll(min(500, left))
			if n := f.WaitAcked(60 * time.Second); n > 0 {
				t.Fatalf("backlog: %d frames not acked", n)
			}
		}
		pending, err := c.Redis.LLen(keys.Queue())
		if err != nil {
			t.Fatal(err)
		}
		w = c.StartWorker("w1", "", Wrap{}, args...)
		// The restarted worker first stores what it resumed; it takes new
		// items from the ingest list only after that.
		c.WaitFor(30*time.Second, "the worker taking new items", func() error {
			if n, err := c.Redis.LLen(keys.Queue()); err != nil || n >= pending {
				return fmt.Errorf("pending %d of %d (%v)", n, pending, err)
			}
			return nil
		})
		var held int
		c.WaitFor(30*time.Second, "the worker holding a large batch", func() error {
			n, err := c.Redis.LLen(keys.Processing("w1"))
			held = n
			if err == nil && n < 2000 {
				err = fmt.Errorf("holds %d", n)
			}
			return err
		})
		w.Kill()
		r.Note("round %d: killed holding %d of a %d backlog", round+1, held, pending)
	}
	faultEnd := time.Now()
	c.StartWorker("w1", "", Wrap{}, args...)
	streamFor(f, s.rate/4, time.Second)
	finish(t, c, r, faultEnd, f)
}

// 2. The gateway is killed with SIGKILL and restarted with the same --id on
// the same port. Half the devices reconnect and resend what was not acked;
// the other half are gone for good. Once every device has disconnected, none
// may show online (no link left behind by the dead process).
func caseGatewayKill(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	port := c.FreePort()
	gwArgs := []string{"--device-rate", "100000", "--heartbeat-ttl", "2s"}
	gw := c.StartGateway("gw1", port, "", Wrap{}, gwArgs...)
	c.StartWorker("w1", "", Wrap{}, "--heartbeat-ttl", "2s")
	stay := c.NewFleet("gs", s.devices/2)
	gone := c.NewFleet("gg", s.devices-s.devices/2)
	stay.Connect(c.API)
	gone.Connect(c.API)
	c.WaitFor(10*time.Second, "devices connected", func() error {
		for _, d := range append(stay.Devices, gone.Devices...) {
			if !d.Connected() {
				return fmt.Errorf("%s not connected", d.ID)
			}
		}
		return nil
	})
	// The check below means something only if online does show connections.
	c.WaitFor(10*time.Second, "every device online in GET /api/v1/devices", func() error {
		on, err := c.Online()
		if err == nil && len(on) != s.devices {
			err = fmt.Errorf("%d of %d online", len(on), s.devices)
		}
		return err
	})
	stopStay := stay.StreamBackground(s.rate / 2)
	stopGone := gone.StreamBackground(s.rate / 2)
	reps := max(1, s.kills/10)
	var faultEnd time.Time
	for i := range reps {
		time.Sleep(2 * time.Second)
		gw.Kill()
		if i == 0 {
			stopGone()
			gone.Disconnect() // these devices die with the gateway
		}
		time.Sleep(500 * time.Millisecond)
		gw = c.StartGateway("gw1", port, "", Wrap{}, gwArgs...)
		faultEnd = time.Now()
	}
	r.Note("%d kill+restart", reps)
	time.Sleep(2 * time.Second)
	stopStay()
	finish(t, c, r, faultEnd, stay, gone)
	for _, d := range stay.Devices {
		if !d.Connected() {
			r.Fail("%s did not reconnect after the restart", d.ID)
			break
		}
	}
	stay.Disconnect()
	// Links of a gone connection must go: at once for a clean close, and
	// within the heartbeat TTL (2 s) plus a sweep for the dead process's.
	var online []string
	err := poll(15*time.Second, func() error {
		var err error
		online, err = c.Online()
		if err == nil && len(online) > 0 {
			err = fmt.Errorf("online: %v", online)
		}
		return err
	})
	if err != nil {
		r.Fail("15 s after every device disconnected, still shown online: %d devices (%s)", len(online),
			strings.Join(online[:min(4, len(online))], ", "))
	}
}

// 3. A backlog builds while no worker runs; the worker starts, and Redis is
// frozen (SIGSTOP) for the outage mid-drain, then resumed (SIGCONT). Devices
// keep streaming throughout.
func caseRedisStall(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000", "--device-burst", "100000")
	f := c.NewFleet("rs", s.devices)
	f.Connect(c.API)
	per := s.backlog / s.devices
	for left := per; left > 0; left -= 500 {
		f.SendAll(min(500, left))
		if left := f.WaitAcked(60 * time.Second); left > 0 {
			t.Fatalf("backlog: %d frames not acked", left)
		}
	}
	queue := redisq.NewKeys("devtrack").Queue()
	n, err := c.Redis.LLen(queue)
	if err != nil || n < s.backlog*9/10 {
		t.Fatalf("backlog: LLEN %s = %d (%v), want about %d", queue, n, err, s.backlog)
	}
	stop := f.StreamBackground(s.rate / 4)
	c.StartWorker("w1", "", Wrap{}, "--id", "w1", "--batch", "100", "--heartbeat-ttl", "3s")
	var pending int
	c.WaitFor(30*time.Second, "the worker draining", func() error {
		pending, err = c.Redis.LLen(queue)
		if err == nil && pending > n*95/100 {
			err = fmt.Errorf("pending %d of %d", pending, n)
		}
		return err
	})
	var faultEnd time.Time
	for i, stall := range s.stalls {
		if i > 0 {
			// The worker may have drained the first backlog already: build
			// a new one, so that every freeze hits items in the queue.
			f.SendAll(min(500, per))
			c.WaitFor(20*time.Second, "a new backlog", func() error {
				pending, err = c.Redis.LLen(queue)
				if err == nil && pending < min(500, per)*s.devices/4 {
					err = fmt.Errorf("pending %d", pending)
				}
				return err
			})
		}
		c.Redis.Freeze()
		time.Sleep(stall)
		c.Redis.Thaw()
		faultEnd = time.Now()
		r.Note("Redis frozen %s with %d of %d backlog items pending", stall, pending, n)
		if pending == 0 {
			r.Fail("freeze %d came after the drain: the fault missed the backlog", i+1)
		}
	}
	time.Sleep(2 * time.Second)
	stop()
	finish(t, c, r, faultEnd, f)
}

// 4. Redis is killed with SIGKILL mid-stream and restarted from its AOF. With
// appendfsync always nothing acked may be lost. With everysec, acks of about
// the last second (up to 2 s when an fsync lags) before the kill may be lost:
// those are counted and allowed; any older loss fails.
func caseRedisKill(t *testing.T, r *Result, fsync string) {
	s := sz()
	c := NewCluster(t, ClusterOptions{Redis: RedisOptions{Fsync: fsync}})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	c.StartWorker("w1", "", Wrap{}, "--id", "w1", "--heartbeat-ttl", "3s")
	f := c.NewFleet("rk", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	var kills []time.Time
	for range s.redisKill {
		time.Sleep(3 * time.Second)
		c.Redis.Kill()
		kills = append(kills, time.Now())
		time.Sleep(time.Second)
		c.Redis.Start()
	}
	faultEnd := time.Now()
	time.Sleep(3 * time.Second)
	stop()
	acked, missing := finish(t, c, r, faultEnd, f)
	if fsync == "everysec" {
		inWindow := 0
		for _, k := range kills {
			inWindow += MissingAckedBetween(acked, missing, k.Add(-2*time.Second), k)
		}
		r.Allowed = inWindow
		r.Note("everysec window (2 s before each kill): %d acked frames lost, %d lost outside it", inWindow, len(missing)-inWindow)
	}
}

// statusLog counts the HTTP statuses seen per URL by watchStatus (0: no answer).
type statusLog struct {
	mu   sync.Mutex
	seen map[string]map[int]int // url -> status -> count
}

// watchStatus polls each URL every 250 ms until the returned stop is called.
func watchStatus(urls ...string) (stop func() *statusLog) {
	sl := &statusLog{seen: map[string]map[int]int{}}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for _, u := range urls {
		sl.seen[u] = map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				code := Status(u)
				sl.mu.Lock()
				sl.seen[u][code]++
				sl.mu.Unlock()
				select {
				case <-done:
					return
				case <-time.After(250 * time.Millisecond):
				}
			}
		}()
	}
	return func() *statusLog { close(done); wg.Wait(); return sl }
}

func (sl *statusLog) saw(u string, code int) bool { return sl.seen[u][code] > 0 }

// checkReady applies the /readyz rule of the store cases to what was seen
// during the outage.
func checkReady(r *Result, sl *statusLog, who, u string) {
	switch {
	case sl.saw(u, 503):
		r.Note("%s /readyz 503 during the outage", who)
	case sl.saw(u, 404) && !sl.saw(u, 200):
		r.Note("%s has no /readyz (404): not checked", who)
	default:
		r.Fail("%s /readyz never 503 during the outage (seen %v)", who, sl.seen[u])
	}
}

// 5a. The store's file system (a small tmpfs) fills up while devices stream;
// then the space comes back. Nothing is restarted.
func caseStoreFull(t *testing.T, r *Result) {
	s := sz()
	// Room, once the filler is gone, for what the case sends and for the
	// WAL, which grows to 64 MiB between checkpoints (storage/sqlite).
	size := "16m"
	if full() {
		size = "128m"
	}
	dir := Tmpfs(t, size)
	c := NewCluster(t, ClusterOptions{StoreDir: dir})
	port := c.FreePort()
	metrics := fmt.Sprintf("127.0.0.1:%d", c.FreePort())
	c.StartGateway("gw1", port, "", Wrap{}, "--device-rate", "100000")
	w := c.StartWorker("w1", "", Wrap{}, "--id", "w1", "--metrics", metrics)
	f := c.NewFleet("sf", s.devices)
	f.Connect(c.API)
	streamFor(f, s.rate, 2*time.Second)
	f.WaitAcked(20 * time.Second)
	stop := f.StreamBackground(s.rate)
	filler := Fill(t, dir)
	watch := watchStatus(c.API+"/readyz", "http://"+metrics+"/readyz")
	time.Sleep(s.outage)
	sl := watch()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	faultEnd := time.Now()
	time.Sleep(2 * time.Second)
	stop()
	checkReady(r, sl, "gateway", c.API+"/readyz")
	checkReady(r, sl, "worker", "http://"+metrics+"/readyz")
	if n := countInLog(w.Log, "full"); n == 0 {
		r.Fail("the worker's log shows no store error: the disk-full fault did not bite")
	} else {
		r.Note("%d worker log lines mention the full disk", n)
	}
	finish(t, c, r, faultEnd, f)
	if exited, code := w.Exited(); exited {
		r.Fail("the worker exited (%d) during the outage", code)
	}
}

// 5b. The worker is killed and comes back on a store that is read-only (the
// directory bind-mounted read-only in the worker's own mount namespace),
// while devices stream; then the directory is made writable again in that
// namespace, without restarting the worker. (A running process's files cannot
// be remounted read-only from outside: the kernel refuses with EBUSY while
// they are open for writing; so the gateway's store stays writable here, and
// the gateway's /readyz is not part of this case.)
func caseStoreReadOnly(t *testing.T, r *Result) {
	s := sz()
	NeedRoot(t, "read-only store")
	c := NewCluster(t, ClusterOptions{})
	metrics := fmt.Sprintf("127.0.0.1:%d", c.FreePort())
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	w := c.StartWorker("w1", "", Wrap{}, "--id", "w1")
	f := c.NewFleet("ro", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	time.Sleep(2 * time.Second)
	w.Kill()
	w = c.StartWorker("w1-ro", "", Wrap{ReadOnlyAt: c.StoreDir}, "--id", "w1", "--metrics", metrics)
	watch := watchStatus("http://" + metrics + "/readyz")
	time.Sleep(s.outage)
	sl := watch()
	if exited, code := w.Exited(); exited {
		r.Fail("the worker exited (%d) on the read-only store instead of waiting", code)
		w = c.StartWorker("w1", "", Wrap{}, "--id", "w1")
	} else {
		RemountRW(t, w.Pid(), c.StoreDir)
	}
	faultEnd := time.Now()
	time.Sleep(2 * time.Second)
	stop()
	checkReady(r, sl, "worker", "http://"+metrics+"/readyz")
	if n := countInLog(w.Log, "readonly"); n > 0 {
		r.Note("%d worker log lines mention the read-only store", n)
	}
	finish(t, c, r, faultEnd, f)
}

func countInLog(path, word string) int {
	fh, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer fh.Close()
	n := 0
	sc := bufio.NewScanner(fh)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), word) {
			n++
		}
	}
	return n
}

// 6. Hundreds of unauthenticated slow clients (login bodies trickled a byte
// a second, slowloris headers, idle keep-alives) hold connections to a
// gateway whose fd limit is low, while devices keep streaming and new devices
// connect. Devices must still connect and /healthz must answer.
func caseSlowClients(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	port := c.FreePort()
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	gw := c.StartGateway("gw1", port, "", Wrap{FDLimit: s.fdLimit}, "--device-rate", "100000")
	c.StartWorker("w1", "", Wrap{}, "--id", "w1")
	early := c.NewFleet("se", s.devices/2)
	late := c.NewFleet("sl", s.devices-s.devices/2)
	early.Connect(c.API)
	stopEarly := early.StreamBackground(s.rate / 2)

	done := make(chan struct{})
	var wg sync.WaitGroup
	var open atomic.Int64
	for i := range s.slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// From 127.0.0.2-127.0.0.9, hosts other than the devices'
			// and the health checker's (127.0.0.1): 700 clients over 8
			// addresses pass the per-address cap and fill the gateway's
			// whole unauthenticated pool.
			slowClient(addr, fmt.Sprintf("127.0.0.%d", 2+i%8), i%3, done, &open)
		}()
	}
	time.Sleep(2 * time.Second) // let the flood build up
	r.Note("%d slow clients (%d connections open) against ulimit -n %d", s.slow, open.Load(), s.fdLimit)
	var healthFail atomic.Int64
	var healthN atomic.Int64
	hdone := make(chan struct{})
	go func() {
		defer close(hdone)
		for {
			select {
			case <-done:
				return
			case <-time.After(250 * time.Millisecond):
			}
			healthN.Add(1)
			if Status(c.API+"/healthz") != 200 {
				healthFail.Add(1)
			}
		}
	}()
	late.Connect(c.API)
	stopLate := late.StreamBackground(s.rate / 2)
	connectErr := poll(s.outage, func() error {
		for _, d := range late.Devices {
			if !d.Connected() {
				return fmt.Errorf("%s not connected", d.ID)
			}
		}
		return nil
	})
	time.Sleep(max(0, s.outage-2*time.Second))
	close(done)
	wg.Wait()
	<-hdone
	faultEnd := time.Now()
	if connectErr != nil {
		r.Fail("devices could not connect during the flood (%v)", connectErr)
	}
	if n := healthFail.Load(); n > 0 {
		r.Fail("/healthz failed %d of %d times during the flood", n, healthN.Load())
	}
	if n := countInLog(gw.Log, "too many open files"); n > 0 {
		r.Fail("the gateway ran out of file descriptors (%d log lines)", n)
	}
	time.Sleep(time.Second)
	stopEarly()
	stopLate()
	finish(t, c, r, faultEnd, early, late)
}

// slowClient holds one slow connection at a time until done, reconnecting
// a second after the gateway closes it (as slowloris tools do): kind 0
// trickles a login body, kind 1 trickles request headers, kind 2 sends one
// keep-alive request and then idles.
func slowClient(addr, from string, kind int, done chan struct{}, open *atomic.Int64) {
	dialer := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	for first := true; ; first = false {
		wait := time.Second
		if first {
			wait = 0
		}
		select {
		case <-done:
			return
		case <-time.After(wait):
		}
		conn, err := dialer.Dial("tcp", addr)
		if err != nil {
			select {
			case <-done:
				return
			case <-time.After(200 * time.Millisecond):
				continue
			}
		}
		open.Add(1)
		func() {
			defer open.Add(-1)
			defer conn.Close()
			go func() { <-done; conn.Close() }()
			closed := make(chan struct{})
			var err error
			switch kind {
			case 0:
				_, err = fmt.Fprintf(conn, "POST /api/v1/login HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{", addr)
			case 1:
				_, err = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\n", addr)
			case 2:
				_, err = fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n", addr)
			}
			// Read (and drop) whatever the server sends; a close ends the connection.
			go func() {
				defer close(closed)
				buf := make([]byte, 4096)
				for {
					if _, err := conn.Read(buf); err != nil {
						return
					}
				}
			}()
			for err == nil {
				select {
				case <-done:
					return
				case <-closed:
					return
				case <-time.After(time.Second):
				}
				switch kind {
				case 0:
					_, err = conn.Write([]byte(" ")) // one more byte of the body
				case 1:
					_, err = conn.Write([]byte("X")) // one more byte of a header line
				}
			}
		}()
	}
}

// 7. Two workers share the queue; one of them is killed with SIGKILL every
// 2 s and restarted under a new id, so the survivor must recover the dead
// one's in-flight items once its heartbeat expires.
func caseTwoWorkers(t *testing.T, r *Result) {
	s := sz()
	c := NewCluster(t, ClusterOptions{})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000")
	c.StartWorker("w-stable", "", Wrap{}, "--id", "w-stable", "--heartbeat-ttl", "2s", "--batch", "100")
	w := c.StartWorker("w-victim", "", Wrap{}, "--id", "w-victim-0", "--heartbeat-ttl", "2s", "--batch", "100")
	f := c.NewFleet("tw", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	for i := range s.kills {
		time.Sleep(2 * time.Second)
		w.Kill()
		w = c.StartWorker("w-victim", "", Wrap{}, "--id", fmt.Sprintf("w-victim-%d", i+1), "--heartbeat-ttl", "2s", "--batch", "100")
	}
	faultEnd := time.Now()
	time.Sleep(time.Second)
	stop()
	r.Note("%d kills of the second worker", s.kills)
	finish(t, c, r, faultEnd, f)
}

// 8. Redis runs in its own network namespace. The link from the gateway (root
// namespace) or from the worker (another namespace) to Redis is cut with ip
// link set down for the outage, then restored, while devices stream.
func casePartition(t *testing.T, r *Result, cut string) {
	s := sz()
	p := NewPartition(t)
	c := NewCluster(t, ClusterOptions{Redis: RedisOptions{Binds: []string{p.RedisForRoot, p.RedisForW}, NetNS: p.R}})
	c.StartGateway("gw1", c.FreePort(), "", Wrap{}, "--device-rate", "100000", "--heartbeat-ttl", "3s")
	c.StartWorker("w1", c.Redis.AddrOn(1), Wrap{NetNS: p.W}, "--id", "w1", "--heartbeat-ttl", "3s")
	f := c.NewFleet("np", s.devices)
	f.Connect(c.API)
	stop := f.StreamBackground(s.rate)
	time.Sleep(2 * time.Second)
	reps := max(1, s.kills/10)
	var faultEnd time.Time
	for range reps {
		cutAt := time.Now()
		var restoreAt time.Time // the link is still down before this
		if cut == "gateway" {
			p.CutRoot(false)
			time.Sleep(s.outage)
			restoreAt = time.Now()
			p.CutRoot(true)
		} else {
			p.CutW(false)
			time.Sleep(s.outage - time.Second)
			// Evidence that the cut bit: the queue grows while the worker is cut off.
			if q, err := c.Queue(); err == nil {
				r.Note("pending %d just before the link came back", q.Pending)
			}
			time.Sleep(time.Second)
			p.CutW(true)
		}
		faultEnd = time.Now()
		if cut == "gateway" {
			// Evidence that the cut bit: acks stop (after the 1.5 s push
			// timeout) until the link is restored. (Counting up to
			// faultEnd, after the restore, once counted 1,174 acks of the
			// burst that follows it.)
			n := 0
			for _, at := range f.Acked() {
				if at.After(cutAt.Add(2*time.Second)) && at.Before(restoreAt) {
					n++
				}
			}
			r.Note("%d acks in the cut after its first 2 s", n)
		}
		time.Sleep(2 * time.Second)
	}
	stop()
	r.Note("%s<->redis link down %s, %d times", cut, s.outage, reps)
	finish(t, c, r, faultEnd, f)
}

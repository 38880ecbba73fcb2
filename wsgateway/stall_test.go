package wsgateway_test

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// answerBound is what the contract promises a device or API client during
// a Redis outage: an answer (ack, unavailable, 503) within 2 s. Measured
// with a little slack for a loaded CI machine; it is a bound, not a benchmark.
const answerBound = 2500 * time.Millisecond

// answers records when each frame id was sent and answered, and how.
type answers struct {
	mu     sync.Mutex
	sent   map[string]time.Time
	took   map[string]time.Duration
	result map[string]string // "ack" or "error:<code>"
}

func newAnswers() *answers {
	return &answers{sent: map[string]time.Time{}, took: map[string]time.Duration{}, result: map[string]string{}}
}

func (a *answers) send(d *devConn, id string) {
	a.mu.Lock()
	a.sent[id] = time.Now()
	a.mu.Unlock()
	d.send(loc(id, 1, 1))
}

// readAll reads the device's frames until the connection is closed.
func (a *answers) readAll(ws *websocket.Conn) {
	for {
		_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
		_, b, err := ws.ReadMessage()
		if err != nil {
			return
		}
		var r reply
		_ = json.Unmarshal(b, &r)
		now := time.Now()
		ids, res := r.IDs, "ack"
		if r.Type == "error" {
			ids, res = []string{r.ID}, "error:"+r.Code
		}
		a.mu.Lock()
		for _, id := range ids {
			a.took[id] = now.Sub(a.sent[id])
			a.result[id] = res
		}
		a.mu.Unlock()
	}
}

func (a *answers) get(id string) (string, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.result[id], a.took[id]
}

// During a Redis stall (SIGSTOP: connections open, nothing answered) every
// frame and request is answered within 2 s, and after it the same socket's
// frames are acked again without reconnecting.
func TestRedisStallEveryAnswerWithinTwoSeconds(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	late := e.addDevice("d2", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	ans := newAnswers()
	readerDone := make(chan struct{})
	go func() { defer close(readerDone); ans.readAll(d.ws) }()
	t.Cleanup(func() { d.ws.Close(); <-readerDone })
	ans.send(d, "warm")
	checkFor(t, 5*time.Second, "ack before the stall", func() bool { r, _ := ans.get("warm"); return r == "ack" })

	e.redis.Pause()
	const stall = 4 * time.Second
	stallEnd := time.Now().Add(stall)

	// API clients and a new device's handshake, one after another for the
	// whole stall, each timed.
	type call struct {
		what   string
		status int
		took   time.Duration
	}
	var mu sync.Mutex
	var calls []call
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) call {
		req, _ := http.NewRequest("GET", e.base+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		start := time.Now()
		resp, err := client.Do(req)
		c := call{what: path, took: time.Since(start)}
		if err == nil {
			resp.Body.Close()
			c.status = resp.StatusCode
		}
		return c
	}
	handshake := func(string) call {
		start := time.Now()
		ws, resp, err := e.dial(late)
		c := call{what: "device handshake", took: time.Since(start)}
		if err == nil {
			ws.Close()
			c.status = 101
		} else if resp != nil {
			c.status = resp.StatusCode
		}
		return c
	}
	for _, p := range []string{"/api/v1/queue", "/api/v1/devices", "/readyz", ""} {
		do := get
		if p == "" {
			do = handshake
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(stallEnd.Add(-answerBound)) {
				c := do(p)
				mu.Lock()
				calls = append(calls, c)
				mu.Unlock()
			}
		}()
	}

	// The device keeps sending, without waiting for answers, as devices do.
	var during []string
	pace := time.NewTicker(150 * time.Millisecond) // the device's own pace
	for i := 0; time.Now().Before(stallEnd.Add(-answerBound)); i++ {
		id := "s" + strconv.Itoa(i)
		ans.send(d, id)
		during = append(during, id)
		<-pace.C
	}
	pace.Stop()
	wg.Wait()
	checkFor(t, answerBound+time.Second, "an answer to every frame sent during the stall", func() bool {
		for _, id := range during {
			if r, _ := ans.get(id); r == "" {
				return false
			}
		}
		return true
	})
	<-time.After(time.Until(stallEnd)) // the fault lasts its full length
	e.redis.Resume()

	var worst time.Duration
	for _, id := range during {
		r, took := ans.get(id)
		worst = max(worst, took)
		if r != "ack" && r != "error:unavailable" {
			t.Errorf("frame %s during the stall: %s, want ack or unavailable", id, r)
		}
		if took > answerBound {
			t.Errorf("frame %s answered %s after it was sent (%s)", id, took.Round(time.Millisecond), r)
		}
	}
	t.Logf("%d frames during a %s stall, slowest answer %s", len(during), stall, worst.Round(time.Millisecond))
	worstCall := map[string]time.Duration{}
	for _, c := range calls {
		worstCall[c.what] = max(worstCall[c.what], c.took)
		if c.took > answerBound {
			t.Errorf("%s answered %d after %s", c.what, c.status, c.took.Round(time.Millisecond))
		}
		if c.status != http.StatusServiceUnavailable && c.what != "/api/v1/devices" {
			t.Errorf("%s during the stall: status %d, want 503", c.what, c.status)
		}
		if c.status == 0 {
			t.Errorf("%s got no answer (%s)", c.what, c.took.Round(time.Millisecond))
		}
	}
	statuses := map[string]map[int]int{}
	for _, c := range calls {
		if statuses[c.what] == nil {
			statuses[c.what] = map[int]int{}
		}
		statuses[c.what][c.status]++
	}
	t.Logf("slowest answers during the stall: %v; statuses %v", worstCall, statuses)

	// After the stall: the same socket, every frame acked.
	var after []string
	for i := range 20 {
		id := "a" + strconv.Itoa(i)
		ans.send(d, id)
		after = append(after, id)
	}
	checkFor(t, 5*time.Second, "every frame sent after the stall answered", func() bool {
		for _, id := range after {
			if r, _ := ans.get(id); r == "" {
				return false
			}
		}
		return true
	})
	for _, id := range after {
		if r, took := ans.get(id); r != "ack" {
			t.Errorf("frame %s after the stall: %s after %s, want ack", id, r, took)
		}
	}
}

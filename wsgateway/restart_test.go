package wsgateway_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/redis/rueidis"
)

// presenceRecorder collects the presence messages published on live channels.
type presenceRecorder struct {
	mu      sync.Mutex
	offline map[string]int
}

func (e *env) recordPresence() *presenceRecorder {
	e.t.Helper()
	pr := &presenceRecorder{offline: map[string]int{}}
	r := e.rdb.Redis()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.Receive(ctx, r.B().Psubscribe().Pattern(e.rdb.Keys().LivePattern()).Build(), func(m rueidis.PubSubMessage) {
			var p struct {
				Type, Device string
				Online       bool
			}
			if json.Unmarshal([]byte(m.Message), &p) == nil && p.Type == "presence" && !p.Online {
				pr.mu.Lock()
				pr.offline[p.Device]++
				pr.mu.Unlock()
			}
		})
	}()
	e.t.Cleanup(func() { cancel(); <-done })
	checkFor(e.t, 5*time.Second, "presence subscription", func() bool {
		n, err := r.Do(context.Background(), r.B().PubsubNumpat().Build()).AsInt64()
		return err == nil && n > 0
	})
	return pr
}

func (pr *presenceRecorder) wentOffline(device string) bool {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.offline[device] > 0
}

// A gateway killed -9 leaves its links and a heartbeat key that lives on for
// the TTL. Restarted with the same id, it must not adopt them: it sweeps
// them at start (not a TTL later), publishing offline presence, while a
// device that reconnected already keeps its new link.
func TestRestartWithTheSameIDSweepsThePredecessorsLinksAtOnce(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ID: "gw-other"})
	e.stop()
	ctx := context.Background()
	r := e.rdb.Redis()
	pr := e.recordPresence()
	// What a killed gw1 leaves: links of its instance, and of the format
	// before instances (id only), each with a heartbeat key far from expiry.
	dead := map[string]string{"ghost1": "gw1~0badc0ffee#1", "ghost2": "gw1~0badc0ffee#2", "legacy": "gw1#7"}
	for dev, link := range dead {
		if _, err := e.rdb.SetLink(ctx, dev, link); err != nil {
			t.Fatal(err)
		}
	}
	for _, inst := range []string{"gw1~0badc0ffee", "gw1"} {
		if err := r.Do(ctx, r.B().Set().Key(e.rdb.Keys().GatewayAlive(inst)).Value("1").Ex(time.Minute).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	// A live gateway of another id keeps its links.
	if _, err := e.rdb.SetLink(ctx, "elsewhere", "gw2~1234567890#1"); err != nil {
		t.Fatal(err)
	}
	if err := r.Do(ctx, r.B().Set().Key(e.rdb.Keys().GatewayAlive("gw2~1234567890")).Value("1").Ex(time.Minute).Build()).Error(); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	e.startGateway(wsgateway.Config{ID: "gw1", HeartbeatTTL: time.Minute})
	checkFor(t, 2*time.Second, "predecessor's links swept", func() bool {
		return e.link("ghost1") == "" && e.link("ghost2") == "" && e.link("legacy") == ""
	})
	t.Logf("swept %s after start (heartbeat TTL 1m)", time.Since(start).Round(time.Millisecond))
	checkFor(t, 2*time.Second, "offline presence of each swept device", func() bool {
		return pr.wentOffline("ghost1") && pr.wentOffline("ghost2") && pr.wentOffline("legacy")
	})
	if e.link("elsewhere") == "" {
		t.Fatal("the link of a live gateway of another id was swept")
	}
	if n, err := r.Do(ctx, r.B().Exists().Key(e.rdb.Keys().GatewayAlive("gw1~0badc0ffee")).Build()).AsInt64(); err != nil || n != 0 {
		t.Fatalf("predecessor's heartbeat key: exists=%d %v, want dropped", n, err)
	}

	// The device comes back: a working link of the new instance, and a
	// command reaches it.
	d := e.mustDial(e.addDevice("ghost1", "g"))
	if v := e.link("ghost1"); !strings.HasPrefix(v, e.gw.Instance()+"#") || e.gw.Instance() == "gw1~0badc0ffee" {
		t.Fatalf("reconnected link %q, want one of instance %s", v, e.gw.Instance())
	}
	admin := e.addUser("root", storage.RoleAdmin)
	if status, body := e.post(admin, "/api/v1/devices/ghost1/commands", `{"name":"beep","args":{"n":1}}`); status != 202 {
		t.Fatalf("command: %d %s", status, body)
	}
	if got := d.read(); got.Type != "command" || got.Name != "beep" {
		t.Fatalf("device got %+v, want the beep command", got)
	}
	d.send(loc("back", 1, 1))
	if got := d.read(); got.Type != "ack" {
		t.Fatalf("frame after reconnect: %+v", got)
	}
}

package wsgateway_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

func strconvI(n int64) string { return strconv.FormatInt(n, 10) }

func (e *env) link(device string) string {
	e.t.Helper()
	v, err := e.rdb.Link(context.Background(), device)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

func TestLinkPresentWhileConnectedAndGoneAfterClose(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ID: "gw-a"})
	d := e.mustDial(e.addDevice("d1", "g"))
	if v := e.link("d1"); !strings.HasPrefix(v, e.gw.Instance()+"#") || !strings.HasPrefix(v, "gw-a~") {
		t.Fatalf("link while connected = %q, want %s#...", v, e.gw.Instance())
	}
	d.ws.Close()
	checkFor(t, 5*time.Second, "link removed after close", func() bool { return e.link("d1") == "" })
}

func TestNewerConnectionReplacesOlder(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ID: "gw-a"})
	tok := e.addDevice("d1", "g")
	old := e.mustDial(tok)
	oldLink := e.link("d1")
	newer := e.mustDial(tok)
	newLink := e.link("d1")
	if newLink == oldLink || newLink == "" {
		t.Fatalf("link not replaced: %q -> %q", oldLink, newLink)
	}
	_ = old.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := old.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4000 {
		t.Fatalf("older connection: want close 4000, got %v", err)
	}
	// The older connection's close must not remove the newer one's entry.
	time.Sleep(200 * time.Millisecond) // let the old reader's cleanup run; nothing to poll for
	if v := e.link("d1"); v != newLink {
		t.Fatalf("older close removed the newer link: %q, want %q", v, newLink)
	}
	newer.send(loc("n1", 1, 1))
	if r := newer.read(); r.Type != "ack" {
		t.Fatalf("newer connection: want ack, got %+v", r)
	}
}

func TestLinksOfADeadGatewayAreSwept(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ID: "gw-a", HeartbeatTTL: 600 * time.Millisecond})
	ctx := context.Background()
	// A gateway that died without cleaning up: links but no heartbeat.
	if _, err := e.rdb.SetLink(ctx, "ghost", "gw-dead#1"); err != nil {
		t.Fatal(err)
	}
	// A live device of this gateway must survive the sweep.
	e.mustDial(e.addDevice("d1", "g"))
	checkFor(t, 5*time.Second, "dead gateway's link swept", func() bool { return e.link("ghost") == "" })
	if v := e.link("d1"); !strings.HasPrefix(v, e.gw.Instance()+"#") {
		t.Fatalf("live link swept too: %q", v)
	}
}

func TestLinksAreAssertedAgainAfterRedisLosesThem(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ID: "gw-a", HeartbeatTTL: 600 * time.Millisecond})
	e.mustDial(e.addDevice("d1", "g"))
	want := e.link("d1")
	// Simulate a Redis restart without persistence.
	if err := e.rdb.Redis().Do(context.Background(), e.rdb.Redis().B().Flushall().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	checkFor(t, 5*time.Second, "link asserted again", func() bool { return e.link("d1") == want })
}

// A stop that lands while a heartbeat waits on Redis cuts that beat short:
// an operator stopping the gateway must not read that as a fault.
func TestAStopDuringAHeartbeatLogsNoWarning(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	// Beats every 300 ms. Redis stays frozen for less than the TTL, so the
	// heartbeat key never expires meanwhile, and for less than the client's
	// own liveness checks, which would drop the connection.
	e := newEnvLogged(t, wsgateway.Config{ID: "gw-a", HeartbeatTTL: 900 * time.Millisecond, RedisTimeout: 5 * time.Second}, zap.New(core))
	e.redis.Pause()
	time.Sleep(350 * time.Millisecond) // one beat waits on Redis now
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond) // the stop cancels the waiting beat; nothing to poll for
	e.redis.Resume()
	<-stopped
	for _, l := range logs.All() {
		t.Errorf("logged at a stop: %s %s %v", l.Level, l.Message, l.ContextMap())
	}
}

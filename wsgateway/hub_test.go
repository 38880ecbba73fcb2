package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// numsub is how many subscribers Redis counts on the device's live channel.
func (e *env) numsub(device string) int64 {
	e.t.Helper()
	n, err := e.numsubOf(device)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) numsubOf(device string) (int64, error) {
	r := e.rdb.Redis()
	ch := e.rdb.Keys().LiveChannel(device)
	m, err := r.Do(context.Background(), r.B().PubsubNumsub().Channel(ch).Build()).AsIntMap()
	return m[ch], err
}

// A viewer that leaves ends the subscriptions only it held; one it shares
// with another viewer stays, and that viewer still gets the device's
// messages.
func TestViewerLeavingDropsOnlyItsSubscriptions(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	for _, d := range []string{"d1", "d2", "d3"} {
		e.addDevice(d, "g")
	}
	tok := e.addUser("olga", storage.RoleOperator, "g")
	a, b := e.dialLive(tok), e.dialLive(tok)
	_ = a.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d1", "d2"}})
	_ = b.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d2", "d3"}})
	if m := readLive(t, a); m.Type != "snapshot" {
		t.Fatalf("a: %s, want its snapshot", m.Raw)
	}
	if m := readLive(t, b); m.Type != "snapshot" {
		t.Fatalf("b: %s, want its snapshot", m.Raw)
	}
	for _, d := range []string{"d1", "d2", "d3"} {
		e.subscribed(d)
	}
	if n := e.metric("devtrack_gateway_live_devices_subscribed"); n != 3 {
		t.Fatalf("devtrack_gateway_live_devices_subscribed %v, want 3", n)
	}

	a.Close()
	checkFor(t, 5*time.Second, "d1's subscription to end", func() bool { return e.numsub("d1") == 0 })
	if n := e.metric("devtrack_gateway_live_devices_subscribed"); n != 2 {
		t.Fatalf("devtrack_gateway_live_devices_subscribed %v after a left, want 2", n)
	}
	if n2, n3 := e.numsub("d2"), e.numsub("d3"); n2 != 1 || n3 != 1 {
		t.Fatalf("after a left: subscribers d2 %d, d3 %d; want 1 each (b watches both)", n2, n3)
	}
	e.publish("d2", "still", 0)
	if m := readLive(t, b); m.Type != "location" || m.Device != "d2" || m.ID != "still" {
		t.Fatalf("b after a left: %s, want d2's location", m.Raw)
	}

	_ = b.WriteJSON(map[string]any{"type": "unsubscribe", "devices": []string{"d2"}})
	checkFor(t, 5*time.Second, "d2's subscription to end", func() bool { return e.numsub("d2") == 0 })
	b.Close()
	checkFor(t, 5*time.Second, "d3's subscription to end", func() bool { return e.numsub("d3") == 0 })
}

// A device watched again right after its last viewer left is subscribed
// anew, and the old subscription's UNSUBSCRIBE does not end the new one.
func TestViewerRejoiningRightAfterTheLastLeftGetsMessages(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("d1", "g")
	tok := e.addUser("olga", storage.RoleOperator, "g")
	for i := range 20 {
		old := e.dialLive(tok)
		_ = old.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d1"}})
		if m := readLive(t, old); m.Type != "snapshot" {
			t.Fatalf("round %d, first viewer: %s, want its snapshot", i, m.Raw)
		}
		old.Close()
		ws := e.dialLive(tok)
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d1"}})
		if m := readLive(t, ws); m.Type != "snapshot" {
			t.Fatalf("round %d, second viewer: %s, want its snapshot", i, m.Raw)
		}
		id := fmt.Sprint("r", i)
		e.publish("d1", id, 0)
		if m := readLive(t, ws); m.Type != "location" || m.ID != id {
			t.Fatalf("round %d, second viewer: %s, want location %s", i, m.Raw, id)
		}
		ws.Close()
	}
	checkFor(t, 5*time.Second, "d1's subscription to end", func() bool { return e.numsub("d1") == 0 })
}

// After Redis restarts, the hub subscribes again to every watched device on
// a new connection, sends their viewers a fresh snapshot (what was
// published meanwhile is lost) and delivers again; a device watched only
// after the restart is subscribed too.
func TestViewersGetASnapshotAndMessagesAfterARedisRestart(t *testing.T) {
	core, logs := observer.New(zap.WarnLevel)
	e := newEnvLogged(t, wsgateway.Config{}, zap.New(core))
	e.addDevice("d1", "g")
	e.addDevice("d2", "g")
	e.addDevice("d3", "g")
	tok := e.addUser("olga", storage.RoleOperator, "g")
	ws := e.dialLive(tok)
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d1", "d2"}})
	if m := readLive(t, ws); m.Type != "snapshot" {
		t.Fatalf("%s, want the snapshot", m.Raw)
	}
	e.subscribed("d1")
	e.subscribed("d2")

	e.redis.Kill()
	e.redis.Restart()
	renewed := map[string]bool{}
	for len(renewed) < 2 {
		m := readLive(t, ws)
		var snap struct {
			Type    string `json:"type"`
			Devices []struct {
				Device string `json:"device"`
			} `json:"devices"`
		}
		_ = json.Unmarshal([]byte(m.Raw), &snap)
		if snap.Type != "snapshot" {
			t.Fatalf("after the restart: %s, want a snapshot of d1 and d2", m.Raw)
		}
		for _, d := range snap.Devices {
			renewed[d.Device] = true
		}
	}
	if !renewed["d1"] || !renewed["d2"] || len(renewed) != 2 {
		t.Fatalf("renewed snapshots of %v, want d1 and d2", renewed)
	}
	// The test's own client may still hold connections Redis's restart
	// broke (the first command on each fails): publish through a new one.
	fresh, err := redisq.Open(context.Background(), e.redis.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	publish := func(device, id string) {
		t.Helper()
		payload := fmt.Sprintf(`{"type":"location","device":%q,"id":%q,"ts":1,"received_at":1,"data":{"lat":1,"lng":1}}`, device, id)
		msg := redisq.LiveMessage{Device: device, IsLocation: true, TS: 1, ReceivedAt: 1, Payload: []byte(payload)}
		if err := fresh.PublishLive(context.Background(), []redisq.LiveMessage{msg}); err != nil {
			t.Fatal(err)
		}
	}
	publish("d2", "after")
	if m := readLive(t, ws); m.Type != "location" || m.Device != "d2" || m.ID != "after" {
		t.Fatalf("after the restart: %s, want d2's location", m.Raw)
	}
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d3"}})
	if m := readLive(t, ws); m.Type != "snapshot" || !strings.Contains(m.Raw, `"d3"`) {
		t.Fatalf("%s, want d3's snapshot", m.Raw)
	}
	publish("d3", "new")
	if m := readLive(t, ws); m.Type != "location" || m.Device != "d3" || m.ID != "new" {
		t.Fatalf("%s, want d3's location", m.Raw)
	}
	if n := logs.FilterMessageSnippet("live subscriptions: Redis connection lost").Len(); n != 1 {
		t.Fatalf("%d log lines about the lost live connection, want 1 for one restart", n)
	}
}

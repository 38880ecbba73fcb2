package wsgateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

type liveMsg struct {
	Type    string   `json:"type"`
	Device  string   `json:"device"`
	ID      string   `json:"id"`
	Code    string   `json:"code"`
	Devices []string `json:"devices"`
	Raw     string   `json:"-"`
}

func (e *env) dialLive(tok string) *websocket.Conn {
	e.t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live", http.Header{"Authorization": {"Bearer " + tok}})
	if err != nil {
		e.t.Fatalf("dial live: %v", err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return ws
}

func readLive(t *testing.T, ws *websocket.Conn) liveMsg {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("read live: %v", err)
	}
	var m liveMsg
	_ = json.Unmarshal(b, &m)
	m.Raw = string(b)
	return m
}

func (e *env) publish(device, id string, pad int) {
	e.t.Helper()
	payload := fmt.Sprintf(`{"type":"location","device":%q,"id":%q,"ts":%d,"received_at":%d,"data":{"lat":1,"lng":1,"pad":%q}}`,
		device, id, time.Now().UnixMilli(), time.Now().UnixMilli(), strings.Repeat("x", pad))
	err := e.rdb.PublishLive(context.Background(), []redisq.LiveMessage{{Device: device, Payload: []byte(payload), IsLocation: true}})
	if err != nil {
		e.t.Fatal(err)
	}
}

// subscribed waits until the gateway holds a subscription to the device's channel.
func (e *env) subscribed(device string) {
	e.t.Helper()
	checkFor(e.t, 5*time.Second, "subscription to "+device, func() bool {
		n, err := e.numsubOf(device)
		return err == nil && n > 0
	})
}

func TestViewerSeesOnlyItsGroups(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "group-a")
	e.addDevice("b1", "group-b")
	opA := e.addUser("alice", storage.RoleOperator, "group-a")
	if _, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live", nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("live without token: %v", err)
	}
	ws := e.dialLive(opA)
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	snap := readLive(t, ws)
	if snap.Type != "snapshot" || !strings.Contains(snap.Raw, `"a1"`) || strings.Contains(snap.Raw, `"b1"`) {
		t.Fatalf("snapshot %s: want a1 only", snap.Raw)
	}
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"b1"}})
	if m := readLive(t, ws); m.Type != "error" || m.Code != "forbidden" || len(m.Devices) != 1 || m.Devices[0] != "b1" {
		t.Fatalf("subscribe b1: %s, want forbidden", m.Raw)
	}
	if m := readLive(t, ws); m.Type != "snapshot" || strings.Contains(m.Raw, `"b1"`) {
		t.Fatalf("after a forbidden subscribe: %s", m.Raw)
	}
	e.subscribed("a1")
	e.publish("b1", "secret", 0)
	e.publish("a1", "visible", 0)
	if m := readLive(t, ws); m.Type != "location" || m.Device != "a1" || m.ID != "visible" {
		t.Fatalf("live: %s, want a1's location and never b1's", m.Raw)
	}
}

func TestSlowViewerDoesNotDelayOthers(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	slow := e.dialLive(admin) // subscribes, then never reads again
	_ = slow.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"a1"}})
	fast := e.dialLive(admin)
	_ = fast.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"a1"}})
	if m := readLive(t, fast); m.Type != "snapshot" {
		t.Fatalf("fast viewer: %s", m.Raw)
	}
	e.subscribed("a1")
	// Enough data to fill the slow viewer's socket buffers and queue many times.
	const n = 3000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range n {
			e.publish("a1", fmt.Sprintf("m%d", i), 2000)
		}
	}()
	got := 0
	last := ""
	for last != fmt.Sprintf("m%d", n-1) {
		m := readLive(t, fast) // fails if the fast viewer stalls for 5 s
		if m.Type == "location" {
			got++
			last = m.ID
		}
	}
	<-done
	if got < n/10 {
		t.Fatalf("fast viewer got %d of %d messages", got, n)
	}
}

func TestViewersAreClosedWhenTheGatewayStops(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	if m := readLive(t, ws); m.Type != "snapshot" {
		t.Fatalf("want snapshot, got %s", m.Raw)
	}
	e.stop()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Fatalf("want close 1001 at gateway shutdown, got %v", err)
	}
}

func TestViewerSeesPresence(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addDevice("a1", "g")
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"a1"}})
	if m := readLive(t, ws); m.Type != "snapshot" || !strings.Contains(m.Raw, `"online":false`) {
		t.Fatalf("snapshot: %s, want a1 offline", m.Raw)
	}
	e.subscribed("a1")
	d := e.mustDial(tok)
	if m := readLive(t, ws); m.Type != "presence" || !strings.Contains(m.Raw, `"online":true`) {
		t.Fatalf("after connect: %s, want presence online", m.Raw)
	}
	d.ws.Close()
	if m := readLive(t, ws); m.Type != "presence" || !strings.Contains(m.Raw, `"online":false`) {
		t.Fatalf("after close: %s, want presence offline", m.Raw)
	}
}

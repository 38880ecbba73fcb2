package wsgateway_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

type snapshotMsg struct {
	Type    string `json:"type"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Devices []struct {
		Device string `json:"device"`
	} `json:"devices"`
}

func readSnapshot(t *testing.T, ws *websocket.Conn) snapshotMsg {
	t.Helper()
	m := readLive(t, ws)
	var s snapshotMsg
	if err := json.Unmarshal([]byte(m.Raw), &s); err != nil {
		t.Fatalf("live message %s: %v", m.Raw, err)
	}
	return s
}

func subscribe(t *testing.T, ws *websocket.Conn, devices ...string) {
	t.Helper()
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "devices": devices}); err != nil {
		t.Fatal(err)
	}
}

// 10,000 copies of one id are one device: one snapshot entry, not 10,000.
func TestViewerDuplicateIDsGiveOneSnapshotEntry(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "g")
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	ids := make([]string, 10_000)
	for i := range ids {
		ids[i] = "a1"
	}
	subscribe(t, ws, append(ids, "", "a1")...)
	s := readSnapshot(t, ws)
	if s.Type != "snapshot" || len(s.Devices) != 1 || s.Devices[0].Device != "a1" {
		t.Fatalf("snapshot of 10,000 x a1: type %q, %d entries; want one entry for a1", s.Type, len(s.Devices))
	}
}

// A socket watches at most ViewerMaxDevices distinct devices; a subscribe
// past it is refused whole with a too_many_devices error.
func TestViewerDeviceCap(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ViewerMaxDevices: 3})
	for _, id := range []string{"d1", "d2", "d3", "d4"} {
		e.addDevice(id, "g")
	}
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	subscribe(t, ws, "d1", "d2", "d3", "d4")
	if s := readSnapshot(t, ws); s.Type != "error" || s.Code != "too_many_devices" || !strings.Contains(s.Message, "at most 3") {
		t.Fatalf("subscribe to 4 with a cap of 3: %+v, want a too_many_devices error", s)
	}
	subscribe(t, ws, "d1", "d2", "d2", "d1")
	if s := readSnapshot(t, ws); s.Type != "snapshot" || len(s.Devices) != 2 {
		t.Fatalf("subscribe to 2 (named twice each): %+v, want a snapshot of 2", s)
	}
	subscribe(t, ws, "d3", "d4")
	if s := readSnapshot(t, ws); s.Type != "error" || s.Code != "too_many_devices" {
		t.Fatalf("2 more on top of 2: %+v, want too_many_devices", s)
	}
	subscribe(t, ws, "d1", "d3")
	if s := readSnapshot(t, ws); s.Type != "snapshot" || len(s.Devices) != 2 {
		t.Fatalf("one watched and one new (3 in all): %+v, want a snapshot", s)
	}
	if err := ws.WriteJSON(map[string]any{"type": "subscribe", "all": true}); err != nil {
		t.Fatal(err)
	}
	if s := readSnapshot(t, ws); s.Type != "error" || s.Code != "too_many_devices" {
		t.Fatalf("subscribe all (4 devices): %+v, want too_many_devices", s)
	}
	if err := ws.WriteJSON(map[string]any{"type": "unsubscribe", "devices": []string{"d1"}}); err != nil {
		t.Fatal(err)
	}
	subscribe(t, ws, "d4")
	if s := readSnapshot(t, ws); s.Type != "snapshot" || len(s.Devices) != 1 || s.Devices[0].Device != "d4" {
		t.Fatalf("after unsubscribing one: %+v, want d4's snapshot", s)
	}
}

// A user holds at most ViewerMaxSockets live sockets; one more is refused
// at the handshake with 429 too_many_connections, and a closed one frees
// its place. Other users are not affected.
func TestViewerSocketsPerUserCap(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ViewerMaxSockets: 2})
	alice := e.addUser("alice", storage.RoleAdmin)
	bob := e.addUser("bob", storage.RoleAdmin)
	first := e.dialLive(alice)
	e.dialLive(alice)
	url := "ws" + strings.TrimPrefix(e.base, "http") + "/ws/live"
	_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + alice}})
	if err == nil || resp == nil || resp.StatusCode != 429 {
		t.Fatalf("third socket of alice: %v %v, want HTTP 429", err, resp)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if body.Error.Code != "too_many_connections" || !strings.Contains(body.Error.Message, "2 live sockets") {
		t.Fatalf("third socket's refusal: %+v, want too_many_connections naming the cap", body.Error)
	}
	e.dialLive(bob)
	first.Close()
	checkFor(t, 5*time.Second, "a place for alice after closing a socket", func() bool {
		ws, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + alice}})
		if err != nil {
			if resp != nil {
				resp.Body.Close()
			}
			return false
		}
		ws.Close()
		return true
	})
}

// A flood of subscribe requests on one socket is throttled by its token
// bucket: past the burst, requests get rate_limited and do no work.
func TestViewerSubscribeFloodIsThrottled(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ViewerSubscribeRate: 5, ViewerSubscribeBurst: 10})
	e.addDevice("a1", "g")
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	const n = 300
	start := time.Now()
	go func() {
		for range n {
			if ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"a1"}}) != nil {
				return
			}
		}
	}()
	snapshots, limited := 0, 0
	for range n {
		switch s := readSnapshot(t, ws); {
		case s.Type == "snapshot":
			snapshots++
		case s.Type == "error" && s.Code == "rate_limited":
			limited++
		default:
			t.Fatalf("unexpected answer %+v", s)
		}
	}
	allowed := 10 + int(5*time.Since(start).Seconds()) + 1
	if snapshots > allowed || snapshots < 10 || limited != n-snapshots {
		t.Fatalf("%d subscribes in %s: %d snapshots, %d rate_limited; want 10 to %d snapshots, the rest rate_limited",
			n, time.Since(start), snapshots, limited, allowed)
	}
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A viewer that asks for snapshots and never reads them is closed as a slow
// consumer once what the gateway holds for it passes ViewerMaxPendingBytes,
// and the gateway's memory stays bounded meanwhile.
func TestNeverReadingViewerIsClosedAsASlowConsumer(t *testing.T) {
	const limit = 1 << 20
	e := newEnv(t, wsgateway.Config{ViewerMaxPendingBytes: limit, ViewerSubscribeRate: 1000, ViewerSubscribeBurst: 1000})
	ids := make([]string, 300)
	for i := range ids {
		ids[i] = fmt.Sprintf("d%03d", i)
		e.addDevice(ids[i], "g")
		e.publish(ids[i], "last", 2000) // a 2 KB last location: snapshots of ~600 KB
	}
	const metric = `devtrack_gateway_viewers_closed_total{reason="slow_consumer"}`
	before := e.metric(metric)
	heapBefore := heapInUse()
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	req, _ := json.Marshal(map[string]any{"type": "subscribe", "devices": ids})
	// 1,000 requests of 2 KB ask for 600 MB of snapshots.
	writeErr := make(chan error, 1)
	go func() {
		for range 1000 {
			if err := ws.WriteMessage(websocket.TextMessage, req); err != nil {
				writeErr <- err
				return
			}
		}
		writeErr <- nil
	}()
	checkFor(t, 20*time.Second, "the slow consumer closed", func() bool { return e.metric(metric) > before })
	if grown := int64(heapInUse()) - int64(heapBefore); grown > 64<<20 {
		t.Errorf("gateway heap grew by %d MB for one viewer; want it bounded near the %d MB limit", grown>>20, limit>>20)
	}
	// The socket is gone: reading drains what reached the client, then fails.
	_ = ws.SetReadDeadline(time.Now().Add(20 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("socket still open 20 s after the slow consumer was closed")
		}
		break
	}
	<-writeErr
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/devtrack/devtrack/worker"
)

// Alerts end to end: devtrack worker processes on a real Redis and a real
// store, a webhook receiver started by the test that checks every
// signature and counts deliveries by X-Devtrack-Delivery, and items pushed
// onto the ingest list as a backend would.

// alertHook is the test's webhook receiver.
type alertHook struct {
	t      *testing.T
	secret string
	srv    *httptest.Server

	mu     sync.Mutex
	counts map[string]int           // by X-Devtrack-Delivery
	alerts map[string]storage.Alert // by id
}

func newAlertHook(t *testing.T, secret string) *alertHook {
	h := &alertHook{t: t, secret: secret, counts: map[string]int{}, alerts: map[string]storage.Alert{}}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		// The receiver's check, as the README shows it.
		sig := r.Header.Get("X-Devtrack-Signature")
		tsPart, _, _ := strings.Cut(sig, ",")
		sec, err := strconv.ParseInt(strings.TrimPrefix(tsPart, "t="), 10, 64)
		if err != nil || worker.SignWebhook(h.secret, time.Unix(sec, 0), body) != sig || time.Since(time.Unix(sec, 0)) > time.Minute {
			t.Errorf("webhook signature %q does not verify", sig)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var a storage.Alert
		if err := json.Unmarshal(body, &a); err != nil || a.ID == "" || r.Header.Get("X-Devtrack-Alert") != a.ID {
			t.Errorf("webhook body %s (alert header %q): %v", body, r.Header.Get("X-Devtrack-Alert"), err)
		}
		h.mu.Lock()
		h.counts[r.Header.Get("X-Devtrack-Delivery")]++
		h.alerts[a.ID] = a
		h.mu.Unlock()
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// delivered returns the alerts received, by kind, and fails on a delivery
// received twice.
func (h *alertHook) delivered() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, n := range h.counts {
		if n != 1 {
			h.t.Errorf("delivery %s received %d times", id, n)
		}
	}
	out := map[string]int{}
	for _, a := range h.alerts {
		out[a.Kind]++
	}
	return out
}

// alertStore opens the cluster's store for the test's own reads and writes.
func (c *cluster) alertStore() storage.Store {
	c.t.Helper()
	st, err := backend.Open(context.Background(), c.dsn, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { st.Close() })
	return st
}

// pusher pushes items onto the cluster's ingest list.
func (c *cluster) pusher() func(items ...[]byte) {
	c.t.Helper()
	rdb, err := redisq.Open(context.Background(), c.redis.Addr(), "devtrack")
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(rdb.Close)
	return func(items ...[]byte) {
		c.t.Helper()
		if err := rdb.Push(context.Background(), items...); err != nil {
			c.t.Fatal(err)
		}
	}
}

func alertLoc(device, id string, ts int64, lat, lng float64, kmh float64) []byte {
	l := protocol.Location{Lat: lat, Lng: lng}
	if kmh >= 0 {
		v := kmh / 3.6
		l.Speed = &v
	}
	data, _ := json.Marshal(l)
	b, _ := json.Marshal(protocol.Item{V: 1, Device: device, ID: id, Type: protocol.TypeLocation, TS: ts, ReceivedAt: ts, Data: data})
	return b
}

// workerArgs are the worker flags of these tests: fast polls.
var alertWorkerArgs = []string{"--heartbeat-ttl", "2s", "--alerts-poll", "200ms", "--webhook-poll", "200ms", "--offline-scan", "200ms"}

// depotSetup registers car1 in group fleet, a square polygon geofence
// (13.00-13.10 E, 52.00-52.10 N) with an enter and an exit rule, and a
// webhook of the group.
func depotSetup(t *testing.T, c *cluster, st storage.Store, hook *alertHook) storage.Geofence {
	ctx := context.Background()
	c.cli("device", "add", "car1", "--group", "fleet")
	fence, err := st.CreateGeofence(ctx, storage.Geofence{Name: "Depot", Group: "fleet", Kind: storage.GeofencePolygon,
		Ring: [][2]float64{{13.0, 52.0}, {13.1, 52.0}, {13.1, 52.1}, {13.0, 52.1}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{storage.RuleGeofenceEnter, storage.RuleGeofenceExit} {
		if _, err := st.CreateAlertRule(ctx, storage.AlertRule{Name: kind, Group: "fleet", Kind: kind, Geofence: fence.ID}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateWebhook(ctx, storage.Webhook{URL: hook.srv.URL + "/hook", Group: "fleet", Secret: hook.secret}); err != nil {
		t.Fatal(err)
	}
	return fence
}

// driveThroughDepot pushes 30 locations of car1, one every 60 ms: 10 south
// of the depot, 10 inside, 10 north; after the 12th it calls midway.
func driveThroughDepot(push func(...[]byte), t0 int64, midway func()) {
	for i := range 30 {
		lat := 51.95 + float64(i/10)*0.1 + float64(i%10)*0.001 // 51.95.., 52.05.., 52.15..
		push(alertLoc("car1", fmt.Sprintf("p%02d", i), t0+int64(i)*1000, lat, 13.05, -1))
		if i == 12 && midway != nil {
			midway()
		}
		time.Sleep(60 * time.Millisecond) //nolint:forbidigo // the device's pace
	}
}

// checkOneEnterOneExit waits for the two alerts' deliveries and checks the
// archived events.
func checkOneEnterOneExit(t *testing.T, st storage.Store, hook *alertHook, fence storage.Geofence) {
	ctx := context.Background()
	want := map[string]int{storage.RuleGeofenceEnter: 1, storage.RuleGeofenceExit: 1}
	checkFor(t, 60*time.Second, "enter and exit alerts delivered", func() bool {
		return fmt.Sprint(hook.delivered()) == fmt.Sprint(want)
	})
	events, _, err := st.GeofenceEvents(ctx, storage.EventQuery{Device: "car1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 || events[0].Type != "exit" || events[1].Type != "enter" || events[0].Geofence != fence.ID {
		t.Fatalf("events %+v; want one enter and one exit of %s", events, fence.ID)
	}
	if events[1].Location < "p10" || events[1].Location > "p19" || events[0].Location < "p20" {
		t.Errorf("enter at %s, exit at %s: want them inside (p10-p19) and past the north edge (p20-)", events[1].Location, events[0].Location)
	}
	alerts, _, err := st.Alerts(ctx, storage.EventQuery{Device: "car1"})
	if err != nil || len(alerts) != 2 {
		t.Fatalf("alerts %+v, %v; want 2", alerts, err)
	}
	// Polls of both senders go on; no delivery comes twice.
	time.Sleep(time.Second) //nolint:forbidigo // a window for a repeat to show
	if got := hook.delivered(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %v; want %v", got, want)
	}
}

// Two workers, one killed with SIGKILL while the device is inside and
// started again: one enter and one exit event, each alert delivered once;
// a viewer of the gateway sees the geofence events live.
func TestAlertsEndToEndTwoWorkersOneKilled(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	st := c.alertStore()
	hook := newAlertHook(t, "e2e-secret")
	fence := depotSetup(t, c, st, hook)
	_, base := c.startGateway("gw1")
	admin := lastLine(c.cli("user", "add", "root", "--role", "admin"))
	viewer := dialViewer(t, base, admin)

	w1 := c.start("worker1", append([]string{"worker", "--id", "w1"}, alertWorkerArgs...)...)
	c.start("worker2", append([]string{"worker", "--id", "w2"}, alertWorkerArgs...)...)
	push := c.pusher()
	t0 := time.Now().Add(-time.Hour).UnixMilli()
	driveThroughDepot(push, t0, func() {
		w1.kill9()
		c.start("worker1-again", append([]string{"worker", "--id", "w1"}, alertWorkerArgs...)...)
	})
	checkOneEnterOneExit(t, st, hook, fence)

	got := map[string]bool{}
	_ = viewer.SetReadDeadline(time.Now().Add(20 * time.Second))
	for !got["enter"] || !got["exit"] {
		_, msg, err := viewer.ReadMessage()
		if err != nil {
			t.Fatalf("/ws/live: %v; geofence events seen: %v", err, got)
		}
		var m struct{ Type, Device, Geofence, Name, Event string }
		if json.Unmarshal(msg, &m) == nil && m.Type == "geofence" {
			if m.Device != "car1" || m.Geofence != fence.ID || m.Name != "Depot" || got[m.Event] {
				t.Errorf("live geofence message %s", msg)
			}
			got[m.Event] = true
		}
	}
}

// The same drive on PostgreSQL, two workers.
func TestAlertsEndToEndPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	c := newCluster(t)
	c.dsn = pg.NewDB(t)
	c.cli("migrate")
	st := c.alertStore()
	hook := newAlertHook(t, "pg-secret")
	fence := depotSetup(t, c, st, hook)
	c.start("worker1", append([]string{"worker", "--id", "w1"}, alertWorkerArgs...)...)
	c.start("worker2", append([]string{"worker", "--id", "w2"}, alertWorkerArgs...)...)
	driveThroughDepot(c.pusher(), time.Now().Add(-time.Hour).UnixMilli(), nil)
	checkOneEnterOneExit(t, st, hook, fence)
}

// A device silent for the rule's time raises one offline alert, and a
// speed rule fires once per episode above the limit (two episodes, two
// alerts), with two workers scanning and sending. --offline-minute 1s
// makes the rule's 2 minutes 2 seconds.
func TestAlertsEndToEndOfflineAndSpeed(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	st := c.alertStore()
	hook := newAlertHook(t, "s")
	ctx := context.Background()
	c.cli("device", "add", "van", "--group", "fleet")
	for _, r := range []storage.AlertRule{
		{Name: "silent", Group: "fleet", Kind: storage.RuleOffline, OfflineMinutes: 2},
		{Name: "fast", Group: "fleet", Kind: storage.RuleSpeed, SpeedKMH: 50},
	} {
		if _, err := st.CreateAlertRule(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateWebhook(ctx, storage.Webhook{URL: hook.srv.URL, Secret: "s"}); err != nil { // every group
		t.Fatal(err)
	}
	args := append(alertWorkerArgs, "--offline-minute", "1s")
	c.start("worker1", append([]string{"worker", "--id", "w1"}, args...)...)
	c.start("worker2", append([]string{"worker", "--id", "w2"}, args...)...)

	push := c.pusher()
	now := time.Now().UnixMilli()
	for i, kmh := range []float64{30, 80, 95, 70, 40, -1, 20, 120, 10} { // above 50: 80-70, then 120
		push(alertLoc("van", fmt.Sprintf("s%d", i), now+int64(i)*10, 52, 13, kmh))
	}
	start := time.Now()
	checkFor(t, 30*time.Second, "two speed alerts and one offline alert delivered", func() bool {
		d := hook.delivered()
		return d[storage.RuleSpeed] == 2 && d[storage.RuleOffline] == 1
	})
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("offline alert after %v; want the rule's 2 s of silence", took)
	}
	alerts, _, err := st.Alerts(ctx, storage.EventQuery{Device: "van"})
	if err != nil {
		t.Fatal(err)
	}
	causes := map[string]string{}
	for _, a := range alerts {
		causes[a.Cause] = a.Kind
	}
	if len(alerts) != 3 || causes["s1"] != storage.RuleSpeed || causes["s7"] != storage.RuleSpeed {
		t.Errorf("alerts %+v; want speed at s1 and s7 and one offline", alerts)
	}
	// Scans go on during the silence: still one offline alert.
	time.Sleep(2 * time.Second) //nolint:forbidigo // scans that must not raise another
	if d := hook.delivered(); d[storage.RuleOffline] != 1 || d[storage.RuleSpeed] != 2 {
		t.Errorf("delivered %v; want one offline and two speed alerts", d)
	}
}

// A device whose socket stays open without traffic (it answers pings and
// sends nothing) is closed by the gateway's --device-idle-timeout with 4002,
// its link removed, and then raises its offline alert; without the timeout
// a connected device never counts as offline.
func TestAlertsEndToEndLingeringSocketGoesOffline(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	st := c.alertStore()
	hook := newAlertHook(t, "s")
	ctx := context.Background()
	tok := lastLine(c.cli("device", "add", "tram", "--group", "fleet"))
	if _, err := st.CreateAlertRule(ctx, storage.AlertRule{Group: "fleet", Kind: storage.RuleOffline, OfflineMinutes: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateWebhook(ctx, storage.Webhook{URL: hook.srv.URL, Secret: "s"}); err != nil {
		t.Fatal(err)
	}
	_, base := c.startGateway("gw1", "--device-idle-timeout", "3s", "--ping-period", "200ms")
	c.start("worker1", append([]string{"worker", "--id", "w1", "--offline-minute", "1s"}, alertWorkerArgs...)...)

	d := dialDevice(t, base, "tram", tok)
	if err := d.ws.WriteMessage(websocket.TextMessage, locFrame("only", 0)); err != nil {
		t.Fatal(err)
	}
	sent := time.Now()
	// Read (answering the pings) until the gateway closes the socket.
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := d.ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	// Linked, silent for past the rule's 1 s: no alert while the socket is open.
	time.Sleep(2 * time.Second) //nolint:forbidigo // silence the rule would count as offline
	if n := len(hook.delivered()); n != 0 {
		t.Fatalf("%d alerts while the device is connected; want none", n)
	}
	var err error
	select {
	case err = <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("lingering socket not closed")
	}
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 {
		t.Fatalf("socket closed with %v; want 4002", err)
	}
	if took := time.Since(sent); took < 3*time.Second {
		t.Errorf("closed after %v; want the 3 s idle timeout", took)
	}
	checkFor(t, 10*time.Second, "the offline alert delivered", func() bool { return hook.delivered()[storage.RuleOffline] == 1 })
}

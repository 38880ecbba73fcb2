package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// alertCases cover geofences, alert rules, webhooks and what they raise
// (storage.Alerting).
var alertCases = []testCase{
	{"AlertingConfig", testAlertingConfig},
	{"AlertingValidation", testAlertingValidation},
	{"ApplyAlertsIdempotent", testApplyAlertsIdempotent},
	{"ApplyAlertsOlderIgnored", testApplyAlertsOlderIgnored},
	{"ApplyAlertsConcurrent", testApplyAlertsConcurrent},
	{"AlertPages", testAlertPages},
	{"ClaimDeliveries", testClaimDeliveries},
}

func alerting(t *testing.T, st storage.Store) storage.Alerting {
	t.Helper()
	a, ok := any(st).(storage.Alerting)
	if !ok {
		t.Fatalf("%T does not implement storage.Alerting", st)
	}
	return a
}

var square = [][2]float64{{13.0, 52.0}, {13.1, 52.0}, {13.1, 52.1}, {13.0, 52.1}}

// Geofences, rules and webhooks round-trip, list by group, and a deleted
// geofence takes its rules and states with it.
func testAlertingConfig(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	poly, err := al.CreateGeofence(ctx, storage.Geofence{ID: "depot", Name: "Depot", Group: "g1", Kind: storage.GeofencePolygon, Ring: square})
	if err != nil || poly.CreatedAt == 0 || poly.UpdatedAt != poly.CreatedAt {
		t.Fatalf("CreateGeofence = %+v, %v", poly, err)
	}
	circle, err := al.CreateGeofence(ctx, storage.Geofence{Name: "Home", Group: "g2", Kind: storage.GeofenceCircle, Lat: 52.5, Lng: 13.4, RadiusM: 250})
	if err != nil || circle.ID == "" {
		t.Fatalf("CreateGeofence(circle) = %+v, %v", circle, err)
	}
	if _, err := al.CreateGeofence(ctx, poly); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateGeofence(taken id) = %v; want ErrExists", err)
	}
	got, err := al.Geofence(ctx, "depot")
	if err != nil || !cmp.Equal(got, poly) {
		t.Errorf("Geofence(depot) = %+v, %v; want %+v", got, err, poly)
	}
	if _, err := al.Geofence(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Geofence(nope) = %v; want ErrNotFound", err)
	}
	all, err := al.Geofences(ctx, nil)
	if err != nil || len(all) != 2 {
		t.Fatalf("Geofences(nil) = %+v, %v", all, err)
	}
	if g2, err := al.Geofences(ctx, []string{"g2"}); err != nil || len(g2) != 1 || !cmp.Equal(g2[0], circle) {
		t.Errorf("Geofences(g2) = %+v, %v; want [%+v]", g2, err, circle)
	}
	if none, err := al.Geofences(ctx, []string{}); err != nil || len(none) != 0 {
		t.Errorf("Geofences([]) = %+v, %v; want none", none, err)
	}
	// Update replaces name and shape, keeps group and creation time.
	upd, err := al.UpdateGeofence(ctx, storage.Geofence{ID: "depot", Name: "Depot 2", Group: "other", Kind: storage.GeofenceCircle, Lat: 1, Lng: 2, RadiusM: 10})
	if err != nil || upd.Group != "g1" || upd.CreatedAt != poly.CreatedAt || upd.UpdatedAt <= poly.UpdatedAt {
		t.Fatalf("UpdateGeofence = %+v, %v", upd, err)
	}
	if got, _ := al.Geofence(ctx, "depot"); !cmp.Equal(got, upd) {
		t.Errorf("after update: %+v; want %+v", got, upd)
	}
	if _, err := al.UpdateGeofence(ctx, storage.Geofence{ID: "nope", Group: "g1", Kind: storage.GeofenceCircle, RadiusM: 1}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateGeofence(nope) = %v; want ErrNotFound", err)
	}

	enter, err := al.CreateAlertRule(ctx, storage.AlertRule{ID: "r-enter", Name: "in", Group: "g1", Kind: storage.RuleGeofenceEnter, Geofence: "depot"})
	if err != nil || enter.CreatedAt == 0 {
		t.Fatalf("CreateAlertRule(enter) = %+v, %v", enter, err)
	}
	speed, err := al.CreateAlertRule(ctx, storage.AlertRule{Group: "g2", Kind: storage.RuleSpeed, SpeedKMH: 90})
	if err != nil || speed.ID == "" {
		t.Fatalf("CreateAlertRule(speed) = %+v, %v", speed, err)
	}
	if _, err := al.CreateAlertRule(ctx, storage.AlertRule{Group: "g2", Kind: storage.RuleGeofenceExit, Geofence: "depot"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("rule on a geofence of another group = %v; want ErrInvalid", err)
	}
	if _, err := al.CreateAlertRule(ctx, storage.AlertRule{Group: "g1", Kind: storage.RuleGeofenceExit, Geofence: "nope"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("rule on an unknown geofence = %v; want ErrInvalid", err)
	}
	if _, err := al.CreateAlertRule(ctx, enter); !errors.Is(err, storage.ErrExists) {
		t.Errorf("CreateAlertRule(taken id) = %v; want ErrExists", err)
	}
	if got, err := al.AlertRule(ctx, "r-enter"); err != nil || !cmp.Equal(got, enter) {
		t.Errorf("AlertRule = %+v, %v; want %+v", got, err, enter)
	}
	if rs, err := al.AlertRules(ctx, []string{"g2"}); err != nil || len(rs) != 1 || !cmp.Equal(rs[0], speed) {
		t.Errorf("AlertRules(g2) = %+v, %v; want [%+v]", rs, err, speed)
	}

	hookAll, err := al.CreateWebhook(ctx, storage.Webhook{ID: "h-all", URL: "https://example.com/all", Secret: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	hook1, err := al.CreateWebhook(ctx, storage.Webhook{URL: "http://127.0.0.1:9/hook", Group: "g1"})
	if err != nil || hook1.ID == "" || hook1.CreatedAt == 0 {
		t.Fatalf("CreateWebhook = %+v, %v", hook1, err)
	}
	if hs, err := al.Webhooks(ctx, nil); err != nil || len(hs) != 2 || hs[slices.IndexFunc(hs, func(h storage.Webhook) bool { return h.ID == "h-all" })].Secret != "s3cret" {
		t.Errorf("Webhooks(nil) = %+v, %v; want both, secrets included", hs, err)
	}
	if hs, err := al.Webhooks(ctx, []string{"g1"}); err != nil || len(hs) != 1 || hs[0].ID != hook1.ID {
		t.Errorf("Webhooks(g1) = %+v, %v; want only %s (a webhook of every group only for nil)", hs, err, hook1.ID)
	}

	// A state under the geofence; deleting the geofence deletes its rule
	// and the state: a new geofence of that id starts off again.
	tr := storage.Transition{Device: "d1", Key: "geofence:depot", On: true, TS: t0,
		Event: &storage.GeofenceEvent{ID: "e1", Device: "d1", Geofence: "depot", Type: "enter", TS: t0}}
	if evs, _, err := al.ApplyAlerts(ctx, []storage.Transition{tr}, nil); err != nil || len(evs) != 1 {
		t.Fatalf("ApplyAlerts = %+v, %v", evs, err)
	}
	if err := al.DeleteGeofence(ctx, "depot"); err != nil {
		t.Fatal(err)
	}
	if err := al.DeleteGeofence(ctx, "depot"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteGeofence = %v; want ErrNotFound", err)
	}
	if _, err := al.AlertRule(ctx, "r-enter"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("rule of a deleted geofence: %v; want ErrNotFound", err)
	}
	// Off again: an exit (On false) right after changes nothing, an enter flips.
	tr2 := storage.Transition{Device: "d1", Key: "geofence:depot", On: false, TS: t0 + 1,
		Event: &storage.GeofenceEvent{ID: "e2", Device: "d1", Geofence: "depot", Type: "exit", TS: t0 + 1}}
	if evs, _, err := al.ApplyAlerts(ctx, []storage.Transition{tr2}, nil); err != nil || len(evs) != 0 {
		t.Errorf("exit after the geofence was deleted = %+v, %v; want no event (its state is gone)", evs, err)
	}

	if err := al.DeleteAlertRule(ctx, speed.ID); err != nil {
		t.Fatal(err)
	}
	if err := al.DeleteAlertRule(ctx, speed.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteAlertRule = %v; want ErrNotFound", err)
	}
	if err := al.DeleteWebhook(ctx, hookAll.ID); err != nil {
		t.Fatal(err)
	}
	if err := al.DeleteWebhook(ctx, hookAll.ID); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second DeleteWebhook = %v; want ErrNotFound", err)
	}
}

// Shapes, rules and webhooks that no store keeps are ErrInvalid.
func testAlertingValidation(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	circle := func(lat, lng, r float64) storage.Geofence {
		return storage.Geofence{Group: "g", Kind: storage.GeofenceCircle, Lat: lat, Lng: lng, RadiusM: r}
	}
	poly := func(ring ...[2]float64) storage.Geofence {
		return storage.Geofence{Group: "g", Kind: storage.GeofencePolygon, Ring: ring}
	}
	for name, g := range map[string]storage.Geofence{
		"bad group":            {Group: "-x", Kind: storage.GeofenceCircle, Lat: 1, Lng: 1, RadiusM: 1},
		"no group":             {Kind: storage.GeofenceCircle, Lat: 1, Lng: 1, RadiusM: 1},
		"bad kind":             {Group: "g", Kind: "square", Lat: 1, Lng: 1, RadiusM: 1},
		"zero radius":          circle(1, 1, 0),
		"radius over 1000km":   circle(1, 1, 1_000_001),
		"lat 91":               circle(91, 1, 10),
		"lng -181":             circle(1, -181, 10),
		"two points":           poly([2]float64{1, 1}, [2]float64{2, 2}),
		"3 points, 2 distinct": poly([2]float64{1, 1}, [2]float64{2, 2}, [2]float64{1, 1}),
		"point off the globe":  poly([2]float64{1, 1}, [2]float64{2, 2}, [2]float64{200, 1}),
	} {
		if _, err := al.CreateGeofence(ctx, g); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateGeofence(%s) = %v; want ErrInvalid", name, err)
		}
	}
	if _, err := al.CreateGeofence(ctx, circle(1, 1, 1_000_000)); err != nil {
		t.Errorf("radius of 1000 km: %v", err)
	}
	// A closed ring (first point repeated) is fine.
	if _, err := al.CreateGeofence(ctx, poly([2]float64{1, 1}, [2]float64{2, 1}, [2]float64{2, 2}, [2]float64{1, 1})); err != nil {
		t.Errorf("closed triangle: %v", err)
	}
	for name, r := range map[string]storage.AlertRule{
		"bad kind":            {Group: "g", Kind: "teleport"},
		"bad group":           {Group: "", Kind: storage.RuleSpeed, SpeedKMH: 10},
		"enter, no geofence":  {Group: "g", Kind: storage.RuleGeofenceEnter},
		"offline 0 minutes":   {Group: "g", Kind: storage.RuleOffline},
		"speed 0":             {Group: "g", Kind: storage.RuleSpeed},
		"speed negative":      {Group: "g", Kind: storage.RuleSpeed, SpeedKMH: -5},
		"log without filters": {Group: "g", Kind: storage.RuleLog},
		"log bad level":       {Group: "g", Kind: storage.RuleLog, Level: "loud"},
		"speed with a level":  {Group: "g", Kind: storage.RuleSpeed, SpeedKMH: 10, Level: "warn"},
	} {
		if _, err := al.CreateAlertRule(ctx, r); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateAlertRule(%s) = %v; want ErrInvalid", name, err)
		}
	}
	for _, r := range []storage.AlertRule{
		{Group: "g", Kind: storage.RuleOffline, OfflineMinutes: 5},
		{Group: "g", Kind: storage.RuleLog, Level: "error"},
		{Group: "g", Kind: storage.RuleLog, Text: "overheat"},
	} {
		if _, err := al.CreateAlertRule(ctx, r); err != nil {
			t.Errorf("CreateAlertRule(%+v): %v", r, err)
		}
	}
	for _, u := range []string{"", "ftp://example.com/x", "example.com/hook", "http://", "javascript:alert(1)"} {
		if _, err := al.CreateWebhook(ctx, storage.Webhook{URL: u}); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("CreateWebhook(%q) = %v; want ErrInvalid", u, err)
		}
	}
	if _, err := al.CreateWebhook(ctx, storage.Webhook{URL: "https://example.com/x", Group: "bad group"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("CreateWebhook(bad group) = %v; want ErrInvalid", err)
	}
}

// enterExit is a geofence crossing with its alert, as the worker proposes it.
func enterExit(device string, on bool, ts int64, id string, rule string) storage.Transition {
	typ := "exit"
	if on {
		typ = "enter"
	}
	tr := storage.Transition{Device: device, Key: "geofence:z", On: on, TS: ts,
		Event: &storage.GeofenceEvent{ID: "ev-" + id, Device: device, Geofence: "z", Type: typ, TS: ts, Location: id, Lat: 52, Lng: 13}}
	if rule != "" {
		tr.Alerts = []storage.Alert{{ID: "al-" + id, Rule: rule, Kind: storage.RuleGeofenceEnter, Device: device, Group: "g",
			TS: ts, Cause: id, Message: device + " entered z"}}
	}
	return tr
}

func deliveryIDs(t *testing.T, al storage.Alerting, worker string, now int64) []string {
	t.Helper()
	ds, err := al.ClaimDeliveries(context.Background(), worker, now, 30_000, 100)
	if err != nil {
		t.Fatalf("ClaimDeliveries: %v", err)
	}
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	slices.Sort(ids)
	return ids
}

// The same transitions applied twice store one event and one alert, queued
// once per webhook of the alert's group and of every group.
func testApplyAlertsIdempotent(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	for _, w := range []storage.Webhook{{ID: "hg", URL: "http://x/g", Group: "g"}, {ID: "hall", URL: "http://x/all"}, {ID: "hother", URL: "http://x/o", Group: "other"}} {
		if _, err := al.CreateWebhook(ctx, w); err != nil {
			t.Fatal(err)
		}
	}
	ts := []storage.Transition{enterExit("d1", true, t0+10, "l1", "r1")}
	logAlert := storage.Alert{ID: "al-log1", Rule: "r2", Kind: storage.RuleLog, Device: "d1", Group: "g", TS: t0 + 5, Cause: "log1", Message: "error: overheat"}
	evs, as, err := al.ApplyAlerts(ctx, ts, []storage.Alert{logAlert})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != "ev-l1" || len(as) != 2 {
		t.Fatalf("first ApplyAlerts = %+v, %+v; want one event and two alerts", evs, as)
	}
	evs, as, err = al.ApplyAlerts(ctx, ts, []storage.Alert{logAlert})
	if err != nil || len(evs) != 0 || len(as) != 0 {
		t.Fatalf("second ApplyAlerts = %+v, %+v, %v; want nothing new", evs, as, err)
	}
	stored, _, err := al.GeofenceEvents(ctx, storage.EventQuery{})
	if err != nil || len(stored) != 1 || !cmp.Equal(stored[0], *ts[0].Event) {
		t.Errorf("GeofenceEvents = %+v, %v; want [%+v]", stored, err, *ts[0].Event)
	}
	alerts, _, err := al.Alerts(ctx, storage.EventQuery{})
	if err != nil || len(alerts) != 2 || alerts[0].ID != "al-l1" || alerts[1].ID != "al-log1" || alerts[0].CreatedAt == 0 {
		t.Errorf("Alerts = %+v, %v; want al-l1 then al-log1 (newest first), created_at set", alerts, err)
	}
	want := []string{"al-l1:hall", "al-l1:hg", "al-log1:hall", "al-log1:hg"}
	if got := deliveryIDs(t, al, "w1", nowMS()); !cmp.Equal(got, want) {
		t.Errorf("deliveries = %v; want %v", got, want)
	}
}

func nowMS() int64 { return t0 + 1e12 } // later than every ts of the suite

// A transition applies only when later than the state: an older or equal
// one changes nothing, a later one that does not flip still moves the
// state's time.
func testApplyAlertsOlderIgnored(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	apply := func(tr ...storage.Transition) []string {
		t.Helper()
		evs, _, err := al.ApplyAlerts(ctx, tr, nil)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, e := range evs {
			ids = append(ids, e.ID)
		}
		return ids
	}
	// Given out of order: applied in TS order, enter at 10, exit at 20.
	if got := apply(enterExit("d1", false, t0+20, "b", ""), enterExit("d1", true, t0+10, "a", "")); !cmp.Equal(got, []string{"ev-a", "ev-b"}) {
		t.Errorf("out-of-order pair: events %v; want [ev-a ev-b]", got)
	}
	// Off since 20: an older enter (15) and one at 20 change nothing.
	if got := apply(enterExit("d1", true, t0+15, "c", "")); got != nil {
		t.Errorf("older enter: events %v; want none", got)
	}
	if got := apply(enterExit("d1", true, t0+20, "c2", "")); got != nil {
		t.Errorf("enter at the state's own ts: events %v; want none", got)
	}
	// Off again at 30 (no flip) moves the state to 30: an enter at 25 is
	// then older.
	if got := apply(enterExit("d1", false, t0+30, "d", "")); got != nil {
		t.Errorf("exit while out: events %v; want none", got)
	}
	if got := apply(enterExit("d1", true, t0+25, "e", "")); got != nil {
		t.Errorf("enter older than the last non-flip: events %v; want none", got)
	}
	// Missing state is off: a first exit flips nothing; another device and
	// another key have states of their own.
	if got := apply(enterExit("d2", false, t0+5, "f", "")); got != nil {
		t.Errorf("first exit: events %v; want none", got)
	}
	if got := apply(enterExit("d2", true, t0+6, "g", ""), storage.Transition{Device: "d1", Key: "speed:r", On: true, TS: t0 + 1,
		Alerts: []storage.Alert{{ID: "sp1", Rule: "r", Kind: storage.RuleSpeed, Device: "d1", Group: "g", TS: t0 + 1, Cause: "x"}}}); !cmp.Equal(got, []string{"ev-g"}) {
		t.Errorf("enter of d2: events %v; want [ev-g]", got)
	}
	if as, _, _ := al.Alerts(ctx, storage.EventQuery{}); len(as) != 1 || as[0].ID != "sp1" {
		t.Errorf("alerts = %+v; want the speed alert only", as)
	}
}

// Two ApplyAlerts of the same transitions at once (two workers given the
// same batch) store each event and alert once, reported new by one of them.
func testApplyAlertsConcurrent(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	if _, err := al.CreateWebhook(ctx, storage.Webhook{ID: "h", URL: "http://x/h"}); err != nil {
		t.Fatal(err)
	}
	var ts []storage.Transition
	for i := range 20 {
		d := fmt.Sprintf("d%d", i%4)
		ts = append(ts, enterExit(d, i%8 < 4, t0+int64(i), fmt.Sprintf("l%d", i), "r"))
	}
	const runs = 4
	var wg sync.WaitGroup
	var mu sync.Mutex
	evCount, alCount := map[string]int{}, map[string]int{}
	for range runs {
		wg.Go(func() {
			evs, as, err := al.ApplyAlerts(ctx, ts, nil)
			if err != nil {
				t.Errorf("ApplyAlerts: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, e := range evs {
				evCount[e.ID]++
			}
			for _, a := range as {
				alCount[a.ID]++
			}
		})
	}
	wg.Wait()
	stored, _, err := al.GeofenceEvents(ctx, storage.EventQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	// Each device alternates in (i%8 < 4) and out: 20 transitions, 4 per
	// device in a row alternate enter/exit: every one flips.
	if len(stored) != 20 || len(evCount) != 20 {
		t.Errorf("stored %d events, reported %d; want 20 each", len(stored), len(evCount))
	}
	for id, n := range evCount {
		if n != 1 {
			t.Errorf("event %s reported new %d times", id, n)
		}
	}
	for id, n := range alCount {
		if n != 1 {
			t.Errorf("alert %s reported new %d times", id, n)
		}
	}
	if got := deliveryIDs(t, al, "w", nowMS()); len(got) != len(alCount) || len(got) != 20 {
		t.Errorf("%d deliveries for %d alerts; want 20", len(got), len(alCount))
	}
}

// Events and alerts page newest first and filter by device and time.
func testAlertPages(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	var alerts []storage.Alert
	for i := range 7 {
		alerts = append(alerts, storage.Alert{ID: fmt.Sprintf("a%d", i), Rule: "r", Kind: storage.RuleLog,
			Device: fmt.Sprintf("d%d", i%2), Group: "g", TS: t0 + int64(i/2), Cause: fmt.Sprintf("c%d", i)})
	}
	if _, _, err := al.ApplyAlerts(ctx, nil, alerts); err != nil {
		t.Fatal(err)
	}
	var ids []string
	q := storage.EventQuery{Limit: 3}
	for range 10 {
		page, next, err := al.Alerts(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page {
			ids = append(ids, a.ID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if want := []string{"a6", "a5", "a4", "a3", "a2", "a1", "a0"}; !cmp.Equal(ids, want) {
		t.Errorf("pages = %v; want %v", ids, want)
	}
	if page, _, err := al.Alerts(ctx, storage.EventQuery{Device: "d1"}); err != nil || len(page) != 3 {
		t.Errorf("Alerts(d1) = %d, %v; want 3", len(page), err)
	}
	if page, _, err := al.Alerts(ctx, storage.EventQuery{Devices: []string{}}); err != nil || len(page) != 0 {
		t.Errorf("Alerts(Devices: []) = %d, %v; want 0", len(page), err)
	}
	if page, _, err := al.Alerts(ctx, storage.EventQuery{Devices: []string{"d0"}, FromMS: t0 + 1, ToMS: t0 + 2}); err != nil || len(page) != 2 {
		t.Errorf("Alerts(d0, t0+1..t0+2) = %+v, %v; want a2 and a4", page, err)
	}
	if _, _, err := al.GeofenceEvents(ctx, storage.EventQuery{Cursor: "bogus!"}); !errors.Is(err, storage.ErrBadCursor) {
		t.Errorf("bad cursor = %v; want ErrBadCursor", err)
	}
}

// A claim leases deliveries: no other claim gets them until the lease
// ends or the delivery is finished; a failure is due again at its retry
// time, a delivered or abandoned one never again.
func testClaimDeliveries(t *testing.T, st storage.Store) {
	ctx := context.Background()
	al := alerting(t, st)
	if _, err := al.CreateWebhook(ctx, storage.Webhook{ID: "h", URL: "http://x/h", Secret: "k"}); err != nil {
		t.Fatal(err)
	}
	var alerts []storage.Alert
	for i := range 10 {
		alerts = append(alerts, storage.Alert{ID: fmt.Sprintf("a%d", i), Rule: "r", Kind: storage.RuleLog, Device: "d", Group: "g", TS: t0, Cause: fmt.Sprint(i)})
	}
	if _, _, err := al.ApplyAlerts(ctx, nil, alerts); err != nil {
		t.Fatal(err)
	}
	now := nowMS()
	// Concurrent claims of 4 each share nothing and hand out all 10.
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			worker := fmt.Sprintf("w%d", w)
			ds, err := al.ClaimDeliveries(ctx, worker, now, 30_000, 4)
			if err != nil {
				t.Errorf("ClaimDeliveries: %v", err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, d := range ds {
				if other, ok := seen[d.ID]; ok {
					t.Errorf("delivery %s claimed by %s and %s", d.ID, other, worker)
				}
				seen[d.ID] = worker
				if d.Webhook.Secret != "k" || d.Webhook.URL != "http://x/h" || d.Alert.Device != "d" || d.Attempts != 0 {
					t.Errorf("claimed %+v", d)
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != 10 {
		t.Fatalf("claimed %d deliveries; want 10", len(seen))
	}
	if got := deliveryIDs(t, al, "late", now+29_999); len(got) != 0 {
		t.Errorf("claimed %v while leased", got)
	}
	// a0 delivered, a1 failed (due at now+45 s), a2 given up; the rest
	// come back when their lease ends.
	if err := al.FinishDelivery(ctx, "a0:h", true, "", 0); err != nil {
		t.Fatal(err)
	}
	if err := al.FinishDelivery(ctx, "a1:h", false, "HTTP 500", now+45_000); err != nil {
		t.Fatal(err)
	}
	if err := al.FinishDelivery(ctx, "a2:h", false, "gave up", 0); err != nil {
		t.Fatal(err)
	}
	if err := al.FinishDelivery(ctx, "nope", true, "", 0); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FinishDelivery(nope) = %v; want ErrNotFound", err)
	}
	got := deliveryIDs(t, al, "late", now+30_000)
	want := []string{"a3:h", "a4:h", "a5:h", "a6:h", "a7:h", "a8:h", "a9:h"}
	if !cmp.Equal(got, want) {
		t.Errorf("after the leases ended: %v; want %v", got, want)
	}
	ds, err := al.ClaimDeliveries(ctx, "retry", now+45_000, 30_000, 100)
	if err != nil || len(ds) != 1 || ds[0].ID != "a1:h" || ds[0].Attempts != 1 {
		t.Errorf("at the retry time: %+v, %v; want a1:h with 1 attempt", ds, err)
	}
}

package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// alerting is the test store's Alerting part.
func (e *env) alerting() storage.Alerting { return e.store }

// created posts body to path as tok, wants 201 and returns the answer's id.
func (e *env) created(tok, path, body string) string {
	e.t.Helper()
	code, resp := e.post(tok, path, body)
	if code != http.StatusCreated {
		e.t.Fatalf("POST %s %s: %d %s, want 201", path, body, code, resp)
	}
	var v struct{ ID string }
	if err := json.Unmarshal([]byte(resp), &v); err != nil || v.ID == "" {
		e.t.Fatalf("POST %s: answer %s has no id", path, resp)
	}
	return v.ID
}

// listOf GETs a list as tok, wants 200 and decodes its items and next_cursor.
func listOf[T any](e *env, tok, path string) ([]T, string) {
	e.t.Helper()
	code, body := e.get(tok, path)
	if code != 200 {
		e.t.Fatalf("GET %s: %d %s, want 200", path, code, body)
	}
	var v struct {
		Items      []T    `json:"items"`
		NextCursor string `json:"next_cursor"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		e.t.Fatalf("GET %s: %s: %v", path, body, err)
	}
	return v.Items, v.NextCursor
}

func ids[T any](list []T, id func(T) string) string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = id(v)
	}
	return strings.Join(out, ",")
}

const (
	squareGA = `{"name":"Depot","group":"ga","kind":"polygon","ring":[[121.40,31.20],[121.41,31.20],[121.41,31.21],[121.40,31.21]]}`
	circleGA = `{"name":"Hub","group":"ga","kind":"circle","lat":31.23,"lng":121.47,"radius_m":250}`
	squareGB = `{"name":"Yard","group":"gb","kind":"polygon","ring":[[2.30,48.85],[2.31,48.85],[2.31,48.86]]}`
)

func TestAlertsAPIGeofences(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.alerting()
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "ga")
	opB := e.addUser("bob", storage.RoleOperator, "gb")

	for _, tc := range []struct {
		name, tok, body string
		want            int
	}{
		{"no token", "", circleGA, 401},
		{"another group", opB, circleGA, 403},
		{"no group", opA, `{"name":"x","kind":"circle","lat":1,"lng":1,"radius_m":5}`, 400},
		{"unknown kind", opA, `{"name":"x","group":"ga","kind":"square","lat":1,"lng":1,"radius_m":5}`, 400},
		{"unknown field", opA, `{"name":"x","group":"ga","kind":"circle","lat":1,"lng":1,"radius":5}`, 400},
		{"not JSON", opA, `name=x`, 400},
		{"radius zero", opA, `{"name":"x","group":"ga","kind":"circle","lat":1,"lng":1,"radius_m":0}`, 400},
		{"lat out of range", opA, `{"name":"x","group":"ga","kind":"circle","lat":91,"lng":1,"radius_m":5}`, 400},
		{"polygon of 2 points", opA, `{"name":"x","group":"ga","kind":"polygon","ring":[[1,1],[2,2],[1,1]]}`, 400},
	} {
		if code, body := e.post(tc.tok, "/api/v1/geofences", tc.body); code != tc.want {
			t.Errorf("create geofence (%s): %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	square := e.created(opA, "/api/v1/geofences", squareGA)
	circle := e.created(opA, "/api/v1/geofences", circleGA)
	yard := e.created(admin, "/api/v1/geofences", squareGB)

	code, body := e.get(opA, "/api/v1/geofences/"+circle)
	var c storage.Geofence
	if code != 200 || json.Unmarshal([]byte(body), &c) != nil || c.Kind != "circle" || c.Lat != 31.23 || c.Lng != 121.47 ||
		c.RadiusM != 250 || c.Name != "Hub" || c.Group != "ga" {
		t.Errorf("GET the circle: %d %s", code, body)
	}
	for _, tc := range []struct {
		tok, want string
	}{{opA, sortedIDs(square, circle)}, {opB, yard}, {admin, sortedIDs(square, circle, yard)}} {
		list, _ := listOf[storage.Geofence](e, tc.tok, "/api/v1/geofences")
		if got := ids(list, func(g storage.Geofence) string { return g.ID }); got != tc.want {
			t.Errorf("geofences listed: %s, want %s", got, tc.want)
		}
	}
	if code, _ := e.get(opB, "/api/v1/geofences/"+square); code != 403 {
		t.Errorf("GET another group's geofence: %d, want 403", code)
	}
	if code, _ := e.get(opA, "/api/v1/geofences/nope"); code != 404 {
		t.Errorf("GET an unknown geofence: %d, want 404", code)
	}

	// PUT replaces name and shape; the group stays.
	moved := `{"name":"Depot 2","kind":"polygon","ring":[[121.50,31.30],[121.52,31.30],[121.52,31.32],[121.50,31.32]]}`
	if code, body := e.do("PUT", opA, "/api/v1/geofences/"+square, moved); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	code, body = e.get(opA, "/api/v1/geofences/"+square)
	var sq storage.Geofence
	if code != 200 || json.Unmarshal([]byte(body), &sq) != nil || sq.Name != "Depot 2" || sq.Group != "ga" ||
		len(sq.Ring) < 4 || sq.Ring[0] != [2]float64{121.50, 31.30} {
		t.Errorf("after PUT: %d %s", code, body)
	}
	if code, _ := e.do("PUT", opA, "/api/v1/geofences/"+square, strings.Replace(squareGA, `"ga"`, `"gb"`, 1)); code != 400 {
		t.Errorf("PUT into another group: %d, want 400", code)
	}
	if code, _ := e.do("PUT", opB, "/api/v1/geofences/"+square, moved); code != 403 {
		t.Errorf("PUT by another group: %d, want 403", code)
	}
	if code, _ := e.do("PUT", opA, "/api/v1/geofences/"+square, `{"name":"x","kind":"circle","lat":1,"lng":1,"radius_m":-1}`); code != 400 {
		t.Errorf("PUT a bad shape: %d, want 400", code)
	}

	if code, _ := e.do("DELETE", opB, "/api/v1/geofences/"+square, ""); code != 403 {
		t.Errorf("DELETE by another group: %d, want 403", code)
	}
	if code, body := e.do("DELETE", opA, "/api/v1/geofences/"+square, ""); code != 204 {
		t.Errorf("DELETE: %d %s, want 204", code, body)
	}
	if code, _ := e.get(opA, "/api/v1/geofences/"+square); code != 404 {
		t.Errorf("GET a deleted geofence: %d, want 404", code)
	}
	if code, _ := e.do("DELETE", admin, "/api/v1/geofences/"+square, ""); code != 404 {
		t.Errorf("DELETE again: %d, want 404", code)
	}
}

func TestAlertsAPIRules(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.alerting()
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "ga")
	opB := e.addUser("bob", storage.RoleOperator, "gb")
	square := e.created(opA, "/api/v1/geofences", squareGA)

	for _, tc := range []struct {
		name, tok, body string
		want            int
	}{
		{"no token", "", `{"group":"ga","kind":"offline","offline_minutes":5}`, 401},
		{"enter, another group's geofence", opB, `{"kind":"geofence_enter","geofence":"` + square + `"}`, 403},
		{"enter, group not the geofence's", admin, `{"group":"gb","kind":"geofence_enter","geofence":"` + square + `"}`, 400},
		{"enter, no geofence", opA, `{"group":"ga","kind":"geofence_enter"}`, 400},
		{"enter, unknown geofence", opA, `{"group":"ga","kind":"geofence_enter","geofence":"nope"}`, 404},
		{"offline, another group", opA, `{"group":"gb","kind":"offline","offline_minutes":5}`, 403},
		{"offline, no group", opA, `{"kind":"offline","offline_minutes":5}`, 400},
		{"offline, 0 minutes", opA, `{"group":"ga","kind":"offline","offline_minutes":0}`, 400},
		{"speed, negative", opA, `{"group":"ga","kind":"speed","speed_kmh":-3}`, 400},
		{"log, neither level nor text", opA, `{"group":"ga","kind":"log"}`, 400},
		{"log, bad level", opA, `{"group":"ga","kind":"log","level":"loud"}`, 400},
		{"speed with minutes", opA, `{"group":"ga","kind":"speed","speed_kmh":50,"offline_minutes":3}`, 400},
		{"unknown kind", opA, `{"group":"ga","kind":"weather"}`, 400},
		{"unknown field", opA, `{"group":"ga","kind":"offline","minutes":5}`, 400},
	} {
		if code, body := e.post(tc.tok, "/api/v1/alert-rules", tc.body); code != tc.want {
			t.Errorf("create rule (%s): %d %s, want %d", tc.name, code, body, tc.want)
		}
	}
	enter := e.created(opA, "/api/v1/alert-rules", `{"name":"in","kind":"geofence_enter","geofence":"`+square+`"}`)
	exit := e.created(opA, "/api/v1/alert-rules", `{"name":"out","group":"ga","kind":"geofence_exit","geofence":"`+square+`"}`)
	offline := e.created(opA, "/api/v1/alert-rules", `{"name":"quiet","group":"ga","kind":"offline","offline_minutes":10}`)
	speed := e.created(opA, "/api/v1/alert-rules", `{"group":"ga","kind":"speed","speed_kmh":80}`)
	logRule := e.created(admin, "/api/v1/alert-rules", `{"group":"gb","kind":"log","level":"error","text":"door"}`)

	rules, _ := listOf[storage.AlertRule](e, opA, "/api/v1/alert-rules")
	byID := map[string]storage.AlertRule{}
	for _, r := range rules {
		byID[r.ID] = r
	}
	if got, want := ids(rules, func(r storage.AlertRule) string { return r.ID }), sortedIDs(enter, exit, offline, speed); got != want {
		t.Errorf("rules of alice: %s, want %s", got, want)
	}
	if r := byID[enter]; r.Group != "ga" || r.Kind != "geofence_enter" || r.Geofence != square || r.Name != "in" {
		t.Errorf("enter rule: %+v", r)
	}
	if r := byID[offline]; r.OfflineMinutes != 10 {
		t.Errorf("offline rule: %+v", r)
	}
	if r := byID[speed]; r.SpeedKMH != 80 {
		t.Errorf("speed rule: %+v", r)
	}
	list, _ := listOf[storage.AlertRule](e, opB, "/api/v1/alert-rules")
	if len(list) != 1 || list[0].ID != logRule || list[0].Level != "error" || list[0].Text != "door" {
		t.Errorf("rules of bob: %+v, want the log rule", list)
	}
	list, _ = listOf[storage.AlertRule](e, admin, "/api/v1/alert-rules")
	if len(list) != 5 {
		t.Errorf("rules of the admin: %d, want 5", len(list))
	}

	if code, _ := e.do("DELETE", opB, "/api/v1/alert-rules/"+speed, ""); code != 403 {
		t.Errorf("DELETE another group's rule: %d, want 403", code)
	}
	if code, body := e.do("DELETE", opA, "/api/v1/alert-rules/"+speed, ""); code != 204 {
		t.Errorf("DELETE a rule: %d %s, want 204", code, body)
	}
	if code, _ := e.do("DELETE", opA, "/api/v1/alert-rules/"+speed, ""); code != 404 {
		t.Errorf("DELETE it again: %d, want 404", code)
	}
	// Deleting the geofence deletes its rules.
	if code, _ := e.do("DELETE", opA, "/api/v1/geofences/"+square, ""); code != 204 {
		t.Fatalf("DELETE the geofence: %d", code)
	}
	list, _ = listOf[storage.AlertRule](e, opA, "/api/v1/alert-rules")
	if got := ids(list, func(r storage.AlertRule) string { return r.ID }); got != offline {
		t.Errorf("rules after deleting their geofence: %s, want %s", got, offline)
	}
}

func TestAlertsAPIWebhooks(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.alerting()
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "ga")

	if code, _ := e.get(opA, "/api/v1/webhooks"); code != 403 {
		t.Errorf("operator lists webhooks: %d, want 403", code)
	}
	if code, _ := e.post(opA, "/api/v1/webhooks", `{"url":"http://example.com/h","group":"ga"}`); code != 403 {
		t.Errorf("operator creates a webhook: %d, want 403", code)
	}
	if code, _ := e.get("", "/api/v1/webhooks"); code != 401 {
		t.Errorf("webhooks without token: %d, want 401", code)
	}
	for _, body := range []string{`{"group":"ga"}`, `{"url":"ftp://example.com/h"}`, `{"url":"/relative"}`,
		`{"url":"http://example.com/h","secret":"short"}`, `{"url":"http://example.com/h","group":"bad group"}`} {
		if code, resp := e.post(admin, "/api/v1/webhooks", body); code != 400 {
			t.Errorf("create webhook %s: %d %s, want 400", body, code, resp)
		}
	}
	type hook struct {
		ID, URL, Group, Secret string
	}
	create := func(body string) hook {
		t.Helper()
		code, resp := e.post(admin, "/api/v1/webhooks", body)
		var h hook
		if code != 201 || json.Unmarshal([]byte(resp), &h) != nil || h.ID == "" {
			t.Fatalf("create webhook %s: %d %s", body, code, resp)
		}
		return h
	}
	made := create(`{"url":"https://example.com/all"}`)
	if !strings.HasPrefix(made.Secret, "dtwh_") || len(made.Secret) < 30 || made.Group != "" {
		t.Errorf("generated webhook: %+v", made)
	}
	given := create(`{"url":"http://example.com/ga","group":"ga","secret":"0123456789abcdefXYZ"}`)
	if given.Secret != "0123456789abcdefXYZ" || given.Group != "ga" {
		t.Errorf("webhook with a secret: %+v", given)
	}
	list, _ := listOf[hook](e, admin, "/api/v1/webhooks")
	_, body := e.get(admin, "/api/v1/webhooks")
	if got := ids(list, func(h hook) string { return h.ID }); got != sortedIDs(made.ID, given.ID) {
		t.Errorf("webhooks listed: %s", body)
	}
	if strings.Contains(body, "secret") || strings.Contains(body, made.Secret) || strings.Contains(body, given.Secret) {
		t.Errorf("the list shows secrets: %s", body)
	}
	if code, _ := e.do("DELETE", opA, "/api/v1/webhooks/"+made.ID, ""); code != 403 {
		t.Errorf("operator deletes a webhook: %d, want 403", code)
	}
	if code, resp := e.do("DELETE", admin, "/api/v1/webhooks/"+made.ID, ""); code != 204 {
		t.Errorf("delete webhook: %d %s, want 204", code, resp)
	}
	if code, _ := e.do("DELETE", admin, "/api/v1/webhooks/"+made.ID, ""); code != 404 {
		t.Errorf("delete it again: %d, want 404", code)
	}
	list, _ = listOf[hook](e, admin, "/api/v1/webhooks")
	if len(list) != 1 || list[0].ID != given.ID {
		t.Errorf("webhooks after delete: %+v", list)
	}
}

func TestAlertsAPIEventsAndAlerts(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	as := e.alerting()
	ctx := context.Background()
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "ga")
	e.addDevice("a1", "ga")
	e.addDevice("a2", "ga")
	e.addDevice("b1", "gb")
	gfA, err := as.CreateGeofence(ctx, storage.Geofence{Name: "A", Group: "ga", Kind: storage.GeofencePolygon,
		Ring: [][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}})
	if err != nil {
		t.Fatal(err)
	}
	gfB, err := as.CreateGeofence(ctx, storage.Geofence{Name: "B", Group: "gb", Kind: storage.GeofenceCircle, Lat: 1, Lng: 1, RadiusM: 100})
	if err != nil {
		t.Fatal(err)
	}
	rule, err := as.CreateAlertRule(ctx, storage.AlertRule{Group: "ga", Kind: storage.RuleGeofenceEnter, Geofence: gfA.ID})
	if err != nil {
		t.Fatal(err)
	}
	// Enters and exits of a1, a2 (ga) and b1 (gb), a second apart from
	// base, each enter with an alert.
	base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC).UnixMilli()
	var ts []storage.Transition
	n := 0
	for _, d := range []struct{ dev, gf, group string }{{"a1", gfA.ID, "ga"}, {"a2", gfA.ID, "ga"}, {"b1", gfB.ID, "gb"}} {
		for i, on := range []bool{true, false} {
			n++
			at := base + int64(n)*1000
			typ := map[bool]string{true: "enter", false: "exit"}[on]
			tr := storage.Transition{Device: d.dev, Key: "geofence:" + d.gf, On: on, TS: at,
				Event: &storage.GeofenceEvent{ID: fmt.Sprintf("ev-%s-%d", d.dev, i), Device: d.dev, Geofence: d.gf, Type: typ,
					TS: at, Location: fmt.Sprintf("l%d", n), Lat: 0.5, Lng: 0.5}}
			if on {
				tr.Alerts = []storage.Alert{{ID: "al-" + d.dev, Rule: rule.ID, Kind: rule.Kind, Device: d.dev, Group: d.group,
					TS: at, Cause: tr.Event.Location, Message: d.dev + " entered", CreatedAt: at}}
			}
			ts = append(ts, tr)
		}
	}
	if _, _, err := as.ApplyAlerts(ctx, ts, nil); err != nil {
		t.Fatal(err)
	}

	evID := func(v storage.GeofenceEvent) string { return v.ID }
	evs, _ := listOf[storage.GeofenceEvent](e, admin, "/api/v1/geofence-events")
	if got := ids(evs, evID); got != "ev-b1-1,ev-b1-0,ev-a2-1,ev-a2-0,ev-a1-1,ev-a1-0" {
		t.Errorf("admin's events, newest first: %s", got)
	}
	evs, _ = listOf[storage.GeofenceEvent](e, opA, "/api/v1/geofence-events")
	if got := ids(evs, evID); got != "ev-a2-1,ev-a2-0,ev-a1-1,ev-a1-0" {
		t.Errorf("alice's events: %s, want ga's only", got)
	}
	if e0 := evs[0]; e0.Device != "a2" || e0.Geofence != gfA.ID || e0.Type != "exit" || e0.TS != base+4000 {
		t.Errorf("event: %+v", e0)
	}
	evs, _ = listOf[storage.GeofenceEvent](e, opA, "/api/v1/geofence-events?device=a1")
	if got := ids(evs, evID); got != "ev-a1-1,ev-a1-0" {
		t.Errorf("events of a1: %s", got)
	}
	// Pages of one, by cursor; a time range.
	var paged []string
	cursor := ""
	for range 10 {
		page, next := listOf[storage.GeofenceEvent](e, opA, "/api/v1/geofence-events?limit=1&cursor="+cursor)
		paged = append(paged, ids(page, evID))
		if cursor = next; cursor == "" {
			break
		}
	}
	if got := strings.Join(paged, ","); got != "ev-a2-1,ev-a2-0,ev-a1-1,ev-a1-0" {
		t.Errorf("events by pages of one: %s", got)
	}
	from := time.UnixMilli(base + 2000).UTC().Format(time.RFC3339Nano)
	to := time.UnixMilli(base + 3000).UTC().Format(time.RFC3339Nano)
	evs, _ = listOf[storage.GeofenceEvent](e, admin, "/api/v1/geofence-events?from="+from+"&to="+to)
	if got := ids(evs, evID); got != "ev-a2-0,ev-a1-1" {
		t.Errorf("events from %s to %s: %s", from, to, got)
	}

	alID := func(v storage.Alert) string { return v.ID }
	als, _ := listOf[storage.Alert](e, admin, "/api/v1/alerts")
	if got := ids(als, alID); got != "al-b1,al-a2,al-a1" {
		t.Errorf("admin's alerts: %s", got)
	}
	als, _ = listOf[storage.Alert](e, opA, "/api/v1/alerts")
	if got := ids(als, alID); got != "al-a2,al-a1" {
		t.Errorf("alice's alerts: %s", got)
	}
	if a := als[1]; a.Device != "a1" || a.Rule != rule.ID || a.Kind != "geofence_enter" || a.Message != "a1 entered" {
		t.Errorf("alert: %+v", a)
	}

	for _, p := range []string{"/api/v1/alerts", "/api/v1/geofence-events"} {
		if code, _ := e.get(opA, p+"?device=b1"); code != 403 {
			t.Errorf("%s?device=b1 by alice: %d, want 403", p, code)
		}
		if code, _ := e.get(opA, p+"?device=nope"); code != 404 {
			t.Errorf("%s?device=nope: %d, want 404", p, code)
		}
		if code, _ := e.get(opA, p+"?from=yesterday"); code != 400 {
			t.Errorf("%s?from=yesterday: %d, want 400", p, code)
		}
		if code, _ := e.get(opA, p+"?limit=0"); code != 400 {
			t.Errorf("%s?limit=0: %d, want 400", p, code)
		}
		if code, _ := e.get(opA, p+"?cursor=garbage"); code != 400 {
			t.Errorf("%s?cursor=garbage: %d, want 400", p, code)
		}
		if code, _ := e.get("", p); code != 401 {
			t.Errorf("%s without token: %d, want 401", p, code)
		}
	}
}

// plainStore is the test store reduced to the gateway's Store: no Alerting.
type plainStore struct{ wsgateway.Store }

func TestAlertsAPIWithoutAlertingStore(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	gw, err := wsgateway.New(wsgateway.Config{ID: "gw-plain"}, e.rdb, e.rdb, plainStore{e.store}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("gateway: %v", err)
		}
	})
	plain := &env{t: t, base: "http://" + ln.Addr().String()}
	for _, p := range []string{"/api/v1/geofences", "/api/v1/alert-rules", "/api/v1/webhooks", "/api/v1/alerts", "/api/v1/geofence-events"} {
		code, body := plain.get(admin, p)
		if code != http.StatusNotImplemented || !strings.Contains(body, "cannot keep geofences and alerts") {
			t.Errorf("GET %s on a store without alerting: %d %s, want 501", p, code, body)
		}
	}
	if code, _ := plain.get("", "/api/v1/geofences"); code != 401 {
		t.Errorf("without token: %d, want 401 first", code)
	}
}

// The worker publishes geofence events and alerts on the device's live
// channel; a viewer of the device gets them, a viewer of another group
// does not.
func TestAlertsAPILiveMessagesReachViewers(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "ga")
	e.addDevice("b1", "gb")
	opA := e.addUser("alice", storage.RoleOperator, "ga")
	opB := e.addUser("bob", storage.RoleOperator, "gb")
	wsA, wsB := e.dialLive(opA), e.dialLive(opB)
	for _, ws := range []interface{ WriteJSON(any) error }{wsA, wsB} {
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
	}
	if m := readLive(t, wsA); m.Type != "snapshot" {
		t.Fatalf("alice: %s, want a snapshot", m.Raw)
	}
	if m := readLive(t, wsB); m.Type != "snapshot" {
		t.Fatalf("bob: %s, want a snapshot", m.Raw)
	}
	e.subscribed("a1")
	e.subscribed("b1")
	geofence := `{"type":"geofence","device":"a1","id":"ev1","geofence":"g1","name":"Depot","event":"enter","ts":1,"lat":1,"lng":2}`
	alert := `{"type":"alert","device":"a1","id":"al1","rule":"r1","kind":"geofence_enter","ts":1,"message":"a1 entered Depot"}`
	marker := `{"type":"alert","device":"b1","id":"al2","rule":"r2","kind":"speed","ts":2,"message":"b1 too fast"}`
	err := e.rdb.PublishLive(context.Background(), []redisq.LiveMessage{
		{Device: "a1", Payload: []byte(geofence)}, {Device: "a1", Payload: []byte(alert)}, {Device: "b1", Payload: []byte(marker)}})
	if err != nil {
		t.Fatal(err)
	}
	if m := readLive(t, wsA); m.Raw != geofence+"\n" && m.Raw != geofence {
		t.Errorf("alice got %s, want the geofence event", m.Raw)
	}
	if m := readLive(t, wsA); m.Raw != alert+"\n" && m.Raw != alert {
		t.Errorf("alice got %s, want the alert", m.Raw)
	}
	// bob gets b1's alert only: had a1's messages reached him, they would
	// have come first.
	if m := readLive(t, wsB); m.Raw != marker {
		t.Errorf("bob got %s, want b1's alert only", m.Raw)
	}
}

// sortedIDs joins ids in the order the store lists them (by id).
func sortedIDs(ids ...string) string {
	s := slices.Clone(ids)
	slices.Sort(s)
	return strings.Join(s, ",")
}

package worker

import (
	"slices"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// Circles contain what lies within their radius (great-circle metres);
// polygons, open or closed rings, what lies inside the ring.
func TestFenceContains(t *testing.T) {
	circle := newFence(storage.Geofence{Kind: storage.GeofenceCircle, Lat: 52.5, Lng: 13.4, RadiusM: 500})
	// 0.004° of latitude is about 445 m, 0.005° about 556 m.
	for _, tc := range []struct {
		f        fence
		lat, lng float64
		want     bool
	}{
		{circle, 52.5, 13.4, true},
		{circle, 52.504, 13.4, true},
		{circle, 52.505, 13.4, false},
		{newFence(storage.Geofence{Kind: storage.GeofencePolygon, Ring: [][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}}}), 0.5, 0.5, true},
		{newFence(storage.Geofence{Kind: storage.GeofencePolygon, Ring: [][2]float64{{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 0}}}), 0.5, 1.5, false},
		// A triangle: the point (0.9, 0.1) [lng, lat] is inside, (0.1, 0.9) outside.
		{newFence(storage.Geofence{Kind: storage.GeofencePolygon, Ring: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}), 0.1, 0.9, true},
		{newFence(storage.Geofence{Kind: storage.GeofencePolygon, Ring: [][2]float64{{0, 0}, {1, 0}, {1, 1}}}), 0.9, 0.1, false},
	} {
		if got := tc.f.contains(tc.lat, tc.lng); got != tc.want {
			t.Errorf("%s %v contains (%v, %v) = %v; want %v", tc.f.Kind, tc.f.Geofence, tc.lat, tc.lng, got, tc.want)
		}
	}
}

// A log rule matches logs at or above its level whose message contains its
// text in any case; ids are the same for the same rule, device and log.
func TestLogRules(t *testing.T) {
	gr := &groupRules{logs: []storage.AlertRule{
		{ID: "warn+", Group: "g", Kind: storage.RuleLog, Level: "warn"},
		{ID: "door", Group: "g", Kind: storage.RuleLog, Text: "DOOR"},
		{ID: "both", Group: "g", Kind: storage.RuleLog, Level: "error", Text: "door"},
	}}
	var a alerting
	for _, tc := range []struct {
		level, msg string
		want       []string
	}{
		{"info", "all fine", nil},
		{"warn", "low battery", []string{"warn+"}},
		{"fatal", "Door 2 opened", []string{"warn+", "door", "both"}},
		{"debug", "door ajar", []string{"door"}},
		{"nonsense", "x", nil},
	} {
		var ev evaluation
		a.logRules(&ev, gr, &storage.LogEntry{Device: "d", ID: "l1", TS: time.Now().UnixMilli(), Level: tc.level, Message: tc.msg})
		var got []string
		for _, al := range ev.alerts {
			got = append(got, al.Rule)
			if al.ID != alertID(al.Rule, "d", "l1") || al.Cause != "l1" || al.Group != "g" {
				t.Errorf("alert %+v", al)
			}
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s %q: rules %v; want %v", tc.level, tc.msg, got, tc.want)
		}
	}
}

// The webhook backoff doubles from 1 s up to 5 minutes.
func TestWebhookBackoff(t *testing.T) {
	for n, want := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 5: 16 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 100: 5 * time.Minute} {
		if got := webhookBackoff(n); got != want {
			t.Errorf("webhookBackoff(%d) = %v; want %v", n, got, want)
		}
	}
}

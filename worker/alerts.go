package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
	"github.com/paulmach/orb/planar"
	"go.uber.org/zap"

	"github.com/devtrack/devtrack/internal/devicecache"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
)

// Alerting, the worker's part (storage.Alerting holds the rest):
//
//   - After a batch is stored and before it is removed from the processing
//     list, each location of a device whose group has geofences or speed
//     rules proposes a Transition per geofence (key "geofence:ID", on =
//     inside) and per speed rule ("speed:RULE", on = speed above the limit;
//     a location without speed proposes none); enter/exit rules attach their
//     alert to the crossing, log rules give alerts of their own. The store
//     applies them in one transaction (ApplyAlerts): a crossing counts only
//     when the location is later than the state, and every id is
//     deterministic (alertID), so a batch taken again after a crash, or the
//     same items on two workers, store each event and alert once. If
//     ApplyAlerts fails the batch is held as for a failed save: a store
//     outage is waited out; another error is retried MaxAttempts times and
//     then logged and skipped (the records stay stored; their alerts are
//     lost). New events and alerts are published on the device's live
//     channel as notices (they move neither last-seen nor the position).
//   - Geofences and rules are read every AlertsPoll (default 2 s), so a new
//     geofence works within seconds. A device's group comes from the device
//     cache (a registered device is kept 10 minutes: a device moved to
//     another group is judged by its old group's rules until then).
//   - offline.go scans last-seen times; webhook.go sends the alerts.
//
// A store that does not implement AlertStore has no alerting.

// AlertStore is what alerting needs of the store. storage.Store implements it.
type AlertStore interface {
	Geofences(ctx context.Context, groups []string) ([]storage.Geofence, error)
	AlertRules(ctx context.Context, groups []string) ([]storage.AlertRule, error)
	ApplyAlerts(ctx context.Context, ts []storage.Transition, alerts []storage.Alert) ([]storage.GeofenceEvent, []storage.Alert, error)
	ClaimDeliveries(ctx context.Context, worker string, nowMS, leaseMS int64, limit int) ([]storage.Delivery, error)
	FinishDelivery(ctx context.Context, id string, delivered bool, errText string, retryAtMS int64) error
}

var _ AlertStore = storage.Store(nil)

// alerting is the worker's alert state: the rules, read every AlertsPoll,
// and the device groups.
type alerting struct {
	store  AlertStore
	groups *devicecache.Cache
	rules  atomic.Pointer[ruleSet]
	// wake tells the webhook sender that new alerts are queued.
	wake chan struct{}
	// offlineSeen: see offline.go. Only the offline loop touches it.
	offlineSeen map[offlineKey]bool
	scanned     bool
	// Each loop warns at the first of a run of failures and tells when it
	// works again, rather than logging every second through an outage.
	reloadFails, scanFails, claimFails failures
}

// failures is a loop's run of failures.
type failures struct{ n int }

// failed records err (nil: a success) and reports whether it was one,
// logging the first failure of a run and the end of it.
func (f *failures) failed(log *zap.Logger, what string, err error) bool {
	if err == nil {
		if f.n > 0 {
			log.Info(what+" works again", zap.Int("failures", f.n))
		}
		f.n = 0
		return false
	}
	if f.n == 0 {
		log.Warn(what+" failed; retrying quietly until it works", zap.Error(err))
	}
	f.n++
	return true
}

// ruleSet is one reading of the geofences and rules, by group.
type ruleSet struct {
	groups  map[string]*groupRules
	offline int // offline rules in all groups
}

type groupRules struct {
	fences  []fence
	enter   map[string][]storage.AlertRule // by geofence
	exit    map[string][]storage.AlertRule
	speed   []storage.AlertRule
	logs    []storage.AlertRule
	offline []storage.AlertRule
}

// fence is a geofence with its geometry.
type fence struct {
	storage.Geofence
	poly orb.Polygon // a polygon's ring, closed
}

func (f *fence) contains(lat, lng float64) bool {
	p := orb.Point{lng, lat}
	if f.Kind == storage.GeofenceCircle {
		return geo.Distance(orb.Point{f.Lng, f.Lat}, p) <= f.RadiusM
	}
	return planar.PolygonContains(f.poly, p)
}

func newFence(g storage.Geofence) fence {
	f := fence{Geofence: g}
	if g.Kind == storage.GeofencePolygon && len(g.Ring) > 0 {
		ring := make(orb.Ring, 0, len(g.Ring)+1)
		for _, p := range g.Ring {
			ring = append(ring, orb.Point{p[0], p[1]})
		}
		if !ring.Closed() {
			ring = append(ring, ring[0])
		}
		f.poly = orb.Polygon{ring}
	}
	return f
}

func buildRuleSet(fences []storage.Geofence, rules []storage.AlertRule) *ruleSet {
	rs := &ruleSet{groups: map[string]*groupRules{}}
	group := func(g string) *groupRules {
		gr := rs.groups[g]
		if gr == nil {
			gr = &groupRules{enter: map[string][]storage.AlertRule{}, exit: map[string][]storage.AlertRule{}}
			rs.groups[g] = gr
		}
		return gr
	}
	for _, g := range fences {
		gr := group(g.Group)
		gr.fences = append(gr.fences, newFence(g))
	}
	for _, r := range rules {
		gr := group(r.Group)
		switch r.Kind {
		case storage.RuleGeofenceEnter:
			gr.enter[r.Geofence] = append(gr.enter[r.Geofence], r)
		case storage.RuleGeofenceExit:
			gr.exit[r.Geofence] = append(gr.exit[r.Geofence], r)
		case storage.RuleSpeed:
			gr.speed = append(gr.speed, r)
		case storage.RuleLog:
			gr.logs = append(gr.logs, r)
		case storage.RuleOffline:
			gr.offline = append(gr.offline, r)
			rs.offline++
		}
	}
	return rs
}

// newAlerting returns the worker's alerting, nil if the store has none.
func newAlerting(s BatchStore, devices *devicecache.Cache, cfg Config) *alerting {
	as, ok := s.(AlertStore)
	if !ok || cfg.AlertsPoll < 0 {
		return nil
	}
	if devices == nil {
		lookup, ok := s.(DeviceLookup)
		if !ok {
			return nil
		}
		devices = devicecache.New(lookup, devicecache.Config{
			Size: deviceCacheSize, Known: deviceKnownTTL, Unknown: deviceUnknownTTL, Timeout: cfg.StoreTimeout})
	}
	a := &alerting{store: as, groups: devices, wake: make(chan struct{}, 1), offlineSeen: map[offlineKey]bool{}}
	a.rules.Store(buildRuleSet(nil, nil))
	return a
}

// reload reads the geofences and rules.
func (a *alerting) reload(ctx context.Context) error {
	fences, err := a.store.Geofences(ctx, nil)
	if err != nil {
		return fmt.Errorf("read geofences: %w", err)
	}
	rules, err := a.store.AlertRules(ctx, nil)
	if err != nil {
		return fmt.Errorf("read alert rules: %w", err)
	}
	a.rules.Store(buildRuleSet(fences, rules))
	return nil
}

// reloadLoop reads the rules every AlertsPoll until ctx ends.
func (w *Worker) reloadLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.AlertsPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
		err := w.alerts.reload(c)
		cancel()
		if ctx.Err() != nil {
			return
		}
		w.alerts.reloadFails.failed(w.log, "reload geofences and alert rules", err)
	}
}

// alertID is the deterministic id of what one cause raised: the first 128
// bits of SHA-256 over the parts, hex.
func alertID(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x1f")))
	return hex.EncodeToString(h[:16])
}

// evaluation is what a batch proposes to the store.
type evaluation struct {
	transitions []storage.Transition
	alerts      []storage.Alert
	names       map[string]string // geofence names, for the live messages
}

// evaluate builds the transitions and alerts of the stored entries.
func (a *alerting) evaluate(ctx context.Context, stored []*entry) (evaluation, error) {
	rs := a.rules.Load()
	ev := evaluation{names: map[string]string{}}
	if len(rs.groups) == 0 {
		return ev, nil
	}
	groupOf := map[string]*groupRules{}
	for _, e := range stored {
		d := e.item.Device
		gr, done := groupOf[d]
		if !done {
			dev, _, err := a.groups.Device(ctx, d)
			switch {
			case errors.Is(err, storage.ErrNotFound):
			case err != nil:
				return evaluation{}, fmt.Errorf("group of device %q: %w", d, err)
			default:
				gr = rs.groups[dev.Group]
			}
			groupOf[d] = gr
		}
		if gr == nil {
			continue
		}
		if e.loc != nil {
			a.locationRules(&ev, gr, e.loc)
		} else if e.log != nil {
			a.logRules(&ev, gr, e.log)
		}
	}
	return ev, nil
}

func (a *alerting) locationRules(ev *evaluation, gr *groupRules, l *storage.Location) {
	for i := range gr.fences {
		f := &gr.fences[i]
		in := f.contains(l.Lat, l.Lng)
		typ, rules, verb := "exit", gr.exit[f.ID], "left"
		if in {
			typ, rules, verb = "enter", gr.enter[f.ID], "entered"
		}
		t := storage.Transition{Device: l.Device, Key: "geofence:" + f.ID, On: in, TS: l.TS,
			Event: &storage.GeofenceEvent{ID: alertID("geofence", f.ID, l.Device, l.ID, typ), Device: l.Device, Geofence: f.ID,
				Type: typ, TS: l.TS, Location: l.ID, Lat: l.Lat, Lng: l.Lng}}
		for _, r := range rules {
			t.Alerts = append(t.Alerts, storage.Alert{ID: alertID(r.ID, l.Device, l.ID), Rule: r.ID, Kind: r.Kind,
				Device: l.Device, Group: r.Group, TS: l.TS, Cause: l.ID, Lat: l.Lat, Lng: l.Lng,
				Message: fmt.Sprintf("%s %s %s", l.Device, verb, fenceName(f.Geofence))})
		}
		ev.names[f.ID] = f.Name
		ev.transitions = append(ev.transitions, t)
	}
	if l.Speed == nil {
		return
	}
	kmh := *l.Speed * 3.6
	for _, r := range gr.speed {
		over := kmh > r.SpeedKMH
		t := storage.Transition{Device: l.Device, Key: "speed:" + r.ID, On: over, TS: l.TS}
		if over {
			t.Alerts = []storage.Alert{{ID: alertID(r.ID, l.Device, l.ID), Rule: r.ID, Kind: r.Kind,
				Device: l.Device, Group: r.Group, TS: l.TS, Cause: l.ID, Lat: l.Lat, Lng: l.Lng,
				Message: fmt.Sprintf("%s at %.0f km/h, over %g km/h", l.Device, kmh, r.SpeedKMH)}}
		}
		ev.transitions = append(ev.transitions, t)
	}
}

func fenceName(g storage.Geofence) string {
	if g.Name != "" {
		return g.Name
	}
	return g.ID
}

func (a *alerting) logRules(ev *evaluation, gr *groupRules, l *storage.LogEntry) {
	level := slices.Index(protocol.Levels, l.Level)
	for _, r := range gr.logs {
		if r.Level != "" && (level < 0 || level < slices.Index(protocol.Levels, r.Level)) {
			continue
		}
		if r.Text != "" && !strings.Contains(strings.ToLower(l.Message), strings.ToLower(r.Text)) {
			continue
		}
		msg := l.Message
		if len(msg) > 300 {
			msg = strings.ToValidUTF8(msg[:300], "") + "…"
		}
		ev.alerts = append(ev.alerts, storage.Alert{ID: alertID(r.ID, l.Device, l.ID), Rule: r.ID, Kind: r.Kind,
			Device: l.Device, Group: r.Group, TS: l.TS, Cause: l.ID,
			Message: fmt.Sprintf("%s [%s] %s", l.Device, l.Level, strings.ReplaceAll(msg, "\x00", "\uFFFD"))})
	}
}

// applyAlerts evaluates the stored entries and applies what they propose,
// retrying as storeAll does: a store outage for as long as it takes (only
// stop ends the wait: then it returns false and the batch stays in the
// processing list), another failure MaxAttempts times, after which the
// batch's alerts are given up (logged). It returns the live notices of
// what was new.
func (w *Worker) applyAlerts(ctx, stop context.Context, stored []*entry) ([]redisq.LiveMessage, bool) {
	if w.alerts == nil {
		return nil, true
	}
	for try := 0; ; try++ {
		if try > 0 && !sleep(stop, backoff(try-1)) {
			return nil, false
		}
		c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
		notices, err := w.applyOnce(c, stored)
		cancel()
		if err == nil {
			return notices, true
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if w.storeFailed(ctx, err) {
			continue
		}
		if try+1 >= w.cfg.MaxAttempts {
			alertsFailed.Inc()
			w.log.Error("alerts of a stored batch given up", zap.Int("items", len(stored)), zap.Int("tries", try+1), zap.Error(err))
			return nil, true
		}
		w.log.Warn("apply alerts; retrying", zap.Error(err))
	}
}

func (w *Worker) applyOnce(ctx context.Context, stored []*entry) ([]redisq.LiveMessage, error) {
	ev, err := w.alerts.evaluate(ctx, stored)
	if err != nil {
		return nil, err
	}
	if len(ev.transitions) == 0 && len(ev.alerts) == 0 {
		return nil, nil
	}
	events, alerts, err := w.alerts.store.ApplyAlerts(ctx, ev.transitions, ev.alerts)
	if err != nil {
		return nil, fmt.Errorf("apply alerts: %w", err)
	}
	w.storeWorked(ctx)
	geofenceEvents.Add(float64(len(events)))
	alertsRaised.Add(float64(len(alerts)))
	if len(alerts) > 0 {
		w.alerts.notify()
	}
	return notices(events, alerts, ev.names), nil
}

// notify wakes the webhook sender.
func (a *alerting) notify() {
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// GeofenceMessage and AlertMessage are the viewer-protocol messages of a
// new geofence event and a new alert, published on the device's live
// channel ("type" first: the gateway's hub reads it from the prefix).
type GeofenceMessage struct {
	Type     string  `json:"type"` // "geofence"
	Device   string  `json:"device"`
	ID       string  `json:"id"`
	Geofence string  `json:"geofence"`
	Name     string  `json:"name"`
	Event    string  `json:"event"` // "enter" or "exit"
	TS       int64   `json:"ts"`
	Lat      float64 `json:"lat"`
	Lng      float64 `json:"lng"`
}

// AlertMessage: see GeofenceMessage.
type AlertMessage struct {
	Type    string `json:"type"` // "alert"
	Device  string `json:"device"`
	ID      string `json:"id"`
	Rule    string `json:"rule"`
	Kind    string `json:"kind"`
	TS      int64  `json:"ts"`
	Message string `json:"message"`
}

func notices(events []storage.GeofenceEvent, alerts []storage.Alert, names map[string]string) []redisq.LiveMessage {
	var out []redisq.LiveMessage
	for _, e := range events {
		b, _ := json.Marshal(GeofenceMessage{Type: "geofence", Device: e.Device, ID: e.ID, Geofence: e.Geofence,
			Name: names[e.Geofence], Event: e.Type, TS: e.TS, Lat: e.Lat, Lng: e.Lng})
		out = append(out, redisq.LiveMessage{Device: e.Device, Payload: b, TS: e.TS, Notice: true})
	}
	for _, a := range alerts {
		b, _ := json.Marshal(AlertMessage{Type: "alert", Device: a.Device, ID: a.ID, Rule: a.Rule, Kind: a.Kind, TS: a.TS, Message: a.Message})
		out = append(out, redisq.LiveMessage{Device: a.Device, Payload: b, TS: a.TS, Notice: true})
	}
	return out
}

// startAlerting reads the rules once and starts alerting's loops (rules,
// offline scan, webhook sender) on ctx; the function it returns stops them
// and waits. work bounds the first reading.
func (w *Worker) startAlerting(ctx, work context.Context) func() {
	if w.alerts == nil {
		return func() {}
	}
	c, cancel := context.WithTimeout(work, w.cfg.StoreTimeout)
	if err := w.alerts.reload(c); err != nil {
		w.log.Warn("read geofences and alert rules; alerting waits for the next reading", zap.Error(err))
	}
	cancel()
	loops, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.reloadLoop(loops) })
	if w.cfg.OfflineScan > 0 {
		wg.Go(func() { w.offlineLoop(loops) })
	}
	if w.cfg.WebhookPoll > 0 {
		wg.Go(func() { w.webhookLoop(loops) })
	}
	return func() {
		stop()
		wg.Wait()
	}
}

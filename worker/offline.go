package worker

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
)

// Offline rules: every OfflineScan (default 10 s) a worker reads the
// devices' last-seen times and links from Redis and proposes, per offline
// rule and device of its group, the transition "offline:RULE" on at
// lastSeen + OfflineMinutes once that time has passed and the device has no
// link (no open socket), with its alert; and off at lastSeen once the
// device is seen again. Every worker scans and proposes the same
// transitions with the same ids (the alert's cause is the last-seen time),
// so the store keeps one alert per silence. last-seen is the gateway's
// receive time of the newest stored item (redisq PublishLive). A worker's
// first scan proposes off for every device (so that a silence that ended
// while no worker ran is closed); after that only for the devices it saw
// silent, which keeps an idle fleet from costing writes.

type offlineKey struct{ device, rule string }

// offlineLoop scans every OfflineScan until ctx ends.
func (w *Worker) offlineLoop(ctx context.Context) {
	t := time.NewTicker(w.cfg.OfflineScan)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		msgs, err := w.scanOffline(ctx, time.Now())
		if ctx.Err() != nil {
			return
		}
		if w.alerts.scanFails.failed(w.log, "offline scan", err) {
			continue
		}
		if err := w.redis(ctx, func(c context.Context) error { return w.queue.PublishLive(c, msgs) }); err != nil {
			w.log.Warn("publish offline alerts", zap.Error(err))
		}
	}
}

// scanOffline proposes the offline transitions of now and returns the live
// notices of the new alerts.
func (w *Worker) scanOffline(ctx context.Context, now time.Time) ([]redisq.LiveMessage, error) {
	a := w.alerts
	rs := a.rules.Load()
	if rs.offline == 0 {
		a.scanned = false // rules added later start with a full scan again
		return nil, nil
	}
	var states map[string]redisq.DeviceState
	if err := w.redis(ctx, func(c context.Context) (err error) {
		states, err = w.queue.DeviceStates(c)
		return err
	}); err != nil {
		return nil, fmt.Errorf("read device states: %w", err)
	}
	nowMS := now.UnixMilli()
	var ts []storage.Transition
	silent := map[offlineKey]bool{}
	for device, st := range states {
		if st.LastSeen <= 0 {
			continue
		}
		dev, _, err := a.groups.Device(ctx, device)
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("group of device %q: %w", device, err)
		}
		gr := rs.groups[dev.Group]
		if gr == nil || dev.RevokedAt != 0 {
			continue // a revoked device is silent for good: no alert
		}
		for _, r := range gr.offline {
			k := offlineKey{device, r.ID}
			after := time.Duration(r.OfflineMinutes) * w.cfg.OfflineMinute
			at := st.LastSeen + after.Milliseconds()
			if st.Link == "" && nowMS >= at {
				silent[k] = true
				seen := strconv.FormatInt(st.LastSeen, 10)
				ts = append(ts, storage.Transition{Device: device, Key: "offline:" + r.ID, On: true, TS: at,
					Alerts: []storage.Alert{{ID: alertID(r.ID, device, "offline", seen), Rule: r.ID, Kind: r.Kind,
						Device: device, Group: r.Group, TS: at, Cause: "offline@" + seen,
						Message: fmt.Sprintf("%s offline: nothing received for %d min (last seen %s)", device, r.OfflineMinutes,
							time.UnixMilli(st.LastSeen).UTC().Format(time.RFC3339))}}})
				continue
			}
			if !a.scanned || a.offlineSeen[k] {
				ts = append(ts, storage.Transition{Device: device, Key: "offline:" + r.ID, On: false, TS: st.LastSeen})
			}
		}
	}
	if len(ts) == 0 {
		a.scanned, a.offlineSeen = true, silent
		return nil, nil
	}
	c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
	defer cancel()
	_, alerts, err := a.store.ApplyAlerts(c, ts, nil)
	if err != nil {
		return nil, fmt.Errorf("apply offline transitions: %w", err)
	}
	a.scanned, a.offlineSeen = true, silent
	alertsRaised.Add(float64(len(alerts)))
	if len(alerts) > 0 {
		a.notify()
	}
	return notices(nil, alerts, nil), nil
}

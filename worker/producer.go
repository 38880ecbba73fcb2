package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/devtrack/devtrack/internal/devicecache"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// Items from the gateway are checked at the gateway: a registered device,
// times in milliseconds stamped or checked against its clock. Items that a
// backend pushes onto the ingest list itself get the same treatment here:
//
//   - Times (normalMillis): ts and received_at are Unix milliseconds. A value
//     below secondsBelow is taken as seconds (PHP's time(), Python's
//     int(time.time())) and multiplied by 1000: as milliseconds it would be
//     a time before March 1973, as seconds it is any time up to the year
//     5138. A missing (or 0) received_at is the time the worker took the
//     item, and a missing ts is received_at, as the gateway stamps its
//     receive time on a frame without ts. A negative time, or one of
//     microsecondsFrom or more (microseconds or nanoseconds), is a dead
//     letter with that reason. Gateway items never reach either bound.
//   - Devices (knownDevices): with Config.Devices set, an item of a device
//     that is not registered is a dead letter ("unknown device ..."): stored,
//     no operator could ever see it (visibility goes by the device's
//     group). Register the device and requeue the dead letters. Lookups are
//     cached (devicecache), so a backlog costs one query per device, not one
//     per item.
const (
	secondsBelow     = 100_000_000_000     // 1e11: 1973-03-03 in ms, the year 5138 in s
	microsecondsFrom = 100_000_000_000_000 // 1e14: the year 5138 in ms
)

// ErrUnknownDevice is the reason of the dead letter of an item whose device
// is not registered.
var ErrUnknownDevice = errors.New("unknown device")

// DeviceLookup tells whether a device is registered: Device returns an error
// wrapping storage.ErrNotFound when it is not. storage.Store implements it.
type DeviceLookup = devicecache.Lookup

var _ DeviceLookup = storage.Store(nil)

// normalMillis turns a producer's time into Unix milliseconds: 0 becomes
// missing, seconds are multiplied by 1000 (see above).
func normalMillis(what string, v, missing int64) (int64, error) {
	switch {
	case v < 0:
		return 0, fmt.Errorf("%w: %s %d is negative; want Unix milliseconds", protocol.ErrInvalidItem, what, v)
	case v == 0:
		return missing, nil
	case v < secondsBelow:
		return v * 1000, nil
	case v >= microsecondsFrom:
		return 0, fmt.Errorf("%w: %s %d is past the year 5138 in Unix milliseconds (microseconds or nanoseconds?); want Unix milliseconds",
			protocol.ErrInvalidItem, what, v)
	}
	return v, nil
}

// Device cache bounds (devicecache): a registered device stays registered
// (devices are revoked, never removed, and a revoked device's queued items
// are still stored), so it is kept long; an unknown one only briefly, so
// that items pushed right after `devtrack device add` are stored.
const (
	deviceCacheSize  = 100_000
	deviceKnownTTL   = 10 * time.Minute
	deviceUnknownTTL = time.Second
)

// knownDevices dead-letters the entries of unregistered devices and
// returns the others. A lookup that fails as a store outage is waited out
// (with backoff, counting no attempt, like a save); only stop ends the
// wait, and then it returns false with nothing buried, the batch left in
// the processing list.
func (w *Worker) knownDevices(ctx, stop context.Context, pending []*entry) ([]*entry, bool) {
	if w.cfg.Devices == nil || len(pending) == 0 {
		return pending, true
	}
	var known map[string]bool
	for try := 0; ; try++ {
		if try > 0 && !sleep(stop, backoff(try-1)) {
			return nil, false
		}
		var err error
		known, err = w.lookupDevices(ctx, pending)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil, false
		}
		if !w.storeFailed(ctx, err) {
			// The store writes, yet could not answer: not a reason to
			// refuse the items, nor to hold them.
			w.log.Warn("device lookup failed; storing the batch unchecked", zap.Error(err))
			return pending, true
		}
	}
	kept := pending[:0]
	for _, e := range pending {
		if known[e.item.Device] {
			kept = append(kept, e)
			continue
		}
		itemsUnknownDevice.Inc()
		w.bury(ctx, e, fmt.Errorf("%w %q: not registered, so no operator could see its records; add it (devtrack device add %s) and requeue the dead letters",
			ErrUnknownDevice, e.item.Device, e.item.Device))
	}
	return kept, true
}

// lookupDevices tells, for each device of the entries, whether it is
// registered: from the cache, else from the store.
func (w *Worker) lookupDevices(ctx context.Context, pending []*entry) (map[string]bool, error) {
	known := make(map[string]bool)
	for _, e := range pending {
		d := e.item.Device
		if _, done := known[d]; done {
			continue
		}
		_, queried, err := w.devices.Device(ctx, d)
		if queried {
			deviceLookups.Inc()
		}
		switch {
		case err == nil:
			known[d] = true
		case errors.Is(err, storage.ErrNotFound):
			known[d] = false
		default:
			return nil, fmt.Errorf("look up device %q: %w", d, err)
		}
	}
	return known, nil
}

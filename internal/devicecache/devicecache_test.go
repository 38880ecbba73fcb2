package devicecache

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// countingStore answers from a set of registered devices and counts queries.
type countingStore struct {
	devices map[string]storage.Device
	queries int
	fail    error
}

func (s *countingStore) Device(_ context.Context, id string) (storage.Device, error) {
	s.queries++
	if s.fail != nil {
		return storage.Device{}, s.fail
	}
	d, ok := s.devices[id]
	if !ok {
		return storage.Device{}, fmt.Errorf("device %q: %w", id, storage.ErrNotFound)
	}
	return d, nil
}

func TestCache(t *testing.T) {
	st := &countingStore{devices: map[string]storage.Device{"a": {ID: "a"}, "r": {ID: "r", RevokedAt: 5}}}
	c := New(st, Config{Size: 3, Known: time.Minute, Unknown: time.Second})
	now := time.Unix(1000, 0)
	c.now = func() time.Time { return now }
	ctx := context.Background()
	check := func(id string, wantQueried bool, wantErr error) storage.Device {
		t.Helper()
		d, queried, err := c.Device(ctx, id)
		if queried != wantQueried || !errors.Is(err, wantErr) || (wantErr == nil && err != nil) {
			t.Fatalf("Device(%s) = %+v, queried %v, %v; want queried %v, %v", id, d, queried, err, wantQueried, wantErr)
		}
		return d
	}
	check("a", true, nil)
	check("a", false, nil)
	if d := check("r", true, nil); d.RevokedAt != 5 {
		t.Errorf("revoked device %+v: want it as the store has it", d)
	}
	check("x", true, storage.ErrNotFound)
	check("x", false, storage.ErrNotFound)
	// An unknown device is asked again after a second, a known one not
	// before a minute.
	now = now.Add(2 * time.Second)
	check("x", true, storage.ErrNotFound)
	check("a", false, nil)
	// A store failure is not cached.
	st.fail = errors.New("store down")
	now = now.Add(time.Minute + time.Second)
	if _, queried, err := c.Device(ctx, "a"); !queried || err == nil || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("store down: queried %v, %v", queried, err)
	}
	st.fail = nil
	check("a", true, nil)
	// Bounded: a fourth device in a full cache of live entries starts over.
	check("y", true, storage.ErrNotFound)
	check("z", true, storage.ErrNotFound)
	if len(c.entries) > 3 {
		t.Fatalf("%d entries, want at most 3", len(c.entries))
	}
}

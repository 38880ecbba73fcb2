package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// legacyCases cover the legacy firmware keys (devtrack device legacy-key).
var legacyCases = []testCase{
	{"LegacyKeys", testLegacyKeys},
}

// A legacy key finds its device until a new key replaces it or the device
// is revoked; it lives beside the device's token without touching it, and
// every new key is issued later than the one before.
func testLegacyKeys(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, id := range []string{"d1", "d2", "gone"} {
		if err := st.AddDevice(ctx, storage.Device{ID: id, Group: "g", CreatedAt: t0}, token(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeDevice(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeviceByLegacyKey(ctx, token("k1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByLegacyKey before any key: err = %v, want ErrNotFound", err)
	}
	// A device's token is not a legacy key.
	if _, _, err := st.DeviceByLegacyKey(ctx, token("d1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByLegacyKey(a device token): err = %v, want ErrNotFound", err)
	}

	before := time.Now().UnixMilli()
	k1, err := st.SetLegacyKey(ctx, "d1", token("k1"))
	if err != nil || k1.Device != "d1" || k1.IssuedAt < before {
		t.Fatalf("SetLegacyKey(d1) = %+v, %v; want d1 issued at or after %d", k1, err, before)
	}
	d, k, err := st.DeviceByLegacyKey(ctx, token("k1"))
	if err != nil || d.ID != "d1" || d.Group != "g" || k != k1 {
		t.Errorf("DeviceByLegacyKey(k1) = %+v, %+v, %v; want d1 and %+v", d, k, err, k1)
	}
	if got, err := st.DeviceByTokenHash(ctx, token("d1")); err != nil || got.ID != "d1" {
		t.Errorf("d1's token after a legacy key was set: %+v, %v", got, err)
	}

	k2, err := st.SetLegacyKey(ctx, "d1", token("k2"))
	if err != nil || k2.IssuedAt <= k1.IssuedAt {
		t.Fatalf("second SetLegacyKey(d1) = %+v, %v; want issued after %d", k2, err, k1.IssuedAt)
	}
	if _, _, err := st.DeviceByLegacyKey(ctx, token("k1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("replaced key: err = %v, want ErrNotFound", err)
	}
	if d, k, err := st.DeviceByLegacyKey(ctx, token("k2")); err != nil || d.ID != "d1" || k != k2 {
		t.Errorf("DeviceByLegacyKey(k2) = %+v, %+v, %v; want d1 and %+v", d, k, err, k2)
	}

	if _, err := st.SetLegacyKey(ctx, "nope", token("k3")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetLegacyKey(unknown): err = %v, want ErrNotFound", err)
	}
	if _, err := st.SetLegacyKey(ctx, "gone", token("k4")); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("SetLegacyKey(revoked): err = %v, want ErrRevoked", err)
	}
	if _, err := st.SetLegacyKey(ctx, "d2", token("k2")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("SetLegacyKey(another device's key): err = %v, want ErrExists", err)
	}
	if d, _, err := st.DeviceByLegacyKey(ctx, token("k2")); err != nil || d.ID != "d1" {
		t.Errorf("d1's key after a refused SetLegacyKey onto it: %+v, %v", d, err)
	}
	if _, err := st.SetLegacyKey(ctx, "d2", nil); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("SetLegacyKey(empty hash): err = %v, want ErrInvalid", err)
	}
	k5, err := st.SetLegacyKey(ctx, "d2", token("k5"))
	if err != nil {
		t.Fatal(err)
	}

	issued, err := st.LegacyKeysIssuedSince(ctx, before)
	if want := []storage.LegacyKey{k2, k5}; err != nil || len(issued) != 2 || issued[0] != want[0] || issued[1] != want[1] {
		t.Errorf("LegacyKeysIssuedSince(%d) = %+v, %v; want %+v", before, issued, err, want)
	}
	if issued, err := st.LegacyKeysIssuedSince(ctx, k5.IssuedAt+60_000); err != nil || len(issued) != 0 {
		t.Errorf("LegacyKeysIssuedSince(later) = %+v, %v; want none", issued, err)
	}

	if err := st.RevokeDevice(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.DeviceByLegacyKey(ctx, token("k2")); !errors.Is(err, storage.ErrRevoked) {
		t.Errorf("key of a revoked device: err = %v, want ErrRevoked", err)
	}
}

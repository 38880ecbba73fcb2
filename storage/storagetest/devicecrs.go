package storagetest

import (
	"context"
	"errors"
	"testing"

	"github.com/devtrack/devtrack/storage"
)

// deviceCRSCases cover a device's default coordinate system (Device.CRS)
// and enrolling a revoked id again.
var deviceCRSCases = []testCase{
	{"DeviceCRS", testDeviceCRS},
	{"ReenrollDevice", testReenrollDevice},
}

// A device's crs is kept as given at registration, read back by every
// lookup (by id, by token, in lists) and changed by SetDeviceCRS; values
// that are no crs are refused, and nothing else of the device changes.
func testDeviceCRS(t *testing.T, st storage.Store) {
	ctx := context.Background()
	if err := st.AddDevice(ctx, storage.Device{ID: "phone", Group: "g", CreatedAt: t0, CRS: "gcj02"}, token("phone")); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDevice(ctx, storage.Device{ID: "box", Group: "g", CreatedAt: t0}, token("box")); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDevice(ctx, storage.Device{ID: "bad", CreatedAt: t0, CRS: "utm"}, token("bad")); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("AddDevice with crs utm: err = %v, want ErrInvalid", err)
	}
	if _, err := st.Device(ctx, "bad"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("device with a refused crs stored: %v", err)
	}
	check := func(id, want string) {
		t.Helper()
		d, err := st.Device(ctx, id)
		if err != nil || d.CRS != want {
			t.Errorf("Device(%s).CRS = %q (%v), want %q", id, d.CRS, err, want)
		}
		if d, err := st.DeviceByTokenHash(ctx, token(id)); err != nil || d.CRS != want {
			t.Errorf("DeviceByTokenHash(%s).CRS = %q (%v), want %q", id, d.CRS, err, want)
		}
		list, err := st.Devices(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.ID == id && d.CRS != want {
				t.Errorf("Devices: %s has crs %q, want %q", id, d.CRS, want)
			}
		}
	}
	check("phone", "gcj02")
	check("box", "")

	d, err := st.SetDeviceCRS(ctx, "box", "bd09")
	if err != nil || d.ID != "box" || d.CRS != "bd09" || d.Group != "g" || d.CreatedAt != t0 {
		t.Errorf("SetDeviceCRS(box, bd09) = %+v, %v", d, err)
	}
	check("box", "bd09")
	if _, err := st.SetDeviceCRS(ctx, "phone", ""); err != nil {
		t.Fatal(err)
	}
	check("phone", "")
	if _, err := st.SetDeviceCRS(ctx, "box", "GCJ02"); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("SetDeviceCRS(GCJ02): err = %v, want ErrInvalid (the names are lower case)", err)
	}
	check("box", "bd09")
	if _, err := st.SetDeviceCRS(ctx, "nobody", "gcj02"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetDeviceCRS(unknown): err = %v, want ErrNotFound", err)
	}
	// A revoked device keeps its crs and may still have it changed (its
	// archive is read by it).
	if err := st.RevokeDevice(ctx, "box"); err != nil {
		t.Fatal(err)
	}
	if d, err := st.SetDeviceCRS(ctx, "box", "gcj02"); err != nil || d.CRS != "gcj02" || d.RevokedAt == 0 {
		t.Errorf("SetDeviceCRS(revoked) = %+v, %v", d, err)
	}
}

// A revoked device is enrolled again with a new token, name, group and crs:
// the new token finds it, the old one does not; an active or unknown
// device is not.
func testReenrollDevice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	if err := st.AddDevice(ctx, storage.Device{ID: "van", Name: "old", Group: "g1", CreatedAt: t0}, token("van-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReenrollDevice(ctx, storage.Device{ID: "van"}, token("van-2")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("ReenrollDevice(active): err = %v, want ErrExists", err)
	}
	if _, err := st.ReenrollDevice(ctx, storage.Device{ID: "nobody"}, token("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ReenrollDevice(unknown): err = %v, want ErrNotFound", err)
	}
	if err := st.RevokeDevice(ctx, "van"); err != nil {
		t.Fatal(err)
	}
	d, err := st.ReenrollDevice(ctx, storage.Device{ID: "van", Name: "new", Group: "g2", CRS: "gcj02"}, token("van-2"))
	if err != nil || d.RevokedAt != 0 || d.Name != "new" || d.Group != "g2" || d.CRS != "gcj02" || d.CreatedAt != t0 || d.TokenRotatedAt == 0 {
		t.Fatalf("ReenrollDevice(revoked) = %+v, %v", d, err)
	}
	if got, err := st.DeviceByTokenHash(ctx, token("van-2")); err != nil || got.ID != "van" {
		t.Errorf("new token: %+v, %v", got, err)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("van-1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old token after re-enrolment: err = %v, want ErrNotFound", err)
	}
}

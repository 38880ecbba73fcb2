package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// The change stamps that gateways poll (cases of adminCases): a device's
// name or group (DevicesChangedSince) and a user's password
// (PasswordChangedAt).

// nextMS waits until the clock has passed the millisecond now and returns
// the new one: changes from then on are stamped at or after it, those
// before are not.
func nextMS(t *testing.T) int64 {
	t.Helper()
	start := time.Now().UnixMilli()
	deadline := time.Now().Add(time.Second)
	for time.Now().UnixMilli() <= start {
		if time.Now().After(deadline) {
			t.Fatal("the clock did not move in 1 s")
		}
		time.Sleep(100 * time.Microsecond)
	}
	return time.Now().UnixMilli()
}

func deviceIDs(ds []storage.Device) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.ID)
	}
	return out
}

// A new device is no change; UpdateDevice of its name or group and enrolling
// a revoked device again are, listed as the devices are now; a token
// rotation or a crs is not; a later change moves the device's stamp on.
func testDevicesChangedSince(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, d := range []storage.Device{
		{ID: "d1", Group: "g1", CreatedAt: t0}, {ID: "d2", Group: "g1", CreatedAt: t0},
		{ID: "d3", Group: "g1", CreatedAt: t0}, {ID: "d4", Group: "g1", CreatedAt: t0},
	} {
		if err := st.AddDevice(ctx, d, token(d.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := st.DevicesChangedSince(ctx, 0); err != nil || len(got) != 0 {
		t.Fatalf("DevicesChangedSince(0) of new devices = %+v, %v; want none", got, err)
	}
	since := nextMS(t)
	if _, err := st.UpdateDevice(ctx, "d1", storage.DeviceChange{Group: strp("g2")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UpdateDevice(ctx, "d2", storage.DeviceChange{Name: strp("Van")}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RotateDeviceToken(ctx, "d4", token("d4-new")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetDeviceCRS(ctx, "d4", "gcj02"); err != nil {
		t.Fatal(err)
	}
	got, err := st.DevicesChangedSince(ctx, since)
	if err != nil || len(got) != 2 || got[0].ID != "d1" || got[0].Group != "g2" || got[1].ID != "d2" || got[1].Name != "Van" || got[1].Group != "g1" {
		t.Fatalf("DevicesChangedSince after a move and a rename = %+v, %v; want d1 in g2, d2 named Van", got, err)
	}
	if got, err := st.DevicesChangedSince(ctx, time.Now().Add(time.Minute).UnixMilli()); err != nil || len(got) != 0 {
		t.Errorf("DevicesChangedSince(a minute ahead) = %+v, %v; want none", got, err)
	}

	// A second change of d1 is stamped after the first ones.
	later := nextMS(t)
	if _, err := st.UpdateDevice(ctx, "d1", storage.DeviceChange{Group: strp("g1")}); err != nil {
		t.Fatal(err)
	}
	if got, err := st.DevicesChangedSince(ctx, later); err != nil || len(got) != 1 || got[0].ID != "d1" || got[0].Group != "g1" {
		t.Errorf("DevicesChangedSince after moving d1 back = %+v, %v; want d1 in g1 alone", got, err)
	}

	// Enrolling a revoked device again changes its name and group.
	again := nextMS(t)
	for _, id := range []string{"d3", "d4"} {
		if err := st.RevokeDevice(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := st.EnrolDevice(ctx, storage.Device{ID: "d3", Group: "g3"}, token("d3-again")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ReenrollDevice(ctx, storage.Device{ID: "d4", Group: "g4"}, token("d4-again")); err != nil {
		t.Fatal(err)
	}
	got, err = st.DevicesChangedSince(ctx, again)
	if ids := deviceIDs(got); err != nil || len(ids) != 2 || ids[0] != "d3" || ids[1] != "d4" || got[0].Group != "g3" || got[1].Group != "g4" {
		t.Errorf("DevicesChangedSince after enrolling again = %+v, %v; want d3 in g3, d4 in g4", got, err)
	}
}

// Setting, replacing and removing a password each move PasswordChangedAt
// on, in every lookup, even within one millisecond; a new user's is 0; the
// token, RevokedAt, and edits of role or groups leave it as it is.
func testPasswordChangedAt(t *testing.T, st storage.Store) {
	ctx := context.Background()
	created, err := st.AddUser(ctx, storage.User{Name: "op", Role: storage.RoleOperator, Groups: []string{"g1"}}, token("op"), []byte("hash-0"))
	if err != nil {
		t.Fatal(err)
	}
	if created.PasswordChangedAt != 0 {
		t.Errorf("AddUser with a password: PasswordChangedAt %d, want 0", created.PasswordChangedAt)
	}
	before := time.Now().UnixMilli()
	var last int64
	for _, pw := range [][]byte{[]byte("hash-1"), []byte("hash-2"), nil} {
		if err := st.SetUserPassword(ctx, "op", pw); err != nil {
			t.Fatalf("SetUserPassword(%q): %v", pw, err)
		}
		u, _, err := st.UserByName(ctx, "op")
		if err != nil || u.PasswordChangedAt <= last || u.PasswordChangedAt < before || u.RevokedAt != 0 {
			t.Fatalf("after SetUserPassword(%q): %+v, %v; want PasswordChangedAt after %d and %d, RevokedAt 0", pw, u, err, last, before)
		}
		last = u.PasswordChangedAt
	}
	if u, err := st.UserByTokenHash(ctx, token("op")); err != nil || u.PasswordChangedAt != last {
		t.Errorf("UserByTokenHash = %+v, %v; want PasswordChangedAt %d", u, err, last)
	}
	if us, err := st.Users(ctx); err != nil || len(us) != 1 || us[0].PasswordChangedAt != last {
		t.Errorf("Users = %+v, %v; want PasswordChangedAt %d", us, err, last)
	}
	if u, err := st.UpdateUser(ctx, "op", storage.UserChange{Groups: groupsp("g2")}); err != nil || u.PasswordChangedAt != last {
		t.Errorf("UpdateUser = %+v, %v; want PasswordChangedAt %d kept", u, err, last)
	}
	if u, err := st.RevokeUser(ctx, "op", token("op-new")); err != nil || u.PasswordChangedAt != last || u.RevokedAt == 0 {
		t.Errorf("RevokeUser = %+v, %v; want PasswordChangedAt %d kept", u, err, last)
	}
}

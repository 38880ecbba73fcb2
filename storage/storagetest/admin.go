package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// adminCases cover what an admin changes (storage.AccountAdmin).
var adminCases = []testCase{
	{"UpdateUser", testUpdateUser},
	{"SetUserPassword", testSetUserPassword},
	{"UpdateDevice", testUpdateDevice},
	{"EnrolDevice", testEnrolDevice},
	{"DeleteDevice", testDeleteDevice},
	{"DevicesChangedSince", testDevicesChangedSince}, // changes.go
	{"PasswordChangedAt", testPasswordChangedAt},
}

func strp(s string) *string { return &s }

func groupsp(gs ...string) *[]string {
	if gs == nil {
		gs = []string{}
	}
	return &gs
}

// Role and groups change together or alone, in every lookup; the token and
// RevokedAt stay; an operator is never left without a group.
func testUpdateUser(t *testing.T, st storage.Store) {
	ctx := context.Background()
	op, err := st.AddUser(ctx, storage.User{Name: "op", Role: storage.RoleOperator, Groups: []string{"g1"}, CreatedAt: t0}, token("op"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddUser(ctx, storage.User{Name: "other", Role: storage.RoleOperator, Groups: []string{"g9"}, CreatedAt: t0}, token("other"), nil); err != nil {
		t.Fatal(err)
	}
	u, err := st.UpdateUser(ctx, "op", storage.UserChange{Groups: groupsp("g3", "g2", "g3")})
	want := op
	want.Groups = []string{"g2", "g3"}
	if err != nil || !cmp.Equal(u, want) {
		t.Fatalf("UpdateUser(groups) = %+v, %v; want %+v", u, err, want)
	}
	if got, err := st.UserByTokenHash(ctx, token("op")); err != nil || !cmp.Equal(got, want) {
		t.Errorf("UserByTokenHash after the change = %+v, %v; want %+v", got, err, want)
	}
	// Role alone keeps the groups; an admin may lose them all.
	if u, err = st.UpdateUser(ctx, "op", storage.UserChange{Role: strp(storage.RoleAdmin)}); err != nil || u.Role != storage.RoleAdmin || !slices.Equal(u.Groups, want.Groups) {
		t.Fatalf("UpdateUser(role) = %+v, %v", u, err)
	}
	if u, err = st.UpdateUser(ctx, "op", storage.UserChange{Groups: groupsp()}); err != nil || len(u.Groups) != 0 || u.Groups == nil {
		t.Fatalf("UpdateUser(admin, no groups) = %+v, %v; want groups []", u, err)
	}
	for _, tc := range []struct {
		name string
		ch   storage.UserChange
		want error
	}{
		{"operator without groups", storage.UserChange{Role: strp(storage.RoleOperator)}, storage.ErrInvalid},
		{"operator with empty groups", storage.UserChange{Role: strp(storage.RoleOperator), Groups: groupsp()}, storage.ErrInvalid},
		{"unknown role", storage.UserChange{Role: strp("root")}, storage.ErrInvalid},
		{"bad group", storage.UserChange{Groups: groupsp("a b")}, storage.ErrInvalid},
	} {
		if _, err := st.UpdateUser(ctx, "op", tc.ch); !errors.Is(err, tc.want) {
			t.Errorf("UpdateUser(%s): err = %v, want %v", tc.name, err, tc.want)
		}
	}
	// A refused change changed nothing.
	if got, _, err := st.UserByName(ctx, "op"); err != nil || got.Role != storage.RoleAdmin || len(got.Groups) != 0 {
		t.Errorf("after refused changes: %+v, %v; want an admin without groups", got, err)
	}
	u, err = st.UpdateUser(ctx, "op", storage.UserChange{Role: strp(storage.RoleOperator), Groups: groupsp("g1")})
	if err != nil || u.Role != storage.RoleOperator || !slices.Equal(u.Groups, []string{"g1"}) {
		t.Fatalf("UpdateUser(back to operator of g1) = %+v, %v", u, err)
	}
	if _, err := st.UpdateUser(ctx, "nobody", storage.UserChange{Groups: groupsp("g1")}); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UpdateUser(unknown): err = %v, want ErrNotFound", err)
	}
	// The other user is untouched; Users shows the change.
	us, err := st.Users(ctx)
	if err != nil || len(us) != 2 || !slices.Equal(us[0].Groups, []string{"g1"}) || !slices.Equal(us[1].Groups, []string{"g9"}) {
		t.Errorf("Users = %+v, %v", us, err)
	}
	if us[0].RevokedAt != 0 || us[0].ID != op.ID || us[0].CreatedAt != op.CreatedAt {
		t.Errorf("UpdateUser changed the user's credentials: %+v, was %+v", us[0], op)
	}
}

// A password is set, replaced and removed; the token stays.
func testSetUserPassword(t *testing.T, st storage.Store) {
	ctx := context.Background()
	if _, err := st.AddUser(ctx, storage.User{Name: "op", Role: storage.RoleOperator, Groups: []string{"g1"}}, token("op"), nil); err != nil {
		t.Fatal(err)
	}
	for _, pw := range [][]byte{[]byte("hash-1"), []byte("hash-2"), nil} {
		if err := st.SetUserPassword(ctx, "op", pw); err != nil {
			t.Fatalf("SetUserPassword(%q): %v", pw, err)
		}
		if _, got, err := st.UserByName(ctx, "op"); err != nil || string(got) != string(pw) || (pw == nil) != (len(got) == 0) {
			t.Errorf("after SetUserPassword(%q): hash %q, %v", pw, got, err)
		}
	}
	if _, err := st.UserByTokenHash(ctx, token("op")); err != nil {
		t.Errorf("the token stopped working: %v", err)
	}
	if err := st.SetUserPassword(ctx, "nobody", []byte("x")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("SetUserPassword(unknown): err = %v, want ErrNotFound", err)
	}
}

// Name and group change together or alone, revoked or not.
func testUpdateDevice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	d := storage.Device{ID: "d1", Name: "Van", Group: "g1", CreatedAt: t0, CRS: "gcj02"}
	if err := st.AddDevice(ctx, d, token("d1")); err != nil {
		t.Fatal(err)
	}
	got, err := st.UpdateDevice(ctx, "d1", storage.DeviceChange{Name: strp("Van 2")})
	d.Name = "Van 2"
	if err != nil || got != d {
		t.Fatalf("UpdateDevice(name) = %+v, %v; want %+v", got, err, d)
	}
	got, err = st.UpdateDevice(ctx, "d1", storage.DeviceChange{Group: strp("g2")})
	d.Group = "g2"
	if err != nil || got != d {
		t.Fatalf("UpdateDevice(group) = %+v, %v; want %+v", got, err, d)
	}
	if devs, err := st.Devices(ctx, []string{"g2"}); err != nil || len(devs) != 1 || devs[0] != d {
		t.Errorf("Devices(g2) = %+v, %v; want the moved device", devs, err)
	}
	if devs, err := st.Devices(ctx, []string{"g1"}); err != nil || len(devs) != 0 {
		t.Errorf("Devices(g1) = %+v, %v; want none", devs, err)
	}
	if got, err := st.DeviceByTokenHash(ctx, token("d1")); err != nil || got != d {
		t.Errorf("DeviceByTokenHash = %+v, %v; want %+v (token kept)", got, err, d)
	}
	if err := st.RevokeDevice(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if got, err = st.UpdateDevice(ctx, "d1", storage.DeviceChange{Name: strp(""), Group: strp("")}); err != nil || got.Name != "" || got.Group != "" || got.RevokedAt == 0 {
		t.Errorf("UpdateDevice(revoked, both empty) = %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		id   string
		ch   storage.DeviceChange
		want error
	}{
		{"unknown", "nope", storage.DeviceChange{Name: strp("x")}, storage.ErrNotFound},
		{"bad group", "d1", storage.DeviceChange{Group: strp("a b")}, storage.ErrInvalid},
		{"long name", "d1", storage.DeviceChange{Name: strp(string(make([]byte, 257)))}, storage.ErrInvalid},
	} {
		if _, err := st.UpdateDevice(ctx, tc.id, tc.ch); !errors.Is(err, tc.want) {
			t.Errorf("UpdateDevice(%s): err = %v, want %v", tc.name, err, tc.want)
		}
	}
}

// EnrolDevice adds a new id, enrols a revoked one again (archive kept, old
// token refused), and refuses an active one.
func testEnrolDevice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	d := storage.Device{ID: "d1", Name: "Van", Group: "g1", CreatedAt: t0}
	got, again, err := st.EnrolDevice(ctx, d, token("t1"))
	if err != nil || again || got != d {
		t.Fatalf("EnrolDevice(new) = %+v, %v, %v; want %+v, false", got, again, err, d)
	}
	if _, _, err := st.EnrolDevice(ctx, storage.Device{ID: "d1", Group: "g2"}, token("t2")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("EnrolDevice(active id): err = %v, want ErrExists", err)
	}
	if _, _, err := st.EnrolDevice(ctx, storage.Device{ID: "d2"}, token("t1")); !errors.Is(err, storage.ErrExists) {
		t.Errorf("EnrolDevice(token hash taken): err = %v, want ErrExists", err)
	}
	if _, err := st.Device(ctx, "d2"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a refused EnrolDevice left device d2: err = %v", err)
	}
	if got, err := st.DeviceByTokenHash(ctx, token("t1")); err != nil || got != d {
		t.Errorf("a refused EnrolDevice changed d1: %+v, %v", got, err)
	}
	save(t, st, storage.Batch{Locations: []storage.Location{loc("d1", "l1", t0)}})
	if err := st.RevokeDevice(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	before := time.Now().UnixMilli()
	got, again, err = st.EnrolDevice(ctx, storage.Device{ID: "d1", Name: "Van B", Group: "g2", CRS: "bd09", CreatedAt: t0 + 5}, token("t3"))
	want := storage.Device{ID: "d1", Name: "Van B", Group: "g2", CRS: "bd09", CreatedAt: t0, TokenRotatedAt: got.TokenRotatedAt}
	if err != nil || !again || got != want || got.TokenRotatedAt < before {
		t.Fatalf("EnrolDevice(revoked) = %+v, %v, %v; want %+v, true, rotated now", got, again, err, want)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("t1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("old token after enrolling again: err = %v, want ErrNotFound", err)
	}
	if got, err := st.DeviceByTokenHash(ctx, token("t3")); err != nil || got != want {
		t.Errorf("new token = %+v, %v; want %+v", got, err, want)
	}
	if locs := allLocations(t, st, storage.LocationQuery{Device: "d1", Limit: 100}); len(locs) != 1 {
		t.Errorf("archive after enrolling again: %d locations, want 1 (kept)", len(locs))
	}
	for _, bad := range []storage.Device{{ID: ""}, {ID: "d3", CRS: "utm"}} {
		if _, _, err := st.EnrolDevice(ctx, bad, token("t-"+bad.ID)); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("EnrolDevice(%+v): err = %v, want ErrInvalid", bad, err)
		}
	}
	if _, _, err := st.EnrolDevice(ctx, storage.Device{ID: "d4"}, nil); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("EnrolDevice(empty hash): err = %v, want ErrInvalid", err)
	}
}

// DeleteDevice removes the device with its token, legacy key, shares and
// whole archive (in several chunks), leaves others alone, and reports the
// id as revoked until the id is registered again.
func testDeleteDevice(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, id := range []string{"d1", "d2"} {
		if err := st.AddDevice(ctx, storage.Device{ID: id, Group: "g", CreatedAt: t0}, token(id)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.SetLegacyKey(ctx, "d1", token("k1")); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	if _, err := st.CreateShare(ctx, storage.Share{ID: "s1", Device: "d1", CreatedBy: "a", CreatedAt: now, ExpiresAt: now + 60_000}, token("sec1")); err != nil {
		t.Fatal(err)
	}
	// More records than one chunk of either store (5000 locations, 500
	// logs), in batches.
	const nLocs, nLogs = 5200, 520
	for i := 0; i < nLocs; i += 1000 {
		var b storage.Batch
		for j := i; j < min(i+1000, nLocs); j++ {
			b.Locations = append(b.Locations, loc("d1", fmt.Sprintf("l%d", j), t0+int64(j)))
		}
		save(t, st, b)
	}
	var b storage.Batch
	for j := range nLogs {
		b.Logs = append(b.Logs, logEntry("d1", fmt.Sprintf("g%d", j), t0+int64(j), "info", "door open"))
	}
	b.Locations = []storage.Location{loc("d2", "keep", t0)}
	b.Logs = append(b.Logs, logEntry("d2", "keep", t0, "info", "door open"))
	save(t, st, b)

	before := time.Now().UnixMilli()
	res, err := st.DeleteDevice(ctx, "d1")
	if err != nil || res != (storage.DeletedDevice{Locations: nLocs, Logs: nLogs}) {
		t.Fatalf("DeleteDevice = %+v, %v; want %d locations, %d logs", res, err, nLocs, nLogs)
	}
	if _, err := st.Device(ctx, "d1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Device after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("d1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByTokenHash after delete: err = %v, want ErrNotFound", err)
	}
	if _, _, err := st.DeviceByLegacyKey(ctx, token("k1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByLegacyKey after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := st.ShareByTokenHash(ctx, token("sec1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ShareByTokenHash after delete: err = %v, want ErrNotFound", err)
	}
	if locs := allLocations(t, st, storage.LocationQuery{Device: "d1", Limit: 1000}); len(locs) != 0 {
		t.Errorf("%d locations of d1 left", len(locs))
	}
	if logs := allLogs(t, st, storage.LogQuery{Device: "d1", Limit: 1000}); len(logs) != 0 {
		t.Errorf("%d logs of d1 left", len(logs))
	}
	if logs := allLogs(t, st, storage.LogQuery{Text: "door", Limit: 1000}); len(logs) != 1 || logs[0].Device != "d2" {
		t.Errorf("search after delete = %+v; want d2's log alone", logs)
	}
	if locs := allLocations(t, st, storage.LocationQuery{Device: "d2", Limit: 1000}); len(locs) != 1 {
		t.Errorf("d2 has %d locations, want 1", len(locs))
	}
	if devs, err := st.Devices(ctx, nil); err != nil || len(devs) != 1 || devs[0].ID != "d2" {
		t.Errorf("Devices = %+v, %v; want d2 alone", devs, err)
	}
	// The gateways' revocation poll sees it.
	if ids, err := st.RevokedSince(ctx, before); err != nil || !slices.Equal(ids, []string{"d1"}) {
		t.Errorf("RevokedSince after delete = %v, %v; want [d1]", ids, err)
	}
	if _, err := st.DeleteDevice(ctx, "d1"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteDevice again: err = %v, want ErrNotFound", err)
	}
	// The id can be registered again, with nothing of the old one, and is
	// then no longer reported.
	got, again, err := st.EnrolDevice(ctx, storage.Device{ID: "d1", Group: "g"}, token("d1-new"))
	if err != nil || again || got.TokenRotatedAt != 0 {
		t.Fatalf("EnrolDevice after delete = %+v, %v, %v; want a new device", got, again, err)
	}
	if ids, err := st.RevokedSince(ctx, before); err != nil || len(ids) != 0 {
		t.Errorf("RevokedSince after enrolling the id again = %v, %v; want none", ids, err)
	}
	if _, err := st.DeleteDevice(ctx, "d1"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddDevice(ctx, storage.Device{ID: "d1", Group: "g"}, token("d1-3")); err != nil {
		t.Fatal(err)
	}
	if ids, err := st.RevokedSince(ctx, before); err != nil || len(ids) != 0 {
		t.Errorf("RevokedSince after adding the id again = %v, %v; want none", ids, err)
	}
	if _, err := st.DeleteDevice(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeleteDevice(unknown): err = %v, want ErrNotFound", err)
	}
}

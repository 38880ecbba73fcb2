package storagetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// shareCases cover the share links (POST /api/v1/devices/{id}/shares).
var shareCases = []testCase{
	{"Shares", testShares},
}

// A share is found by its secret's hash whatever its state, lists among its
// device's shares only while active, is revoked once (a second revoke keeps
// the first time), and can only be made for an active device.
func testShares(t *testing.T, st storage.Store) {
	ctx := context.Background()
	for _, id := range []string{"d1", "d2", "gone"} {
		if err := st.AddDevice(ctx, storage.Device{ID: id, Group: "g", CreatedAt: t0}, token(id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.RevokeDevice(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	s1 := storage.Share{ID: "s1", Device: "d1", CreatedBy: "alice", CreatedAt: now, ExpiresAt: now + 60_000}
	got, err := st.CreateShare(ctx, s1, token("sec1"))
	if err != nil || got != s1 {
		t.Fatalf("CreateShare(s1) = %+v, %v; want %+v", got, err, s1)
	}
	// CreatedAt defaults to now.
	s2, err := st.CreateShare(ctx, storage.Share{ID: "s2", Device: "d1", CreatedBy: "bob", ExpiresAt: now + 120_000}, token("sec2"))
	if err != nil || s2.CreatedAt < now || s2.ExpiresAt != now+120_000 {
		t.Fatalf("CreateShare(s2) = %+v, %v", s2, err)
	}
	old := storage.Share{ID: "old", Device: "d1", CreatedBy: "alice", CreatedAt: t0, ExpiresAt: t0 + 1000}
	if _, err := st.CreateShare(ctx, old, token("sec-old")); err != nil {
		t.Fatal(err)
	}
	s3 := storage.Share{ID: "s3", Device: "d2", CreatedBy: "alice", CreatedAt: now, ExpiresAt: now + 60_000}
	if _, err := st.CreateShare(ctx, s3, token("sec3")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name string
		sh   storage.Share
		hash []byte
		want error
	}{
		{"unknown device", storage.Share{ID: "x1", Device: "nope", ExpiresAt: now + 1000}, token("x1"), storage.ErrNotFound},
		{"revoked device", storage.Share{ID: "x2", Device: "gone", ExpiresAt: now + 1000}, token("x2"), storage.ErrRevoked},
		{"id taken", storage.Share{ID: "s1", Device: "d2", ExpiresAt: now + 1000}, token("x3"), storage.ErrExists},
		{"hash taken", storage.Share{ID: "x4", Device: "d2", ExpiresAt: now + 1000}, token("sec1"), storage.ErrExists},
		{"empty id", storage.Share{Device: "d2", ExpiresAt: now + 1000}, token("x5"), storage.ErrInvalid},
		{"empty hash", storage.Share{ID: "x6", Device: "d2", ExpiresAt: now + 1000}, nil, storage.ErrInvalid},
		{"expires before created", storage.Share{ID: "x7", Device: "d2", CreatedAt: now, ExpiresAt: now}, token("x7"), storage.ErrInvalid},
	} {
		if _, err := st.CreateShare(ctx, tc.sh, tc.hash); !errors.Is(err, tc.want) {
			t.Errorf("CreateShare(%s): err = %v, want %v", tc.name, err, tc.want)
		}
	}

	if got, err := st.ShareByTokenHash(ctx, token("sec1")); err != nil || got != s1 {
		t.Errorf("ShareByTokenHash(sec1) = %+v, %v; want %+v", got, err, s1)
	}
	if got, err := st.ShareByTokenHash(ctx, token("sec-old")); err != nil || got != old || got.ActiveAt(now) {
		t.Errorf("ShareByTokenHash(expired) = %+v, %v; want %+v, not active", got, err, old)
	}
	// A device token is not a share secret, nor the other way round.
	if _, err := st.ShareByTokenHash(ctx, token("d1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("ShareByTokenHash(a device token): err = %v, want ErrNotFound", err)
	}
	if _, err := st.DeviceByTokenHash(ctx, token("sec1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("DeviceByTokenHash(a share secret): err = %v, want ErrNotFound", err)
	}
	if _, err := st.UserByTokenHash(ctx, token("sec1")); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("UserByTokenHash(a share secret): err = %v, want ErrNotFound", err)
	}
	if got, err := st.Share(ctx, "s3"); err != nil || got != s3 {
		t.Errorf("Share(s3) = %+v, %v; want %+v", got, err, s3)
	}
	if _, err := st.Share(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Share(unknown): err = %v, want ErrNotFound", err)
	}

	list, err := st.SharesOf(ctx, "d1", now)
	if err != nil || len(list) != 2 || list[0] != s1 || list[1] != s2 {
		t.Errorf("SharesOf(d1) = %+v, %v; want s1, s2", list, err)
	}
	if list, err := st.SharesOf(ctx, "d1", now+60_000); err != nil || len(list) != 1 || list[0] != s2 {
		t.Errorf("SharesOf(d1) once s1 expired = %+v, %v; want s2", list, err)
	}
	if list, err := st.SharesOf(ctx, "nope", now); err != nil || list == nil || len(list) != 0 {
		t.Errorf("SharesOf(unknown) = %#v, %v; want an empty list", list, err)
	}

	before := time.Now().UnixMilli()
	r1, err := st.RevokeShare(ctx, "s1")
	if err != nil || r1.RevokedAt < before || r1.ID != "s1" || r1.Device != "d1" || r1.ActiveAt(now) {
		t.Fatalf("RevokeShare(s1) = %+v, %v; want revoked at or after %d", r1, err, before)
	}
	if got, err := st.ShareByTokenHash(ctx, token("sec1")); err != nil || got != r1 {
		t.Errorf("ShareByTokenHash(revoked) = %+v, %v; want %+v", got, err, r1)
	}
	time.Sleep(2 * time.Millisecond)
	if again, err := st.RevokeShare(ctx, "s1"); err != nil || again != r1 {
		t.Errorf("second RevokeShare(s1) = %+v, %v; want %+v (the first time kept)", again, err, r1)
	}
	if _, err := st.RevokeShare(ctx, "nope"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RevokeShare(unknown): err = %v, want ErrNotFound", err)
	}
	if list, err := st.SharesOf(ctx, "d1", now); err != nil || len(list) != 1 || list[0] != s2 {
		t.Errorf("SharesOf(d1) after revoking s1 = %+v, %v; want s2", list, err)
	}
}

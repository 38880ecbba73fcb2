package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage/sqlite"
)

// cliOn returns a runner of devtrack commands, in this process, on the
// SQLite store db: their output and error.
func cliOn(ctx context.Context, db string) func(args ...string) (string, error) {
	return func(args ...string) (string, error) {
		root := newRootCmd()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(&out)
		root.SetArgs(append(args, "--store", "sqlite://"+db))
		err := root.ExecuteContext(ctx)
		return out.String(), err
	}
}

// device add --crs and device set-crs store a device's default crs, in any
// case of its name; a crs that is none is a usage error that stores nothing.
func TestDeviceCRSCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "devtrack.db")
	run := cliOn(ctx, db)
	if out, err := run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	if out, err := run("device", "add", "phone-1", "--crs", "GCJ02"); err != nil {
		t.Fatalf("device add --crs: %v\n%s", err, out)
	}
	if out, err := run("device", "add", "box-1"); err != nil {
		t.Fatalf("device add: %v\n%s", err, out)
	}
	var usage usageError
	if _, err := run("device", "add", "phone-2", "--crs", "utm"); !errors.As(err, &usage) {
		t.Errorf("device add --crs utm: %v, want a usage error", err)
	}
	if out, err := run("device", "set-crs", "box-1", "bd09"); err != nil || !strings.Contains(out, "bd09") {
		t.Fatalf("set-crs: %v\n%s", err, out)
	}
	if _, err := run("device", "set-crs", "box-1", "mercator"); !errors.As(err, &usage) {
		t.Errorf("set-crs mercator: %v, want a usage error", err)
	}
	if _, err := run("device", "set-crs", "nobody", "gcj02"); err == nil || !strings.Contains(err.Error(), `no device "nobody"`) {
		t.Errorf("set-crs of an unknown device: %v", err)
	}

	st, err := sqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for id, want := range map[string]string{"phone-1": "gcj02", "box-1": "bd09"} {
		if d, err := st.Device(ctx, id); err != nil || d.CRS != want {
			t.Errorf("%s: crs %q (%v), want %q", id, d.CRS, err, want)
		}
	}
	if _, err := st.Device(ctx, "phone-2"); err == nil {
		t.Error("phone-2 stored despite its bad crs")
	}
}

// device add on a revoked id enrols it again with a new token; user add
// refuses an operator without groups, who would see nothing.
func TestDeviceAddAgainAndOperatorGroups(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "devtrack.db")
	run := cliOn(ctx, db)
	if out, err := run("migrate"); err != nil {
		t.Fatalf("migrate: %v\n%s", err, out)
	}
	out, err := run("device", "add", "van-1")
	if err != nil {
		t.Fatal(err)
	}
	first := lastLine(out)
	if _, err := run("device", "add", "van-1"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("device add of an active id: %v, want already exists", err)
	}
	if _, err := run("device", "revoke", "van-1"); err != nil {
		t.Fatal(err)
	}
	out, err = run("device", "add", "van-1", "--group", "north")
	if err != nil || !strings.Contains(out, "enrolled again") || lastLine(out) == first || !strings.HasPrefix(lastLine(out), "dtd_") {
		t.Fatalf("device add of a revoked id: %v\n%s", err, out)
	}
	var usage usageError
	if _, err := run("user", "add", "op", "--role", "operator"); !errors.As(err, &usage) || !strings.Contains(err.Error(), "--groups") {
		t.Errorf("operator without groups: %v, want a usage error naming --groups", err)
	}
	if _, err := run("user", "add", "op", "--role", "operator", "--groups", "north"); err != nil {
		t.Errorf("operator with a group: %v", err)
	}
}

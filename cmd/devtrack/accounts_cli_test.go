package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"golang.org/x/crypto/bcrypt"
)

// cliWithStdin is cliOn with stdin.
func cliWithStdin(ctx context.Context, db, stdin string, args ...string) (string, error) {
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(append(args, "--store", "sqlite://"+db))
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// user edit changes role and groups (an operator keeps one), user passwd
// sets and clears a password from stdin; device rename, move and delete
// change a device and remove it with its archive. Bad input is a usage
// error (exit 2) that changes nothing; an unknown name is a failure (1).
func TestAccountCommands(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "devtrack.db")
	run := cliOn(ctx, db)
	for _, args := range [][]string{
		{"user", "add", "ops", "--role", "operator", "--groups", "g1"},
		{"device", "add", "van-1", "--group", "g1", "--name", "Van"},
		{"device", "add", "van-2", "--group", "g1"},
	} {
		if out, err := run(args...); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	var usage usageError
	for _, tc := range []struct {
		args  []string
		usage bool
		want  string
	}{
		{[]string{"user", "edit", "ops"}, true, "give --role or --groups"},
		{[]string{"user", "edit", "ops", "--role", "root"}, true, "want admin or operator"},
		{[]string{"user", "edit", "ops", "--groups", ""}, true, "at least one group"},
		{[]string{"user", "edit", "ops", "--groups", "a b"}, true, `group "a b"`},
		{[]string{"user", "edit", "nobody", "--groups", "g1"}, false, `no user "nobody"`},
		{[]string{"device", "move", "van-1", "a b"}, true, `group "a b"`},
		{[]string{"device", "rename", "nope", "x"}, false, `no device "nope"`},
		{[]string{"device", "delete", "nope"}, false, `no device "nope"`},
	} {
		_, err := run(tc.args...)
		if err == nil || errors.As(err, &usage) != tc.usage || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v; want an error (usage: %v) saying %q", tc.args, err, tc.usage, tc.want)
		}
	}
	if out, err := run("user", "edit", "ops", "--groups", "g2,g1"); err != nil || !strings.Contains(out, `operator, groups "g1,g2"`) {
		t.Fatalf("user edit --groups: %v\n%s", err, out)
	}
	if out, err := run("user", "edit", "ops", "--role", "admin"); err != nil || !strings.Contains(out, `admin, groups "g1,g2"`) {
		t.Fatalf("user edit --role: %v\n%s", err, out)
	}
	if out, err := cliWithStdin(ctx, db, "stdin pw 1\n", "user", "add", "ops2", "--role", "admin", "--password-stdin"); err != nil {
		t.Fatalf("user add --password-stdin: %v\n%s", err, out)
	}
	if _, err := cliWithStdin(ctx, db, "x\n", "user", "add", "ops3", "--role", "admin", "--password-stdin"); !errors.As(err, &usage) {
		t.Errorf("user add --password-stdin with a short password: %v, want a usage error", err)
	}
	if out, err := cliWithStdin(ctx, db, "short\n", "user", "passwd", "ops"); !errors.As(err, &usage) {
		t.Errorf("passwd with a short password: %v\n%s; want a usage error", err, out)
	}
	if out, err := cliWithStdin(ctx, db, "courier pw 1\n", "user", "passwd", "ops"); err != nil || !strings.Contains(out, "password set") {
		t.Fatalf("user passwd: %v\n%s", err, out)
	}
	if _, err := cliWithStdin(ctx, db, "courier pw 1\n", "user", "passwd", "nobody"); err == nil || !strings.Contains(err.Error(), `no user "nobody"`) {
		t.Errorf("passwd of an unknown user: %v", err)
	}
	if out, err := run("device", "rename", "van-1", "Van One"); err != nil || !strings.Contains(out, `name "Van One"`) {
		t.Fatalf("device rename: %v\n%s", err, out)
	}
	if out, err := run("device", "move", "van-1", "g2"); err != nil || !strings.Contains(out, `group "g2"`) {
		t.Fatalf("device move: %v\n%s", err, out)
	}

	st, err := sqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, hash, err := st.UserByName(ctx, "ops")
	if err != nil || u.Role != storage.RoleAdmin || strings.Join(u.Groups, ",") != "g1,g2" ||
		bcrypt.CompareHashAndPassword(hash, []byte("courier pw 1")) != nil {
		t.Errorf("stored user %+v, %v; want an admin of g1,g2 with the password", u, err)
	}
	if _, hash, err := st.UserByName(ctx, "ops2"); err != nil || bcrypt.CompareHashAndPassword(hash, []byte("stdin pw 1")) != nil {
		t.Errorf("user added with --password-stdin: %v; the password does not match", err)
	}
	if _, _, err := st.UserByName(ctx, "ops3"); err == nil {
		t.Error("user add with a refused password stored the user")
	}
	if d, err := st.Device(ctx, "van-1"); err != nil || d.Name != "Van One" || d.Group != "g2" {
		t.Errorf("stored device %+v, %v", d, err)
	}
	if _, err := st.SaveBatch(ctx, storage.Batch{Locations: []storage.Location{
		{Device: "van-2", ID: "l1", TS: 1, ReceivedAt: 1, Lat: 1, Lng: 1},
		{Device: "van-2", ID: "l2", TS: 2, ReceivedAt: 2, Lat: 1, Lng: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	if out, err := cliWithStdin(ctx, db, "", "user", "passwd", "ops", "--clear"); err != nil || !strings.Contains(out, "password removed") {
		t.Fatalf("user passwd --clear: %v\n%s", err, out)
	}
	if out, err := run("device", "delete", "van-2"); err != nil || !strings.Contains(out, "device van-2 deleted with 2 locations and 0 logs") {
		t.Fatalf("device delete: %v\n%s", err, out)
	}
	if out, err := run("device", "list"); err != nil || strings.Contains(out, "van-2") || !strings.Contains(out, "van-1") {
		t.Fatalf("device list after delete: %v\n%s", err, out)
	}
	// The id comes back as a new device.
	if out, err := run("device", "add", "van-2"); err != nil || !strings.Contains(out, "device van-2 added") {
		t.Fatalf("device add of a deleted id: %v\n%s", err, out)
	}
	if _, err := run("device", "revoke", "van-2"); err != nil {
		t.Fatal(err)
	}
	if out, err := run("device", "add", "van-2"); err != nil || !strings.Contains(out, "device van-2 enrolled again") {
		t.Fatalf("device add of a revoked id: %v\n%s", err, out)
	}
	if _, err := run("device", "add", "van-2"); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("device add of an active id: %v", err)
	}

	st, err = sqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, hash, err := st.UserByName(ctx, "ops"); err != nil || len(hash) != 0 {
		t.Errorf("password after --clear: %q, %v; want none", hash, err)
	}
}

package main

import (
	"bytes"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the test edits goose's version table
)

// runDevtrack runs the built binary on the store dsn and returns its exit
// code, stdout and stderr.
func runDevtrack(t *testing.T, dsn string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	// An address nothing listens on: these commands must fail on the store
	// before they need Redis.
	cmd.Env = append(os.Environ(), "DEVTRACK_STORE="+dsn, "DEVTRACK_REDIS=127.0.0.1:1", "DEVTRACK_LOG_FORMAT=json")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("devtrack %v: %v", args, err)
	return 0, "", ""
}

// devtrack migrate prints the version before and after; a store newer than
// the binary is refused by migrate, gateway and worker with one line on
// stderr and exit 1, and is left as it was.
func TestMigrateCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "devtrack.db")
	dsn := "sqlite://" + path

	code, out, errOut := runDevtrack(t, dsn, "migrate")
	var latest int
	if _, err := fmt.Sscanf(out, "schema version 0 -> %d (latest %d)\n", &latest, &latest); code != 0 || err != nil || latest < 4 {
		t.Fatalf("first migrate: exit %d, stdout %q (%v), stderr %s; want 'schema version 0 -> N (latest N)'", code, out, err, errOut)
	}
	if code, out, _ := runDevtrack(t, dsn, "migrate"); code != 0 || out != fmt.Sprintf("schema version %d, up to date\n", latest) {
		t.Errorf("second migrate: exit %d, stdout %q", code, out)
	}

	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// One version back: the last step runs again and the command says so.
	if _, err := db.Exec(`DELETE FROM goose_db_version WHERE version_id = ?`, latest); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("schema version %d -> %d (latest %d)\n", latest-1, latest, latest)
	if code, out, errOut := runDevtrack(t, dsn, "migrate"); code != 0 || out != want {
		t.Errorf("migrate from %d: exit %d, stdout %q, stderr %s; want %q", latest-1, code, out, errOut, want)
	}

	// A version from the future.
	if _, err := db.Exec(`INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, latest+7); err != nil {
		t.Fatal(err)
	}
	msg := fmt.Sprintf("database schema version %d is newer than this binary knows (%d); run a newer devtrack", latest+7, latest)
	for _, args := range [][]string{{"migrate"}, {"worker"}, {"gateway", "--listen", "127.0.0.1:0"}} {
		code, out, errOut := runDevtrack(t, dsn, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != 1 || out != "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "devtrack: ") || !strings.HasSuffix(lines[0], msg) {
			t.Errorf("devtrack %v on a newer schema: exit %d, stdout %q, stderr:\n%s\nwant exit 1 and one line ending %q", args, code, out, errOut, msg)
		}
	}
	var n int
	if err := db.QueryRow(`SELECT max(version_id) FROM goose_db_version`).Scan(&n); err != nil || n != latest+7 {
		t.Errorf("version after the refusals: %d, %v", n, err)
	}
}

package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/archive"
	"github.com/devtrack/devtrack/internal/testutil/pgtest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
)

// archiveCmd is the command line of the built `devtrack args...`.
func archiveCmd(args ...string) *exec.Cmd { return exec.Command(binary, args...) }

// archiveEnv is a store for the archive commands and a directory.
type archiveEnv struct {
	t   *testing.T
	dir string
	dsn string
}

// newArchiveEnv uses a SQLite file.
func newArchiveEnv(t *testing.T) *archiveEnv {
	d := t.TempDir()
	return &archiveEnv{t: t, dir: d, dsn: "sqlite://" + filepath.Join(d, "devtrack.db")}
}

// newArchiveEnvOn uses the store named by dsn.
func newArchiveEnvOn(t *testing.T, dsn string) *archiveEnv {
	return &archiveEnv{t: t, dir: t.TempDir(), dsn: dsn}
}

func (e *archiveEnv) cmd(args ...string) *exec.Cmd {
	cmd := archiveCmd(args...)
	cmd.Env = append(append(os.Environ(), cmd.Env...), "DEVTRACK_STORE="+e.dsn, "DEVTRACK_LOG_FORMAT=json")
	return cmd
}

// run runs a command to its end and returns stdout, stderr and exit code.
func (e *archiveEnv) run(args ...string) (string, string, int) {
	e.t.Helper()
	cmd := e.cmd(args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		e.t.Fatal(err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

func (e *archiveEnv) ok(args ...string) string {
	e.t.Helper()
	out, errs, code := e.run(args...)
	if code != 0 {
		e.t.Fatalf("devtrack %v: exit %d\n%s", args, code, errs)
	}
	return out
}

func (e *archiveEnv) open() storage.Store {
	e.t.Helper()
	st, err := backend.Open(context.Background(), e.dsn, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	return st
}

var archiveBefore = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).UnixMilli()

// fillArchive stores, for each of devices devices, perDay locations and
// logs a day over days days before archiveBefore, and one of each after.
func (e *archiveEnv) fill(devices, days, perDay int) {
	e.t.Helper()
	ctx := context.Background()
	st := e.open()
	defer st.Close()
	for d := 0; d < devices; d++ {
		dev := fmt.Sprintf("dev-%03d", d)
		if d == 1 {
			dev = "Dev/1 ü" // a name that needs encoding
		}
		if err := st.AddDevice(ctx, storage.Device{ID: dev, CreatedAt: 1}, []byte(dev)); err != nil {
			e.t.Fatal(err)
		}
		var b storage.Batch
		step := int64(24*time.Hour/time.Millisecond) / int64(perDay)
		start := archiveBefore - int64(days)*int64(24*time.Hour/time.Millisecond)
		for i := 0; i <= days*perDay; i++ {
			ts := start + int64(i)*step + int64(d)
			b.Locations = append(b.Locations, storage.Location{Device: dev, ID: fmt.Sprintf("l%d", i), TS: ts, ReceivedAt: ts, Lat: 1, Lng: 2})
			b.Logs = append(b.Logs, storage.LogEntry{Device: dev, ID: fmt.Sprintf("g%d", i), TS: ts, ReceivedAt: ts, Level: "info",
				Message: fmt.Sprintf("door %d opened 開門", i), Fields: json.RawMessage(`{"i":1}`)})
			if b.Len() >= 5000 {
				if _, err := st.SaveBatch(ctx, b); err != nil {
					e.t.Fatal(err)
				}
				b = storage.Batch{}
			}
		}
		if _, err := st.SaveBatch(ctx, b); err != nil {
			e.t.Fatal(err)
		}
	}
}

// devices lists the ids of the registered devices.
func (e *archiveEnv) devices() []string {
	e.t.Helper()
	st := e.open()
	defer st.Close()
	devs, err := st.Devices(context.Background(), nil)
	if err != nil {
		e.t.Fatal(err)
	}
	var ids []string
	for _, d := range devs {
		ids = append(ids, d.ID)
	}
	return ids
}

// records lists every stored record of devs with ts < archiveBefore as
// "kind device id".
func (e *archiveEnv) records(devs []string) map[string]bool {
	e.t.Helper()
	ctx := context.Background()
	st := e.open()
	defer st.Close()
	got := map[string]bool{}
	for _, id := range devs {
		d := storage.Device{ID: id}
		q := storage.LocationQuery{Device: d.ID, ToMS: archiveBefore - 1, Limit: 1000}
		for {
			items, next, err := st.Locations(ctx, q)
			if err != nil {
				e.t.Fatal(err)
			}
			for _, it := range items {
				got["locations "+it.Device+" "+it.ID] = true
			}
			if next == "" {
				break
			}
			q.Cursor = next
		}
		lq := storage.LogQuery{Device: d.ID, ToMS: archiveBefore - 1, Limit: 1000}
		for {
			items, next, err := st.Logs(ctx, lq)
			if err != nil {
				e.t.Fatal(err)
			}
			for _, it := range items {
				got["logs "+it.Device+" "+it.ID] = true
			}
			if next == "" {
				break
			}
			lq.Cursor = next
		}
	}
	return got
}

// archived reads the manifest in dir and every file it lists, checking
// each against its entry, and returns the records as "kind device id",
// failing on any record found twice.
func archived(t *testing.T, dir string) (map[string]bool, archive.Manifest) {
	t.Helper()
	var m archive.Manifest
	b, err := os.ReadFile(filepath.Join(dir, archive.ManifestName))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]bool{}, m
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	got := map[string]bool{}
	for _, f := range m.Files {
		raw, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatalf("listed file: %v", err)
		}
		sum := sha256.Sum256(raw)
		if hex.EncodeToString(sum[:]) != f.SHA256 || int64(len(raw)) != f.Bytes {
			t.Fatalf("%s does not match its manifest entry", f.Path)
		}
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(zr)
		n := 0
		for sc.Scan() {
			var r struct{ Device, ID string }
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			key := string(f.Kind) + " " + r.Device + " " + r.ID
			if got[key] {
				t.Fatalf("%s written twice (again in %s)", key, f.Path)
			}
			got[key] = true
			n++
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		if n != f.Records {
			t.Fatalf("%s: %d records, manifest says %d", f.Path, n, f.Records)
		}
	}
	return got, m
}

var (
	exportLine = regexp.MustCompile(`^archive export: (\d+) files written, (\d+) skipped \(already verified\), (\d+) records, (\d+) deleted, in \S+ -> .+\n`)
	importLine = regexp.MustCompile(`^archive import: (\d+) files, (\d+) records, (\d+) new, (\d+) duplicates, in \S+\n`)
)

func match(t *testing.T, re *regexp.Regexp, out string) []string {
	t.Helper()
	m := re.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output %q does not match %s", out, re)
	}
	return m[1:]
}

// errorLines are the lines of stderr that are not JSON logs.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

func TestArchiveFlags(t *testing.T) {
	e := newArchiveEnv(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"archive", "export", "--to", e.dir}, "--before"},
		{[]string{"archive", "export", "--before", "2026-11-30"}, "--to"},
		{[]string{"archive", "export", "--before", "yesterday", "--to", e.dir}, `--before "yesterday"`},
		{[]string{"archive", "export", "--before", "2026-11-30", "--to", e.dir, "--nope"}, "--nope"},
		{[]string{"archive", "export", "--before", "2026-11-30", "--to", e.dir, "extra"}, "no arguments"},
		{[]string{"archive", "import"}, "archive directory"},
	} {
		_, stderr, code := e.run(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || len(errorLines(stderr)) != 1 {
			t.Errorf("devtrack %v: exit %d, stderr %q; want 2 and one line naming %s", tc.args, code, stderr, tc.want)
		}
	}
}

// Export, export again, import twice, import a damaged archive: through
// the command line, with its summary lines and exit codes.
func TestArchiveExportImportCLI(t *testing.T) {
	e := newArchiveEnv(t)
	e.fill(3, 4, 50)
	devs := e.devices()
	want := e.records(devs)
	dir := filepath.Join(e.dir, "archive")

	got := match(t, exportLine, e.ok("archive", "export", "--before", "2026-11-30", "--to", dir))
	if got[0] != "24" || got[1] != "0" || got[2] != fmt.Sprint(len(want)) || got[3] != "0" {
		t.Fatalf("export: %v, want 24 files and %d records", got, len(want))
	}
	files, _ := archived(t, dir)
	if len(files) != len(want) {
		t.Fatalf("%d records in the files, %d stored", len(files), len(want))
	}
	got = match(t, exportLine, e.ok("archive", "export", "--before", "2026-11-30T00:00:00Z", "--to", dir))
	if got[0] != "0" || got[1] != "24" || got[2] != "0" {
		t.Fatalf("second export: %v, want a no-op", got)
	}
	if _, stderr, code := e.run("archive", "export", "--before", "2026-11-29", "--to", dir); code != 1 || !strings.Contains(stderr, "2026-11-30T00:00:00Z") {
		t.Fatalf("export with another --before into the same directory: exit %d, %q", code, stderr)
	}

	other := newArchiveEnv(t)
	got = match(t, importLine, other.ok("archive", "import", dir))
	if got[0] != "24" || got[2] != fmt.Sprint(len(want)) || got[3] != "0" {
		t.Fatalf("import: %v", got)
	}
	got = match(t, importLine, other.ok("archive", "import", dir))
	if got[2] != "0" || got[3] != fmt.Sprint(len(want)) {
		t.Fatalf("second import: %v, want 0 new", got)
	}
	if diff := len(other.records(devs)); diff != len(want) {
		t.Fatalf("imported store holds %d records, want %d", diff, len(want))
	}

	_, m := archived(t, dir)
	victim := filepath.Join(dir, filepath.FromSlash(m.Files[5].Path))
	if err := os.WriteFile(victim, []byte("not gzip"), 0o640); err != nil {
		t.Fatal(err)
	}
	third := newArchiveEnv(t)
	_, stderr, code := third.run("archive", "import", dir)
	if code != 1 || !strings.Contains(stderr, m.Files[5].Path) || len(errorLines(stderr)) != 1 {
		t.Fatalf("import of a damaged archive: exit %d, stderr %q; want 1 and one line naming the file", code, stderr)
	}
	if n := len(third.records(devs)); n != 0 {
		t.Fatalf("%d records imported from a damaged archive", n)
	}
}

// listedFiles is how many files the manifest in dir lists now (the
// manifest is replaced atomically, so it can be read while export runs).
func listedFiles(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, archive.ManifestName))
	if err != nil {
		return 0
	}
	var m archive.Manifest
	if json.Unmarshal(b, &m) != nil {
		return 0
	}
	return len(m.Files)
}

// kill -9 of `devtrack archive export` at several points, each time
// rerun: after every kill each record is in the store or in a listed,
// sound file (with --delete), or still in the store (without); the final
// run leaves every record in exactly one file, a complete manifest and
// nothing else in the directory.
func TestArchiveKill9Resume(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		for _, del := range []bool{false, true} {
			t.Run(fmt.Sprintf("delete=%v", del), func(t *testing.T) { archiveKill9(t, newArchiveEnv(t), del) })
		}
	})
	t.Run("postgres", func(t *testing.T) {
		pg := pgtest.StartWith(t, pgtest.Options{Durable: true})
		for _, del := range []bool{false, true} {
			t.Run(fmt.Sprintf("delete=%v", del), func(t *testing.T) { archiveKill9(t, newArchiveEnvOn(t, pg.NewDB(t)), del) })
		}
	})
}

func archiveKill9(t *testing.T, e *archiveEnv, del bool) {
	e.fill(archiveKillDevices, 30, archiveKillPerDay)
	devs := e.devices()
	want := e.records(devs)
	dir := filepath.Join(e.dir, "archive")
	args := []string{"archive", "export", "--before", "2026-11-30", "--to", dir}
	if del {
		args = append(args, "--delete")
	}
	stale := map[string]bool{}
	points := []struct {
		name string
		wait func() bool
	}{
		{"at start", func() bool { return true }},
		{"before the first listing", sleepFor(150 * time.Millisecond)},
		{"while a file is half written", func() bool {
			// A temporary file of this run (the previous kill left its own).
			tmps, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp"))
			for _, tmp := range tmps {
				if !stale[tmp] {
					return listedFiles(dir) == 0
				}
			}
			return false
		}},
		{"after a few files", func() bool { return listedFiles(dir) >= 1 }},
		{"midway", func() bool { return listedFiles(dir) >= archiveKillDevices*30 }},
		{"later", func() bool { return listedFiles(dir) >= archiveKillDevices*45 }},
	}
	for _, p := range points {
		clear(stale)
		tmps, _ := filepath.Glob(filepath.Join(dir, "*", ".*.tmp"))
		for _, tmp := range tmps {
			stale[tmp] = true
		}
		cmd := e.cmd(args...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		finished := false
	wait:
		for !p.wait() {
			select {
			case <-done:
				finished = true
				break wait
			case <-time.After(5 * time.Millisecond):
			}
		}
		if !finished {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
		}
		files, _ := archived(t, dir)
		stored := e.records(devs)
		for k := range want {
			if !stored[k] && !files[k] {
				t.Fatalf("kill %s: %s deleted from the store but in no listed file", p.name, k)
			}
			if !del && !stored[k] {
				t.Fatalf("kill %s: %s deleted without --delete", p.name, k)
			}
		}
		for k := range files {
			if !want[k] {
				t.Fatalf("kill %s: %s in a file but never stored", p.name, k)
			}
		}
		t.Logf("kill %s: %d files listed, %d of %d records stored (finished first: %v)", p.name, listedFiles(dir), len(stored), len(want), finished)
	}

	start := time.Now()
	out := e.ok(args...)
	t.Logf("final run %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(out))
	files, m := archived(t, dir)
	if len(files) != len(want) || !m.Complete {
		t.Fatalf("after the final run: %d records in files, want %d; complete %v", len(files), len(want), m.Complete)
	}
	stored := e.records(devs)
	if del && len(stored) != 0 || !del && len(stored) != len(want) {
		t.Fatalf("after the final run: %d records older than --before stored (delete %v)", len(stored), del)
	}
	if m.Delete != del {
		t.Fatalf("manifest delete %v, want %v", m.Delete, del)
	}
	for _, f := range m.Files {
		if f.Deleted != del {
			t.Fatalf("%s: deleted %v, want %v", f.Path, f.Deleted, del)
		}
	}
	onDisk, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	hidden, _ := filepath.Glob(filepath.Join(dir, "*", ".*"))
	if len(onDisk) != len(m.Files) || len(hidden) != 0 {
		t.Fatalf("%d files and %d temporary files on disk, the manifest lists %d", len(onDisk), len(hidden), len(m.Files))
	}
}

// The size of the kill -9 store: devices x 30 days x perDay locations and
// as many logs, so that a run takes a second or more (24,000 records in
// 240 files); a race build, ten times slower, gets a quarter of it.
var archiveKillDevices, archiveKillPerDay = func() (int, int) {
	if raceBuild() {
		return 2, 50
	}
	return 4, 100
}()

// raceBuild reports whether this test binary was built with -race.
func raceBuild() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" && s.Value == "true" {
			return true
		}
	}
	return false
}

func sleepFor(d time.Duration) func() bool {
	var until time.Time
	return func() bool {
		if until.IsZero() {
			until = time.Now().Add(d)
		}
		return time.Now().After(until)
	}
}

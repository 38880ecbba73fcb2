package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

const perDevice = 200

// exportEnv is where most export tests start, once per store: a source
// store filled with perDevice records per device and kind, and an empty
// archive directory.
type exportEnv struct {
	t    *testing.T
	open func(t testing.TB) storage.Store // a new, empty store of the same kind
	src  storage.Store
	dir  string
	old  int // records of src before the bound, as filled
}

// eachFilledStore runs fn as a subtest per store with a new exportEnv;
// withDelete skips the stores that cannot delete yet (needDelete).
func eachFilledStore(t *testing.T, withDelete bool, fn func(t *testing.T, e *exportEnv)) {
	eachStore(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		src := open(t)
		if withDelete {
			needDelete(t, src)
		}
		fill(t, src, perDevice)
		fn(t, &exportEnv{t: t, open: open, src: src, dir: t.TempDir(), old: count(t, src, 0, before-1)})
	})
}

// export exports src with cfg, into e.dir and up to the tests' bound
// unless cfg says otherwise.
func (e *exportEnv) export(cfg ExportConfig) ExportResult {
	e.t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = e.dir
	}
	if cfg.BeforeMS == 0 {
		cfg.BeforeMS = before
	}
	return mustExport(e.t, e.src, cfg)
}

// oldLeft is how many records before the bound src holds now.
func (e *exportEnv) oldLeft() int {
	e.t.Helper()
	return count(e.t, e.src, 0, before-1)
}

// Export then import into an empty store: the same answers for the
// exported range, nothing at or after the bound; the manifest adds up.
func TestExportImportSameAnswers(t *testing.T) {
	eachFilledStore(t, false, func(t *testing.T, e *exportEnv) {
		src, dir, want := e.src, e.dir, e.old
		after := count(t, src, before, 0)
		res := e.export(ExportConfig{PageSize: 37})
		if res.Records != int64(want) || res.Written == 0 || res.Skipped != 0 || res.Deleted != 0 {
			t.Fatalf("export: %+v, want %d records in new files", res, want)
		}
		m := mustManifest(t, dir)
		sum := 0
		for _, f := range m.Files {
			sum += f.Records
			if f.MaxTS >= before || dayOf(f.MinTS) != f.Day || dayOf(f.MaxTS) != f.Day {
				t.Errorf("%s: ts %d..%d outside its day or the range", f.Path, f.MinTS, f.MaxTS)
			}
		}
		if sum != want || !m.Complete || m.BeforeMS != before || m.Before != "2026-11-30T00:00:00Z" || len(m.Devices) != len(testDevices) {
			t.Fatalf("manifest: %d records, complete %v, before %q, %d devices", sum, m.Complete, m.Before, len(m.Devices))
		}
		// 4 devices x 2 kinds x 4 days (3.5 days back, the last one partial).
		if len(m.Files) != 32 {
			t.Errorf("%d files, want 32:\n%s", len(m.Files), strings.Join(fileSet(m), "\n"))
		}
		for _, f := range m.Files {
			if strings.Contains(f.Path, "truck") && !strings.Contains(f.Path, "truck%2F7%20%C3%BC.") {
				t.Errorf("%s: device name not encoded", f.Path)
			}
		}

		dst := e.open(t)
		ir := mustImport(t, dst, dir)
		if ir.Inserted != int64(want) || ir.Duplicates != 0 || ir.Files != len(m.Files) || len(ir.Unregistered) != len(testDevices) {
			t.Fatalf("import: %+v, want %d new in %d files, %d devices unregistered", ir, want, len(m.Files), len(testDevices))
		}
		if diff := cmp.Diff(answers(t, src, 0, before-1), answers(t, dst, 0, before-1), rawJSON); diff != "" {
			t.Fatalf("answers differ after export + import (-source +imported):\n%s", diff)
		}
		if n := count(t, dst, before, 0); n != 0 {
			t.Fatalf("%d records at or after --before were exported", n)
		}
		if n := count(t, src, before, 0); n != after {
			t.Fatalf("source lost records at or after --before: %d left", n)
		}
	})
}

// A second export into the same directory writes nothing and changes no file.
func TestExportSecondRunIsNoop(t *testing.T) {
	eachFilledStore(t, false, func(t *testing.T, e *exportEnv) {
		first := e.export(ExportConfig{})
		m1 := mustManifest(t, e.dir)
		second := e.export(ExportConfig{})
		if second.Written != 0 || second.Records != 0 || second.Skipped != first.Written {
			t.Fatalf("second export: %+v, want 0 written and %d skipped", second, first.Written)
		}
		if diff := cmp.Diff(fileSet(m1), fileSet(mustManifest(t, e.dir))); diff != "" {
			t.Fatalf("second export changed the files:\n%s", diff)
		}
	})
}

// A rerun after a crash (temporary files left, a file renamed but not
// listed, the manifest behind) ends with the very files of an
// uninterrupted run: each record once.
func TestExportResumesAfterCrash(t *testing.T) {
	eachFilledStore(t, false, func(t *testing.T, e *exportEnv) {
		clean := t.TempDir()
		e.export(ExportConfig{Dir: clean})
		want := fileSet(mustManifest(t, clean))

		dir := e.dir
		e.export(ExportConfig{})
		m := mustManifest(t, dir)
		// The crash: the manifest lists only the first third, one later file
		// is half written, a temporary file lies around, the manifest is
		// marked incomplete.
		dropped := m.Files[len(m.Files)/3:]
		m.Files = m.Files[:len(m.Files)/3]
		m.Complete = false
		if err := m.write(dir); err != nil {
			t.Fatal(err)
		}
		half := filepath.Join(dir, filepath.FromSlash(dropped[0].Path))
		b, _ := os.ReadFile(half)
		if err := os.WriteFile(half, b[:len(b)/2], 0o640); err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(dir, dropped[1].Day, ".x.logs.jsonl.gz.123.tmp")
		if err := os.WriteFile(tmp, []byte("partial"), 0o640); err != nil {
			t.Fatal(err)
		}

		res := e.export(ExportConfig{})
		if res.Skipped != len(m.Files) || res.Written != len(dropped) {
			t.Fatalf("rerun: %+v, want %d skipped and %d written", res, len(m.Files), len(dropped))
		}
		if diff := cmp.Diff(want, fileSet(mustManifest(t, dir))); diff != "" {
			t.Fatalf("resumed export differs from an uninterrupted one:\n%s", diff)
		}
		if _, err := os.Stat(tmp); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temporary file left: %v", err)
		}
		assertEachRecordOnce(t, dir, e.old)
	})
}

// assertEachRecordOnce reads every listed file: each (kind, device, id)
// appears once, and there are want records in all.
func assertEachRecordOnce(t *testing.T, dir string, want int) {
	t.Helper()
	m := mustManifest(t, dir)
	seen := map[string]string{}
	for _, f := range m.Files {
		if err := readFile(dir, f, func(_ []byte, h recordHead) error {
			key := string(f.Kind) + " " + h.Device + " " + h.ID
			if other, dup := seen[key]; dup {
				t.Errorf("%s in %s and %s", key, other, f.Path)
			}
			seen[key] = f.Path
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != want {
		t.Fatalf("%d records in the files, want %d", len(seen), want)
	}
	entries, _ := filepath.Glob(filepath.Join(dir, "*", "*"))
	if len(entries) != len(m.Files) {
		t.Fatalf("%d files on disk, the manifest lists %d", len(entries), len(m.Files))
	}
}

// A listed file that was damaged (and whose records are still in the
// store) is written again; one whose records were deleted is an error.
func TestExportRewritesDamagedFile(t *testing.T) {
	eachFilledStore(t, false, func(t *testing.T, e *exportEnv) {
		e.export(ExportConfig{})
		want := fileSet(mustManifest(t, e.dir))
		f := mustManifest(t, e.dir).Files[3]
		if err := os.WriteFile(filepath.Join(e.dir, filepath.FromSlash(f.Path)), []byte("junk"), 0o640); err != nil {
			t.Fatal(err)
		}
		res := e.export(ExportConfig{})
		if res.Rewritten != 1 || res.Written != 1 {
			t.Fatalf("rerun: %+v, want the damaged file written again", res)
		}
		if diff := cmp.Diff(want, fileSet(mustManifest(t, e.dir))); diff != "" {
			t.Fatal(diff)
		}
	})
}

func TestExportRefusesOtherBoundAndSecondWriter(t *testing.T) {
	st := openSQLite(t)
	fill(t, st, 20)
	dir := t.TempDir()
	mustExport(t, st, ExportConfig{Dir: dir, BeforeMS: before})
	_, err := Export(context.Background(), st, ExportConfig{Dir: dir, BeforeMS: before - day}, nil)
	if !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "2026-11-30T00:00:00Z") {
		t.Fatalf("export with another --before: %v, want ErrMismatch naming the first bound", err)
	}
	unlock, err := lockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	if _, err := Export(context.Background(), st, ExportConfig{Dir: dir, BeforeMS: before}, nil); !errors.Is(err, ErrBusy) {
		t.Fatalf("export while another holds the directory: %v, want ErrBusy", err)
	}
}

// --delete removes exactly the exported records; records at or after the
// bound stay; the manifest says so; importing the archive back restores
// the answers.
func TestExportDelete(t *testing.T) {
	eachFilledStore(t, true, func(t *testing.T, e *exportEnv) {
		src, n := e.src, e.old
		wantOld := answers(t, src, 0, before-1)
		wantNew := answers(t, src, before, 0)
		res := e.export(ExportConfig{Delete: true, PageSize: 101})
		if res.Records != int64(n) || res.Deleted != int64(n) {
			t.Fatalf("export --delete: %+v, want %d records written and deleted", res, n)
		}
		if left := e.oldLeft(); left != 0 {
			t.Fatalf("%d exported records still in the store", left)
		}
		if diff := cmp.Diff(wantNew, answers(t, src, before, 0), rawJSON); diff != "" {
			t.Fatalf("records at or after --before changed:\n%s", diff)
		}
		for _, f := range mustManifest(t, e.dir).Files {
			if !f.Deleted || f.DeletedRecords != int64(f.Records) || f.DeletedAt == "" {
				t.Errorf("%s: deleted %v (%d of %d)", f.Path, f.Deleted, f.DeletedRecords, f.Records)
			}
		}
		again := e.export(ExportConfig{Delete: true})
		if again.Written != 0 || again.Deleted != 0 {
			t.Fatalf("second export --delete: %+v, want a no-op", again)
		}
		ir := mustImport(t, src, e.dir)
		if ir.Inserted != int64(n) {
			t.Fatalf("import back: %+v, want %d new", ir, n)
		}
		if diff := cmp.Diff(wantOld, answers(t, src, 0, before-1), rawJSON); diff != "" {
			t.Fatalf("answers after export --delete + import:\n%s", diff)
		}
	})
}

// A run without --delete, then one with it: the second deletes what the
// first verified (the crash between verify and delete), and nothing else.
func TestExportDeleteLater(t *testing.T) {
	eachFilledStore(t, true, func(t *testing.T, e *exportEnv) {
		n := e.old
		first := e.export(ExportConfig{})
		if first.Undeleted != first.Written || e.oldLeft() != n {
			t.Fatalf("export without --delete: %+v", first)
		}
		res := e.export(ExportConfig{Delete: true})
		if res.Written != 0 || res.Deleted != int64(n) || res.Undeleted != 0 {
			t.Fatalf("export --delete after: %+v, want %d deleted, nothing written", res, n)
		}
		if left := e.oldLeft(); left != 0 {
			t.Fatalf("%d records left", left)
		}
	})
}

// lateStore adds, while the export runs, records with an old ts: one into
// a day the export has passed already, one into the day it is writing.
// They may or may not be in the files; --delete must delete them only if
// they are.
type lateStore struct {
	storage.Store
	once  sync.Once
	pages int
}

func (s *lateStore) Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error) {
	items, next, err := s.Store.Locations(ctx, q)
	if q.Device == "d1" {
		s.pages++
		if s.pages == 3 {
			s.once.Do(func() {
				_, _ = s.Store.SaveBatch(ctx, storage.Batch{Locations: []storage.Location{
					{Device: "d1", ID: "late-passed", TS: before - 2, Lat: 1, Lng: 2},
					{Device: "d1", ID: "late-current", TS: items[len(items)-1].TS - 1, Lat: 1, Lng: 2},
					{Device: "d1", ID: "late-behind", TS: items[0].TS + 1, Lat: 1, Lng: 2},
				}})
			})
		}
	}
	return items, next, err
}

func TestExportDeleteOnlyWhatWasWritten(t *testing.T) {
	eachFilledStore(t, true, func(t *testing.T, e *exportEnv) {
		src, dir, n := e.src, e.dir, e.old
		res := mustExport(t, &lateStore{Store: src}, ExportConfig{Dir: dir, BeforeMS: before, Delete: true, PageSize: 10})
		inFiles := map[string]bool{}
		for _, f := range mustManifest(t, dir).Files {
			_ = readFile(dir, f, func(_ []byte, h recordHead) error { inFiles[string(f.Kind)+" "+h.Device+" "+h.ID] = true; return nil })
		}
		left := e.oldLeft()
		if len(inFiles)+left != n+3 || res.Deleted != int64(len(inFiles)) {
			t.Fatalf("%d records in files, %d left, %d deleted; want files + left = %d", len(inFiles), left, res.Deleted, n+3)
		}
		for _, id := range []string{"late-passed", "late-current", "late-behind"} {
			items, _, _ := src.Locations(context.Background(), storage.LocationQuery{Device: "d1", Limit: 1000, ToMS: before - 1})
			stored := slices.ContainsFunc(items, func(l storage.Location) bool { return l.ID == id })
			if stored == inFiles["locations d1 "+id] {
				t.Errorf("%s: in a file %v, still stored %v: want exactly one", id, inFiles["locations d1 "+id], stored)
			}
		}
	})
}

// failingDelete fails DeleteRecords after some calls: the rerun deletes
// the rest, and in the end every record is deleted once, none twice.
type failingDelete struct {
	storage.Store
	calls, failAt int
}

func (s *failingDelete) DeleteRecords(ctx context.Context, kind storage.Kind, device string, ids []string) (int64, error) {
	s.calls++
	if s.calls == s.failAt {
		return 0, errors.New("injected failure")
	}
	return s.Store.DeleteRecords(ctx, kind, device, ids)
}

func TestExportDeleteFailureThenRerun(t *testing.T) {
	eachFilledStore(t, true, func(t *testing.T, e *exportEnv) {
		n := e.old
		first, err := Export(context.Background(), &failingDelete{Store: e.src, failAt: 5}, ExportConfig{Dir: e.dir, BeforeMS: before, Delete: true}, nil)
		if err == nil || !strings.Contains(err.Error(), "injected failure") {
			t.Fatalf("export with a failing delete: %v", err)
		}
		second := e.export(ExportConfig{Delete: true})
		if first.Deleted+second.Deleted != int64(n) || e.oldLeft() != 0 {
			t.Fatalf("deleted %d + %d, want %d in all", first.Deleted, second.Deleted, n)
		}
		assertEachRecordOnce(t, e.dir, n)
	})
}

package archive

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/devtrack/devtrack/storage"
)

// Importing twice stores nothing new and answers the same.
func TestImportTwice(t *testing.T) {
	eachStore(t, func(t *testing.T, open func(t testing.TB) storage.Store) {
		src := open(t)
		fill(t, src, perDevice)
		dir := t.TempDir()
		mustExport(t, src, ExportConfig{Dir: dir, BeforeMS: before})
		dst := open(t)
		first := mustImport(t, dst, dir)
		want := answers(t, dst, 0, 0)
		second := mustImport(t, dst, dir)
		if second.Inserted != 0 || second.Duplicates != first.Inserted || second.Records != first.Records {
			t.Fatalf("second import: %+v, want 0 new and %d duplicates", second, first.Inserted)
		}
		if diff := cmp.Diff(want, answers(t, dst, 0, 0), rawJSON); diff != "" {
			t.Fatalf("second import changed answers:\n%s", diff)
		}
	})
}

// A damaged file is refused by name and nothing at all is imported.
func TestImportRefusesDamagedFile(t *testing.T) {
	st := openSQLite(t)
	fill(t, st, 60)
	dir := t.TempDir()
	mustExport(t, st, ExportConfig{Dir: dir, BeforeMS: before})
	m := mustManifest(t, dir)
	victim := m.Files[len(m.Files)-1]
	path := filepath.Join(dir, filepath.FromSlash(victim.Path))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(path, b, 0o640); err != nil {
		t.Fatal(err)
	}
	dst := openSQLite(t)
	_, err = Import(context.Background(), dst, dir, nil)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), victim.Path) {
		t.Fatalf("import of a damaged archive: %v, want ErrCorrupt naming %s", err, victim.Path)
	}
	if n := count(t, dst, 0, 0); n != 0 {
		t.Fatalf("%d records imported from a damaged archive", n)
	}

	// A manifest that names a path outside the layout is refused too.
	m.Files[0].Path = "../../etc/passwd"
	if err := m.write(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := Import(context.Background(), dst, dir, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("import of a manifest naming ../../etc/passwd: %v", err)
	}
	if _, err := Import(context.Background(), dst, t.TempDir(), nil); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("import of an empty directory: %v", err)
	}
}

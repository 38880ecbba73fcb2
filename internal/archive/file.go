package archive

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// fileWriter writes one data file: JSON lines through gzip into a
// temporary file, hashing the compressed bytes (the manifest's SHA-256)
// and the JSONL (checked again when the file is read back).
type fileWriter struct {
	dir   string // the archive directory
	entry FileEntry
	tmp   *os.File
	bw    *bufio.Writer
	gz    *gzip.Writer
	enc   *json.Encoder
	// fileHash sees the bytes written to disk, lineHash the JSONL.
	fileHash, lineHash hash.Hash
	size               *countWriter
	// seen keeps a record that a page boundary might hand over twice from
	// being written twice.
	seen map[string]struct{}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// newFileWriter opens the temporary file of (kind, device, day).
func newFileWriter(dir string, kind storage.Kind, device, day string) (*fileWriter, error) {
	rel := relPath(kind, device, day)
	dayDir := filepath.Join(dir, day)
	if err := mkdirSynced(dir, dayDir); err != nil {
		return nil, fmt.Errorf("create %s: %w", dayDir, err)
	}
	tmp, err := os.CreateTemp(dayDir, "."+filepath.Base(rel)+".*"+tmpSuffix)
	if err != nil {
		return nil, fmt.Errorf("create file for %s: %w", rel, err)
	}
	w := &fileWriter{
		dir:      dir,
		entry:    FileEntry{Path: rel, Kind: kind, Device: device, Day: day},
		tmp:      tmp,
		fileHash: sha256.New(),
		lineHash: sha256.New(),
		size:     &countWriter{},
		seen:     map[string]struct{}{},
	}
	w.bw = bufio.NewWriterSize(io.MultiWriter(tmp, w.fileHash, w.size), 256<<10)
	// gzip without a name or time in its header: the same records make the
	// same bytes, so a rerun reproduces a file exactly.
	w.gz, _ = gzip.NewWriterLevel(w.bw, gzip.BestSpeed)
	w.enc = json.NewEncoder(io.MultiWriter(w.gz, w.lineHash))
	w.enc.SetEscapeHTML(false)
	return w, nil
}

// add writes one record, once per id.
func (w *fileWriter) add(id string, ts int64, rec any) error {
	if _, dup := w.seen[id]; dup {
		return nil
	}
	w.seen[id] = struct{}{}
	if err := w.enc.Encode(rec); err != nil {
		return fmt.Errorf("write %s: record %q: %w", w.entry.Path, id, err)
	}
	if w.entry.Records == 0 || ts < w.entry.MinTS {
		w.entry.MinTS = ts
	}
	if w.entry.Records == 0 || ts > w.entry.MaxTS {
		w.entry.MaxTS = ts
	}
	w.entry.Records++
	return nil
}

// finish fsyncs the file, renames it to its final name and reads it back;
// only then is its entry returned. The rename is durable once the day
// directory is fsynced, which the exporter does, once for all the files of
// a manifest flush, before the manifest lists them.
func (w *fileWriter) finish(now time.Time) (FileEntry, error) {
	e := &w.entry
	fail := func(what string, err error) (FileEntry, error) {
		w.abort()
		return FileEntry{}, fmt.Errorf("%s %s: %w", what, e.Path, err)
	}
	if err := w.gz.Close(); err != nil {
		return fail("compress", err)
	}
	if err := w.bw.Flush(); err != nil {
		return fail("write", err)
	}
	if err := w.tmp.Sync(); err != nil {
		return fail("fsync", err)
	}
	if err := w.tmp.Close(); err != nil {
		return fail("close", err)
	}
	final := filepath.Join(w.dir, filepath.FromSlash(e.Path))
	if err := os.Rename(w.tmp.Name(), final); err != nil {
		return fail("rename", err)
	}
	e.Bytes = w.size.n
	e.SHA256 = hex.EncodeToString(w.fileHash.Sum(nil))
	if err := verifyFile(w.dir, *e, w.lineHash.Sum(nil)); err != nil {
		return FileEntry{}, err
	}
	e.VerifiedAt = now.UTC().Format(time.RFC3339)
	return *e, nil
}

// abort removes the temporary file.
func (w *fileWriter) abort() {
	w.tmp.Close()
	os.Remove(w.tmp.Name())
}

// verifyFile reads a data file back and checks it against its entry: size
// and SHA-256 of the bytes, number of lines, and, when lineSum is given,
// the SHA-256 of the JSONL that was written. Errors wrap ErrCorrupt when
// the file differs.
func verifyFile(dir string, e FileEntry, lineSum []byte) error {
	path := filepath.Join(dir, filepath.FromSlash(e.Path))
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("verify %s: %w", e.Path, err)
	}
	defer f.Close()
	fh := sha256.New()
	size := &countWriter{}
	gz, err := gzip.NewReader(io.TeeReader(f, io.MultiWriter(fh, size)))
	if err != nil {
		return fmt.Errorf("verify %s: %w: %v", e.Path, ErrCorrupt, err)
	}
	lh := sha256.New()
	lines := &lineCounter{}
	if _, err := io.Copy(io.MultiWriter(lh, lines), gz); err != nil {
		return fmt.Errorf("verify %s: %w: %v", e.Path, ErrCorrupt, err)
	}
	// Whatever follows the gzip stream is part of the file's hash too.
	if _, err := io.Copy(io.Discard, f); err != nil {
		return fmt.Errorf("verify %s: %w", e.Path, err)
	}
	got := hex.EncodeToString(fh.Sum(nil))
	switch {
	case got != e.SHA256:
		return fmt.Errorf("verify %s: %w: SHA-256 %s, manifest says %s", e.Path, ErrCorrupt, got, e.SHA256)
	case size.n != e.Bytes:
		return fmt.Errorf("verify %s: %w: %d bytes, manifest says %d", e.Path, ErrCorrupt, size.n, e.Bytes)
	case lines.n != e.Records:
		return fmt.Errorf("verify %s: %w: %d records, manifest says %d", e.Path, ErrCorrupt, lines.n, e.Records)
	case lineSum != nil && !bytes.Equal(lh.Sum(nil), lineSum):
		return fmt.Errorf("verify %s: %w: content differs from what was written", e.Path, ErrCorrupt)
	}
	return nil
}

type lineCounter struct{ n int }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// checkFileHash checks only a file's size and SHA-256, the cheap test that
// a rerun and an import make before trusting a listed file.
func checkFileHash(dir string, e FileEntry) error {
	path := filepath.Join(dir, filepath.FromSlash(e.Path))
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: %w: missing", e.Path, ErrCorrupt)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Errorf("%s: %w", e.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 || n != e.Bytes {
		return fmt.Errorf("%s: %w: SHA-256 %s (%d bytes), manifest says %s (%d bytes)", e.Path, ErrCorrupt, got, n, e.SHA256, e.Bytes)
	}
	return nil
}

package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// ExportConfig says what to export and where.
type ExportConfig struct {
	// Dir is the archive directory, created if missing.
	Dir string
	// BeforeMS is the exclusive bound, Unix ms: records with ts < BeforeMS
	// are exported. A rerun into the same Dir must give the same bound.
	BeforeMS int64
	// Delete deletes each file's records from the store once the file is
	// verified and listed in the manifest on disk; it also deletes those of
	// files that an earlier run verified but did not delete.
	Delete bool
	// PageSize is the store page size; 0 means 1000 (the most a store serves).
	PageSize int
	// Workers is how many devices are exported at once; 0 means 4. Each
	// file costs an fsync, so a few in flight hide the disk's latency.
	Workers int
	// Now is the clock of the manifest's times; nil means time.Now.
	Now func() time.Time
}

// ExportResult counts what one run did.
type ExportResult struct {
	Written int   // files written and verified by this run
	Skipped int   // files an earlier run verified, checked and kept
	Records int64 // records in the files this run wrote
	Deleted int64 // records deleted from the store by this run
	// Undeleted is how many listed files still hold records that are in
	// the store (a run without Delete).
	Undeleted int
	// Unarchivable counts records left in the store because JSON cannot
	// carry them unchanged (a string that is not UTF-8).
	Unarchivable int
	// Rewritten counts listed files that were missing or damaged and were
	// written again from the store.
	Rewritten int
}

// Manifest flushing: a verified file is listed on disk after at most
// flushFiles more files or flushEvery, but never more often than it takes
// to grow the list by 1/flushGrowth, so that rewriting a manifest of many
// files stays linear in the end.
const (
	flushFiles  = 64
	flushEvery  = 2 * time.Second
	flushGrowth = 16
	deleteChunk = 1000
)

// exporter is the state of one Export run. Workers read the store and
// write files in parallel; mu serializes what they share: the manifest,
// its flushes and the deletions that follow them.
type exporter struct {
	st  Store
	cfg ExportConfig
	log *zap.Logger

	mu sync.Mutex
	m  *Manifest
	// byPath indexes m.Files; byFold maps a lower-cased path to its path, to
	// catch two devices whose file names clash on a case-insensitive disk.
	byPath map[string]int
	byFold map[string]string
	// unflushed counts changes to m not yet on disk; toDelete lists the
	// files verified since the last flush, deleted once it is on disk.
	unflushed int
	toDelete  []string
	// dirty lists the day directories that got a file since the last flush:
	// fsynced, each once, before the manifest lists their files.
	dirty     map[string]bool
	lastFlush time.Time
	res       ExportResult
}

// Export writes every location and log with ts < cfg.BeforeMS of every
// device into cfg.Dir; see the package comment for the layout and for how
// a killed run is resumed.
func Export(ctx context.Context, st Store, cfg ExportConfig, log *zap.Logger) (ExportResult, error) {
	if cfg.PageSize <= 0 || cfg.PageSize > 1000 {
		cfg.PageSize = 1000
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = zap.NewNop()
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return ExportResult{}, fmt.Errorf("archive export: create %s: %w", cfg.Dir, err)
	}
	unlock, err := lockDir(cfg.Dir)
	if err != nil {
		return ExportResult{}, fmt.Errorf("archive export: %w", err)
	}
	defer unlock()

	x := &exporter{st: st, cfg: cfg, log: log, byPath: map[string]int{}, byFold: map[string]string{}, dirty: map[string]bool{}, lastFlush: cfg.Now()}
	if err := x.run(ctx); err != nil {
		// Keep what was verified so far for the rerun; its deletions wait.
		x.toDelete = nil
		if x.unflushed > 0 && x.m != nil {
			if werr := x.save(); werr != nil {
				log.Warn("archive export: manifest not saved after failure", zap.Error(werr))
			}
		}
		return x.res, fmt.Errorf("archive export: %w", err)
	}
	return x.res, nil
}

func (x *exporter) run(ctx context.Context) error {
	if n, err := removeTemps(x.cfg.Dir); err != nil {
		return fmt.Errorf("remove temporary files: %w", err)
	} else if n > 0 {
		x.log.Warn("archive export: removed temporary files of an interrupted run", zap.Int("files", n))
	}
	if err := x.loadManifest(); err != nil {
		return err
	}
	devices, err := x.st.Devices(ctx, nil)
	if err != nil {
		return fmt.Errorf("list devices: %w", err)
	}
	x.m.Devices = mergeDevices(x.m.Devices, devices)
	x.m.Delete = x.cfg.Delete
	// Complete again only once this run has been through every device.
	x.m.Complete = false
	if x.cfg.Delete {
		// Files an earlier run verified but did not delete (killed in
		// between, or run without Delete) are deleted first.
		for _, f := range x.m.Files {
			if !f.Deleted {
				x.toDelete = append(x.toDelete, f.Path)
			}
		}
	}
	if err := x.flush(ctx, true); err != nil {
		return err
	}
	if err := x.exportAll(ctx, devices); err != nil {
		return err
	}
	x.m.Complete = true
	// The second flush records the deletions the first one started.
	for range 2 {
		if err := x.flush(ctx, true); err != nil {
			return err
		}
	}
	if err := x.removeUnlisted(); err != nil {
		return err
	}
	for _, f := range x.m.Files {
		if !f.Deleted {
			x.res.Undeleted++
		}
	}
	return nil
}

// exportAll runs the devices through cfg.Workers workers; the first
// error stops them all.
func (x *exporter) exportAll(ctx context.Context, devices []storage.Device) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan string)
	var wg sync.WaitGroup
	for range x.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range next {
				for _, kind := range []storage.Kind{storage.KindLocations, storage.KindLogs} {
					if err := x.exportSeries(ctx, id, kind); err != nil {
						cancel(fmt.Errorf("device %q %s: %w", id, kind, err))
						return
					}
				}
			}
		}()
	}
feed:
	for _, d := range devices {
		select {
		case next <- d.ID:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return nil
}

// listed reports whether the manifest lists path.
func (x *exporter) listed(path string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	_, ok := x.byPath[path]
	return ok
}

// loadManifest reads the manifest of an earlier run, or starts one, and
// keeps of its files only those whose bytes still match.
func (x *exporter) loadManifest() error {
	now := x.cfg.Now().UTC()
	m, err := readManifest(x.cfg.Dir)
	switch {
	case errors.Is(err, ErrNoManifest):
		x.m = &Manifest{
			Format:    formatVersion,
			Before:    time.UnixMilli(x.cfg.BeforeMS).UTC().Format(time.RFC3339Nano),
			BeforeMS:  x.cfg.BeforeMS,
			CreatedAt: now.Format(time.RFC3339),
		}
		x.unflushed++
		return nil
	case err != nil:
		return err
	case m.BeforeMS != x.cfg.BeforeMS:
		return fmt.Errorf("%s: %w: it was made with --before %s, not %s; export into a new directory",
			x.cfg.Dir, ErrMismatch, m.Before, time.UnixMilli(x.cfg.BeforeMS).UTC().Format(time.RFC3339Nano))
	}
	x.m = m
	kept := m.Files[:0]
	for _, f := range m.Files {
		if f.Path != relPath(f.Kind, f.Device, f.Day) {
			return fmt.Errorf("manifest lists %q for device %q, %s, %s: %w", f.Path, f.Device, f.Kind, f.Day, ErrCorrupt)
		}
		if err := checkFileHash(x.cfg.Dir, f); err != nil {
			if f.Deleted {
				// Its records are gone from the store: nothing can rebuild it.
				return fmt.Errorf("%w; its records were deleted from the store, restore the file from a copy", err)
			}
			x.log.Warn("archive export: listed file is damaged, writing it again from the store", zap.String("file", f.Path), zap.Error(err))
			x.res.Rewritten++
			x.unflushed++
			continue
		}
		kept = append(kept, f)
	}
	m.Files = kept
	x.res.Skipped = len(kept)
	for i, f := range m.Files {
		x.byPath[f.Path] = i
		x.byFold[strings.ToLower(f.Path)] = f.Path
	}
	return nil
}

// mergeDevices keeps devices of an earlier run that the store no longer
// has: their files are still in the archive.
func mergeDevices(old, cur []storage.Device) []storage.Device {
	seen := make(map[string]bool, len(cur))
	for _, d := range cur {
		seen[d.ID] = true
	}
	out := append([]storage.Device(nil), cur...)
	for _, d := range old {
		if !seen[d.ID] {
			out = append(out, d)
		}
	}
	return out
}

// record is one location or log as export handles it.
type record struct {
	id  string
	ts  int64
	val any
	ok  bool // false when JSON cannot carry it unchanged
}

// page reads one page (limit records) of a device's records of kind with ts <= toMS.
func (x *exporter) page(ctx context.Context, kind storage.Kind, device string, toMS int64, cursor string, limit int) ([]record, string, error) {
	var out []record
	switch kind {
	case storage.KindLocations:
		items, next, err := x.st.Locations(ctx, storage.LocationQuery{Device: device, ToMS: toMS, Limit: limit, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		out = make([]record, len(items))
		for i := range items {
			l := &items[i]
			out[i] = record{l.ID, l.TS, l, validUTF8(l.Device, l.ID, l.CRS)}
		}
		return out, next, nil
	case storage.KindLogs:
		items, next, err := x.st.Logs(ctx, storage.LogQuery{Device: device, ToMS: toMS, Limit: limit, Cursor: cursor})
		if err != nil {
			return nil, "", err
		}
		out = make([]record, len(items))
		for i := range items {
			e := &items[i]
			out[i] = record{e.ID, e.TS, e, validUTF8(e.Device, e.ID, e.Level, e.Message)}
		}
		return out, next, nil
	}
	return nil, "", fmt.Errorf("unknown kind %q", kind)
}

func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// exportSeries writes the files of one device and kind. Pages come newest
// first, so the records of a day arrive together: a day's file is complete
// when the first record of an earlier day arrives. A day already listed is
// jumped over by starting again below it.
func (x *exporter) exportSeries(ctx context.Context, device string, kind storage.Kind) (err error) {
	// ToMS is inclusive; a zero bound would mean "unbounded".
	toMS := x.cfg.BeforeMS - 1
	if toMS == 0 {
		toMS = -1
	}
	var w *fileWriter
	defer func() {
		if w != nil {
			w.abort()
		}
	}()
	cursor := ""
	for {
		if cursor == "" && w == nil {
			// A fresh start below a day: one record tells whether the next
			// day down is listed already, so listed days cost a row each.
			probe, _, err := x.page(ctx, kind, device, toMS, "", 1)
			if err != nil {
				return fmt.Errorf("read page: %w", err)
			}
			if len(probe) == 0 {
				return nil
			}
			if day := dayOf(probe[0].ts); x.listed(relPath(kind, device, day)) {
				start, err := dayStartMS(day)
				if err != nil {
					return err
				}
				toMS = start - 1
				continue
			}
		}
		recs, next, err := x.page(ctx, kind, device, toMS, cursor, x.cfg.PageSize)
		if err != nil {
			return fmt.Errorf("read page: %w", err)
		}
		restart := false
		for _, r := range recs {
			day := dayOf(r.ts)
			if w != nil && w.entry.Day != day {
				if err := x.finish(ctx, w); err != nil {
					w = nil
					return err
				}
				w = nil
			}
			if w == nil {
				path := relPath(kind, device, day)
				if x.listed(path) {
					start, err := dayStartMS(day)
					if err != nil {
						return err
					}
					toMS, cursor, restart = start-1, "", true
					break
				}
				if w, err = newFileWriter(x.cfg.Dir, kind, device, day); err != nil {
					return err
				}
			}
			if !r.ok {
				x.mu.Lock()
				x.res.Unarchivable++
				x.mu.Unlock()
				x.log.Warn("archive export: record left in the store: a string in it is not UTF-8",
					zap.String("device", device), zap.String("kind", string(kind)), zap.Int64("ts", r.ts))
				continue
			}
			if err := w.add(r.id, r.ts, r.val); err != nil {
				return err
			}
		}
		if restart {
			continue
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if w != nil {
		err := x.finish(ctx, w)
		w = nil
		return err
	}
	return nil
}

// finish completes a file and lists it. A file that got no record (all
// of its day unarchivable) is dropped.
func (x *exporter) finish(ctx context.Context, w *fileWriter) error {
	if w.entry.Records == 0 {
		w.abort()
		return nil
	}
	fold := strings.ToLower(w.entry.Path)
	x.mu.Lock()
	other, clash := x.byFold[fold]
	x.byFold[fold] = w.entry.Path
	x.mu.Unlock()
	if clash && other != w.entry.Path {
		if _, err := os.Stat(filepath.Join(x.cfg.Dir, filepath.FromSlash(w.entry.Path))); err == nil {
			w.abort()
			return fmt.Errorf("%s and %s are one file on this case-insensitive disk: export to a case-sensitive one", other, w.entry.Path)
		}
	}
	e, err := w.finish(x.cfg.Now())
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dirty[filepath.Join(x.cfg.Dir, e.Day)] = true
	x.byPath[e.Path] = len(x.m.Files)
	x.m.Files = append(x.m.Files, e)
	x.res.Written++
	x.res.Records += int64(e.Records)
	x.unflushed++
	if x.cfg.Delete {
		x.toDelete = append(x.toDelete, e.Path)
	}
	return x.flush(ctx, false)
}

// flush writes the manifest when due (always when force), then deletes the
// records of the files it lists for the first time. The caller holds mu,
// or runs alone.
func (x *exporter) flush(ctx context.Context, force bool) error {
	if x.unflushed == 0 && len(x.toDelete) == 0 {
		return nil
	}
	if !force {
		due := x.unflushed >= flushFiles || x.cfg.Now().Sub(x.lastFlush) >= flushEvery
		cheap := x.unflushed*flushGrowth >= len(x.m.Files)
		if !due || !cheap {
			return nil
		}
	}
	if x.unflushed > 0 {
		if err := x.save(); err != nil {
			return err
		}
	}
	paths := x.toDelete
	x.toDelete = nil
	for _, p := range paths {
		if err := x.deleteFile(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// save makes the files listed since the last save durable (their
// directories fsynced) and then writes the manifest. The caller holds mu,
// or runs alone.
func (x *exporter) save() error {
	for dir := range x.dirty {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("fsync %s: %w", dir, err)
		}
		delete(x.dirty, dir)
	}
	x.m.UpdatedAt = x.cfg.Now().UTC().Format(time.RFC3339)
	if err := x.m.write(x.cfg.Dir); err != nil {
		return err
	}
	// write sorts the files: index them again.
	for i, f := range x.m.Files {
		x.byPath[f.Path] = i
	}
	x.unflushed = 0
	x.lastFlush = x.cfg.Now()
	return nil
}

// deleteFile deletes from the store the records that a listed file holds,
// read back from the file itself, and marks the entry (on disk at the next
// flush; a crash before it only repeats the deletion).
func (x *exporter) deleteFile(ctx context.Context, path string) error {
	e := &x.m.Files[x.byPath[path]]
	if e.Deleted {
		return nil
	}
	ids := make([]string, 0, e.Records)
	if err := readFile(x.cfg.Dir, *e, func(_ []byte, h recordHead) error {
		ids = append(ids, h.ID)
		return nil
	}); err != nil {
		return fmt.Errorf("before deleting its records: %w", err)
	}
	var n int64
	for len(ids) > 0 {
		chunk := ids[:min(deleteChunk, len(ids))]
		ids = ids[len(chunk):]
		d, err := x.st.DeleteRecords(ctx, e.Kind, e.Device, chunk)
		if err != nil {
			return fmt.Errorf("delete records of %s: %w", e.Path, err)
		}
		n += d
	}
	e.Deleted, e.DeletedRecords, e.DeletedAt = true, e.DeletedRecords+n, x.cfg.Now().UTC().Format(time.RFC3339)
	x.res.Deleted += n
	x.unflushed++
	return nil
}

// removeUnlisted removes data files that no manifest entry names: a run
// killed after renaming a file but before listing it, whose records have
// since left the store. Only the import reads files, and only listed ones,
// so they are not part of the archive; removing them keeps the directory
// what the manifest says.
func (x *exporter) removeUnlisted() error {
	matches, err := filepath.Glob(filepath.Join(x.cfg.Dir, "*", "*"+fileSuffix))
	if err != nil {
		return err
	}
	for _, m := range matches {
		rel, err := filepath.Rel(x.cfg.Dir, m)
		if err != nil {
			return err
		}
		if _, ok := x.byPath[filepath.ToSlash(rel)]; ok {
			continue
		}
		x.log.Warn("archive export: removing a file no manifest entry lists", zap.String("file", rel))
		if err := os.Remove(m); err != nil {
			return fmt.Errorf("remove unlisted %s: %w", rel, err)
		}
	}
	return nil
}

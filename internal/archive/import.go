package archive

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// importBatch is how many records go into one SaveBatch.
const importBatch = 1000

// ImportResult counts what an import stored.
type ImportResult struct {
	Files      int
	Records    int64 // records read from the files
	Inserted   int64 // new to the store
	Duplicates int64 // already stored (same device and id)
	// Unregistered lists the archive's devices that the store does not
	// know. Their records are imported all the same (the store keys
	// records by device id, not by registration); such a device can be
	// queried but cannot connect until it is added.
	Unregistered []string
}

// Import stores every record of the archive in dir. It is idempotent: the
// store keeps one record per (device, id), so a second import inserts
// nothing and counts duplicates. Every listed file is checked (SHA-256 and
// size) before anything is stored; if one is damaged, nothing is imported
// and the error names it.
func Import(ctx context.Context, st Store, dir string, log *zap.Logger) (ImportResult, error) {
	if log == nil {
		log = zap.NewNop()
	}
	var res ImportResult
	m, err := readManifest(dir)
	if err != nil {
		return res, fmt.Errorf("archive import: %w", err)
	}
	var bad []error
	for _, f := range m.Files {
		if f.Path != relPath(f.Kind, f.Device, f.Day) {
			return res, fmt.Errorf("archive import: manifest lists %q for device %q, %s, %s: %w", f.Path, f.Device, f.Kind, f.Day, ErrCorrupt)
		}
		if err := checkFileHash(dir, f); err != nil {
			bad = append(bad, err)
		}
	}
	if len(bad) > 0 {
		return res, fmt.Errorf("archive import: %d damaged file(s), nothing imported: %w", len(bad), errors.Join(bad...))
	}
	for _, f := range m.Files {
		if err := importFile(ctx, st, dir, f, &res); err != nil {
			return res, fmt.Errorf("archive import: %w", err)
		}
		res.Files++
		log.Debug("archive import: file stored", zap.String("file", f.Path), zap.Int("records", f.Records))
	}
	known, err := st.Devices(ctx, nil)
	if err != nil {
		return res, fmt.Errorf("archive import: list devices: %w", err)
	}
	registered := make(map[string]bool, len(known))
	for _, d := range known {
		registered[d.ID] = true
	}
	seen := map[string]bool{}
	for _, f := range m.Files {
		if !registered[f.Device] && !seen[f.Device] {
			seen[f.Device] = true
			res.Unregistered = append(res.Unregistered, f.Device)
		}
	}
	return res, nil
}

// importFile stores one file's records in batches. The file's hash was
// checked just before; readFile checks it again at the end, which can fail
// only if the file changed in between.
func importFile(ctx context.Context, st Store, dir string, f FileEntry, res *ImportResult) error {
	var b storage.Batch
	save := func() error {
		if b.Len() == 0 {
			return nil
		}
		r, err := st.SaveBatch(ctx, b)
		if err != nil {
			return fmt.Errorf("store records of %s: %w", f.Path, err)
		}
		res.Inserted += int64(r.Inserted)
		res.Duplicates += int64(r.Duplicates)
		b = storage.Batch{}
		return nil
	}
	err := readFile(dir, f, func(line []byte, _ recordHead) error {
		switch f.Kind {
		case storage.KindLocations:
			var l storage.Location
			if err := json.Unmarshal(line, &l); err != nil {
				return fmt.Errorf("read %s: %w: %v", f.Path, ErrCorrupt, err)
			}
			b.Locations = append(b.Locations, l)
		case storage.KindLogs:
			var e storage.LogEntry
			if err := json.Unmarshal(line, &e); err != nil {
				return fmt.Errorf("read %s: %w: %v", f.Path, ErrCorrupt, err)
			}
			b.Logs = append(b.Logs, e)
		default:
			return fmt.Errorf("%s: unknown kind %q: %w", f.Path, f.Kind, ErrCorrupt)
		}
		res.Records++
		if b.Len() >= importBatch {
			return save()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return save()
}

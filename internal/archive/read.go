package archive

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// maxLine bounds one JSON line when reading a file back; far above any
// record the gateway accepts.
const maxLine = 64 << 20

// recordHead is the part of a line that names the record.
type recordHead struct {
	Device string `json:"device"`
	ID     string `json:"id"`
	TS     int64  `json:"ts"`
}

// readFile calls fn with each line of a data file, after checking that the
// line belongs to the file (device and day of its entry); at the end it
// checks the file's SHA-256 and line count against the entry. A caller that
// must act only on a sound file collects the lines and acts after readFile
// returns nil. Errors wrap ErrCorrupt when the file is not what the entry says.
func readFile(dir string, e FileEntry, fn func(line []byte, head recordHead) error) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(e.Path)))
	if err != nil {
		return fmt.Errorf("read %s: %w", e.Path, err)
	}
	defer f.Close()
	h := sha256.New()
	gz, err := gzip.NewReader(io.TeeReader(f, h))
	if err != nil {
		return fmt.Errorf("read %s: %w: %v", e.Path, ErrCorrupt, err)
	}
	sc := bufio.NewScanner(gz)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)
	n := 0
	for sc.Scan() {
		n++
		var head recordHead
		if err := json.Unmarshal(sc.Bytes(), &head); err != nil {
			return fmt.Errorf("read %s: line %d: %w: %v", e.Path, n, ErrCorrupt, err)
		}
		if head.Device != e.Device || dayOf(head.TS) != e.Day || head.ID == "" {
			return fmt.Errorf("read %s: line %d: %w: record %q of device %q at %s does not belong in this file",
				e.Path, n, ErrCorrupt, head.ID, head.Device, dayOf(head.TS))
		}
		if err := fn(sc.Bytes(), head); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read %s: %w: %v", e.Path, ErrCorrupt, err)
	}
	if _, err := io.Copy(io.Discard, f); err != nil {
		return fmt.Errorf("read %s: %w", e.Path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != e.SHA256 {
		return fmt.Errorf("read %s: %w: SHA-256 %s, manifest says %s", e.Path, ErrCorrupt, got, e.SHA256)
	}
	if n != e.Records {
		return fmt.Errorf("read %s: %w: %d records, manifest says %d", e.Path, ErrCorrupt, n, e.Records)
	}
	return nil
}

package archive

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/devtrack/devtrack/storage"
)

// ManifestName is the manifest's file name inside the archive directory.
const ManifestName = "manifest.json"

// formatVersion names the layout described in the package comment; import
// refuses any other.
const formatVersion = "devtrack-archive/1"

// Manifest describes an archive directory. Only files listed here belong
// to the archive, and each is listed only once it has been verified.
type Manifest struct {
	Format string `json:"format"`
	// Before is the export's bound (exclusive): every record with ts <
	// Before, RFC3339 in UTC and Unix ms.
	Before   string `json:"before"`
	BeforeMS int64  `json:"before_ms"`
	// CreatedAt and UpdatedAt are RFC3339 (UTC).
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	// Complete is set once a run went through every device: the listed
	// files then hold every record of the range that the store held then.
	Complete bool `json:"complete"`
	// Delete tells whether the last run was asked to delete what it archived.
	Delete bool `json:"delete"`
	// Devices are the devices the export saw (tokens are never exported).
	Devices []storage.Device `json:"devices"`
	Files   []FileEntry      `json:"files"`
}

// FileEntry is one verified data file.
type FileEntry struct {
	// Path is relative to the archive directory, with slashes.
	Path    string       `json:"path"`
	Kind    storage.Kind `json:"kind"`
	Device  string       `json:"device"`
	Day     string       `json:"day"` // UTC, YYYY-MM-DD
	Records int          `json:"records"`
	Bytes   int64        `json:"bytes"`
	SHA256  string       `json:"sha256"` // of the file's bytes, hex
	// MinTS and MaxTS bound the records' ts (Unix ms).
	MinTS      int64  `json:"min_ts"`
	MaxTS      int64  `json:"max_ts"`
	VerifiedAt string `json:"verified_at"`
	// Deleted is set once the file's records were deleted from the store
	// (export --delete); DeletedRecords is how many the store removed.
	Deleted        bool   `json:"deleted,omitempty"`
	DeletedRecords int64  `json:"deleted_records,omitempty"`
	DeletedAt      string `json:"deleted_at,omitempty"`
}

// readManifest loads DIR's manifest; errors wrap ErrNoManifest when there is none.
func readManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read %s: %w", path, ErrNoManifest)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if m.Format != formatVersion {
		return nil, fmt.Errorf("read %s: format %q, this binary reads %q", path, m.Format, formatVersion)
	}
	return &m, nil
}

// write replaces DIR's manifest atomically, files sorted by path so that
// two runs that archived the same records write the same list.
func (m *Manifest) write(dir string) error {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	b, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(dir, ManifestName), append(b, '\n')); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

package archive

import (
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/storage"
)

// dayLayout names the directory of one UTC day.
const dayLayout = "2006-01-02"

// fileSuffix ends every data file; tmpSuffix every file being written.
const (
	fileSuffix = ".jsonl.gz"
	tmpSuffix  = ".tmp"
)

// dayOf is the UTC day of a Unix ms timestamp.
func dayOf(ms int64) string { return time.UnixMilli(ms).UTC().Format(dayLayout) }

// dayStartMS is midnight UTC of day, Unix ms.
func dayStartMS(day string) (int64, error) {
	t, err := time.Parse(dayLayout, day)
	if err != nil {
		return 0, fmt.Errorf("day %q: %w", day, err)
	}
	return t.UnixMilli(), nil
}

// relPath is where the file of (device, day, kind) lives, relative to the
// archive directory, with slashes.
func relPath(kind storage.Kind, device, day string) string {
	return path.Join(day, encodeName(device)+"."+string(kind)+fileSuffix)
}

// encodeName makes a device id a safe file name: bytes outside
// [A-Za-z0-9._@-], '%' and a leading '.' become %XX (upper-case hex), so no
// id can climb out of its directory, hide, or clash with another id.
func encodeName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if safeByte(c) && !(i == 0 && c == '.') {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// decodeName reverses encodeName.
func decodeName(name string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c != '%' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(name) {
			return "", fmt.Errorf("file name %q: truncated escape", name)
		}
		v, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
		if err != nil {
			return "", fmt.Errorf("file name %q: bad escape", name)
		}
		b.WriteByte(byte(v))
		i += 2
	}
	return b.String(), nil
}

func safeByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '@' || c == '-'
}

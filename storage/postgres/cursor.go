package postgres

import (
	"strconv"
	"strings"

	"github.com/devtrack/devtrack/storage"
)

// pageLimit applies the defaults and the cap to a requested page size.
func pageLimit(n int) int { return storage.PageLimit(n) }

// cursor is the position after the last row of a page (storage.EncodeCursor).
type cursor struct {
	ts  int64
	seq int64
}

func (c cursor) encode() string { return storage.EncodeCursor(c.ts, c.seq) }

// decodeCursor parses a cursor made by encode; anything else is ErrBadCursor.
func decodeCursor(s string) (cursor, error) {
	ts, seq, err := storage.DecodeCursor(s)
	return cursor{ts: ts, seq: seq}, err
}

// where collects the conditions and arguments of a filtered query. The
// conditions are fixed SQL fragments with $N placeholders; user data goes
// only into args.
type where struct {
	conds []string
	args  []any
}

// arg adds v to the arguments and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

func (w *where) add(cond string) { w.conds = append(w.conds, cond) }

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page adds the time bounds and the cursor of a newest-first page.
func (w *where) page(from, to int64, cur string) error {
	if from > 0 {
		w.add("ts >= " + w.arg(from))
	}
	if to > 0 {
		w.add("ts <= " + w.arg(to))
	}
	if cur != "" {
		c, err := decodeCursor(cur)
		if err != nil {
			return err
		}
		// A row comparison, which a (…, ts, seq) index walks backwards.
		w.add("(ts, seq) < (" + w.arg(c.ts) + ", " + w.arg(c.seq) + ")")
	}
	return nil
}

const pageOrder = " ORDER BY ts DESC, seq DESC"

func itoa(n int) string { return strconv.Itoa(n) }

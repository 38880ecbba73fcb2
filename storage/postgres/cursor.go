package postgres

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/devtrack/devtrack/storage"
)

// Page sizes, as in the SQLite store.
const (
	defaultLimit = 100  // when the query asks for 0 or less
	maxLimit     = 1000 // larger requests are cut to this
)

// pageLimit applies the defaults and the cap to a requested page size.
func pageLimit(n int) int {
	switch {
	case n <= 0:
		return defaultLimit
	case n > maxLimit:
		return maxLimit
	}
	return n
}

// cursor is the position after the last row of a page: pages are ordered by
// (ts DESC, seq DESC), so the next page starts below it.
type cursor struct {
	ts  int64
	seq int64
}

// encode makes the opaque form handed to clients: base64url("ts:seq"), the
// same form as the SQLite store's (a cursor names a position in one store;
// it is not meant to move between them).
func (c cursor) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(c.ts, 10) + ":" + strconv.FormatInt(c.seq, 10)))
}

// decodeCursor parses a cursor made by encode; anything else is ErrBadCursor.
func decodeCursor(s string) (cursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return cursor{}, fmt.Errorf("%w: not base64", storage.ErrBadCursor)
	}
	tsStr, seqStr, ok := strings.Cut(string(raw), ":")
	if !ok {
		return cursor{}, fmt.Errorf("%w: malformed", storage.ErrBadCursor)
	}
	ts, err1 := strconv.ParseInt(tsStr, 10, 64)
	seq, err2 := strconv.ParseInt(seqStr, 10, 64)
	if err1 != nil || err2 != nil || seq <= 0 {
		return cursor{}, fmt.Errorf("%w: malformed", storage.ErrBadCursor)
	}
	return cursor{ts: ts, seq: seq}, nil
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

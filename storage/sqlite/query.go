package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/devtrack/devtrack/storage"
)

// where collects the conditions and arguments of a filtered query. The
// conditions are fixed SQL fragments; user data goes only into args.
type where struct {
	conds []string
	args  []any
}

func (w *where) add(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

func (w *where) sql() string {
	if len(w.conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(w.conds, " AND ")
}

// page adds the time bounds and the cursor of a newest-first page to w. The
// query then ends with pageOrder, whose limit the caller passes as the page
// size plus one, to tell whether there is a next page.
func (w *where) page(from, to int64, cur string) error {
	if from > 0 {
		w.add("ts >= ?", from)
	}
	if to > 0 {
		w.add("ts <= ?", to)
	}
	if cur != "" {
		c, err := storage.DecodeCursor(cur)
		if err != nil {
			return err
		}
		w.add("(ts < ? OR (ts = ? AND seq < ?))", c.TS, c.TS, c.Seq)
	}
	return nil
}

const pageOrder = " ORDER BY ts DESC, seq DESC LIMIT ?"

// indexPlanFrom joins the rows that the index matched (a JSON array, the
// first argument) to logs, in that order.
const indexPlanFrom = "json_each(?) AS m CROSS JOIN logs ON logs.seq = m.value"

// logsSelect names the table of every column: a search joins logs_fts, which
// has a message column too.
const logsSelect = `SELECT logs.seq, logs.device, logs.id, logs.ts, logs.received_at,
	logs.level, logs.message, logs.fields FROM `

// Locations returns one page of a device's locations, newest first.
func (s *Store) Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error) {
	limit := storage.PageLimit(q.Limit)
	var w where
	w.add("device = ?", q.Device)
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return nil, "", fmt.Errorf("sqlite: locations: %w", err)
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT seq, device, id, ts, received_at, lat, lng,
		accuracy, speed, heading, altitude, crs, orig_lat, orig_lng
		FROM locations`+w.sql()+pageOrder, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: locations: %w", err)
	}
	defer rows.Close()

	out := make([]storage.Location, 0, min(limit, 64))
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			// The extra row: there is a next page, after the last one kept.
			return out, last.Encode(), closeRows(rows, "locations")
		}
		var l storage.Location
		var acc, speed, heading, alt, olat, olng sql.NullFloat64
		if err := rows.Scan(&last.Seq, &l.Device, &l.ID, &l.TS, &l.ReceivedAt, &l.Lat, &l.Lng,
			&acc, &speed, &heading, &alt, &l.CRS, &olat, &olng); err != nil {
			return nil, "", fmt.Errorf("sqlite: locations: %w", err)
		}
		last.TS = l.TS
		l.Accuracy, l.Speed, l.Heading, l.Altitude = floatPtr(acc), floatPtr(speed), floatPtr(heading), floatPtr(alt)
		l.OrigLat, l.OrigLng = floatPtr(olat), floatPtr(olng)
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: locations: %w", err)
	}
	return out, "", nil
}

// Logs returns one page of logs, newest first.
func (s *Store) Logs(ctx context.Context, q storage.LogQuery) ([]storage.LogEntry, string, error) {
	limit := storage.PageLimit(q.Limit)
	query, args, none, err := s.logsQuery(ctx, q, limit)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: logs: %w", err)
	}
	if none {
		return []storage.LogEntry{}, "", nil
	}
	rows, err := s.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: logs: %w", err)
	}
	defer rows.Close()

	out := make([]storage.LogEntry, 0, min(limit, 64))
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			return out, last.Encode(), closeRows(rows, "logs")
		}
		var e storage.LogEntry
		var fields sql.NullString
		if err := rows.Scan(&last.Seq, &e.Device, &e.ID, &e.TS, &e.ReceivedAt, &e.Level, &e.Message, &fields); err != nil {
			return nil, "", fmt.Errorf("sqlite: logs: %w", err)
		}
		last.TS = e.TS
		if fields.Valid {
			e.Fields = json.RawMessage(fields.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: logs: %w", err)
	}
	return out, "", nil
}

// closeRows closes rows early and reports an error the iteration hit.
func closeRows(rows *sql.Rows, op string) error {
	if err := rows.Close(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("sqlite: %s: %w", op, err)
	}
	return nil
}

func floatPtr(v sql.NullFloat64) *float64 {
	if !v.Valid {
		return nil
	}
	return &v.Float64
}

// logsQuery builds the SQL of one page of q (limit+1 rows) and its
// arguments; none is true when no log can pass the filters. A search picks
// its plan here (see search.go).
func (s *Store) logsQuery(ctx context.Context, q storage.LogQuery, limit int) (query string, args []any, none bool, err error) {
	srch, err := parseSearch(q.Text)
	if err != nil {
		return "", nil, false, err
	}
	none = q.Devices != nil && len(q.Devices) == 0
	var w where
	if q.Device != "" {
		w.add("device = ?", q.Device)
	}
	if q.Devices != nil {
		// One JSON parameter instead of one per device: an operator may see
		// more devices than SQLite allows parameters.
		list, err := json.Marshal(q.Devices)
		if err != nil {
			return "", nil, false, err
		}
		col := "device"
		if srch != nil && q.Device == "" && len(q.Devices) > walkDeviceIndexMax {
			// A walk over many devices: the (device, ts) index would read
			// every log of each one and sort them all; the (ts) index
			// in page order stops at the first page. The + keeps SQLite
			// from using an index for this condition.
			col = "+device"
		}
		w.add(col+" IN (SELECT value FROM json_each(?))", string(list))
	}
	if q.Level != "" {
		w.add("level = ?", q.Level)
	}
	// The cursor is checked even when nothing can match.
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return "", nil, false, err
	}
	if srch == nil || none {
		return logsSelect + "logs" + w.sql() + pageOrder, append(w.args, limit+1), none, nil
	}
	p, err := s.planSearch(ctx, srch, w, limit)
	if err != nil {
		return "", nil, false, err
	}
	query, args = p.sql(srch, w, limit)
	return query, args, false, nil
}

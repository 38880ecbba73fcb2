package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

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
		c, err := storage.DecodeCursor(cur)
		if err != nil {
			return err
		}
		// A row comparison, which a (…, ts, seq) index walks backwards.
		w.add("(ts, seq) < (" + w.arg(c.TS) + ", " + w.arg(c.Seq) + ")")
	}
	return nil
}

const pageOrder = " ORDER BY ts DESC, seq DESC"

func itoa(n int) string { return strconv.Itoa(n) }

// Locations returns one page of a device's locations, newest first.
func (s *Store) Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error) {
	limit := storage.PageLimit(q.Limit)
	var w where
	w.add("device = " + w.arg(q.Device))
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return nil, "", fmt.Errorf("postgres: locations: %w", err)
	}
	if validText("device", q.Device) != nil {
		return []storage.Location{}, "", s.probe(ctx, "locations") // no stored device has that id
	}
	rows, err := s.pool.Query(ctx, `SELECT seq, device, id, ts, received_at, lat, lng,
		accuracy, speed, heading, altitude, crs, orig_lat, orig_lng
		FROM locations`+w.sql()+pageOrder+" LIMIT "+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: locations: %w", classify(err))
	}
	defer rows.Close()
	out := make([]storage.Location, 0, min(limit, 64))
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			// The extra row: there is a next page, after the last one kept.
			return out, last.Encode(), nil
		}
		var l storage.Location
		if err := rows.Scan(&last.Seq, &l.Device, &l.ID, &l.TS, &l.ReceivedAt, &l.Lat, &l.Lng,
			&l.Accuracy, &l.Speed, &l.Heading, &l.Altitude, &l.CRS, &l.OrigLat, &l.OrigLng); err != nil {
			return nil, "", fmt.Errorf("postgres: locations: %w", classify(err))
		}
		last.TS = l.TS
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("postgres: locations: %w", classify(err))
	}
	return out, "", nil
}

// probe is the round trip of a query that can match nothing (its text holds
// what no row holds), so that it still fails when the server is down, as a
// real query would: a health check by such a lookup sees an outage.
func (s *Store) probe(ctx context.Context, op string) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %s: %w", op, classify(err))
	}
	return nil
}

const logColumns = `seq, device, id, ts, received_at, level, message, fields`

// Logs returns one page of logs, newest first. With search text it tries
// the newest rows first (see search.go).
func (s *Store) Logs(ctx context.Context, q storage.LogQuery) ([]storage.LogEntry, string, error) {
	limit := storage.PageLimit(q.Limit)
	var w where
	none := false // a filter that nothing can pass; the cursor is still checked
	if q.Device != "" {
		none = none || validText("device", q.Device) != nil
		w.add("device = " + w.arg(q.Device))
	}
	if q.Devices != nil {
		devs := make([]string, 0, len(q.Devices))
		for _, d := range q.Devices {
			if validText("device", d) == nil {
				devs = append(devs, d)
			}
		}
		none = none || len(devs) == 0
		w.add("device = ANY(" + w.arg(devs) + ")")
	}
	if q.Level != "" {
		none = none || validText("level", q.Level) != nil
		w.add("level = " + w.arg(q.Level))
	}
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return nil, "", fmt.Errorf("postgres: logs: %w", err)
	}
	terms, err := storage.SearchTerms(q.Text)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: logs: %w", err)
	}
	var text []string
	for _, t := range terms {
		if strings.IndexByte(t, 0) >= 0 {
			none = true // no stored message holds a NUL (see cleanMessage)
			continue
		}
		text = append(text, "message ILIKE "+w.arg(likePattern(t)))
	}
	if none {
		return []storage.LogEntry{}, "", s.probe(ctx, "logs")
	}
	var out []storage.LogEntry
	var next string
	if len(text) == 0 {
		out, next, err = s.logPage(ctx, s.pool, `SELECT `+logColumns+` FROM logs`+w.sql()+pageOrder, w.args, limit)
	} else {
		out, next, err = s.searchPage(ctx, w, text, terms, limit)
	}
	if err != nil {
		return nil, "", fmt.Errorf("postgres: logs: %w", classify(err))
	}
	return out, next, nil
}

// querier is a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// logPage runs query (ordered newest first, without LIMIT) for limit+1 rows
// and returns the page and the next cursor.
func (s *Store) logPage(ctx context.Context, db querier, query string, args []any, limit int) ([]storage.LogEntry, string, error) {
	query += " LIMIT " + strconv.Itoa(limit+1)
	if s.explain != nil {
		s.explainQuery(ctx, db, query, args)
	}
	rows, err := db.Query(ctx, query, args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	out := make([]storage.LogEntry, 0, min(limit, 64))
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			return out, last.Encode(), nil
		}
		var e storage.LogEntry
		var fields *string
		if err := rows.Scan(&last.Seq, &e.Device, &e.ID, &e.TS, &e.ReceivedAt, &e.Level, &e.Message, &fields); err != nil {
			return nil, "", err
		}
		last.TS = e.TS
		if fields != nil {
			e.Fields = json.RawMessage(*fields)
		}
		out = append(out, e)
	}
	return out, "", rows.Err()
}

// explainQuery hands the plan of query, as run, to s.explain.
func (s *Store) explainQuery(ctx context.Context, db querier, query string, args []any) {
	rows, err := db.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+query, args...)
	if err != nil {
		s.explain("EXPLAIN: " + err.Error())
		return
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.explain("EXPLAIN: " + err.Error())
		return
	}
	s.explain(strings.Join(lines, "\n"))
}

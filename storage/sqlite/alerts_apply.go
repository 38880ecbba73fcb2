package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/devtrack/devtrack/storage"
)

// What geofences and alert rules raise (migration 0009): device states,
// events, alerts and the webhook outbox. Every write runs on the one write
// connection under BEGIN IMMEDIATE, so two processes applying the same
// transitions run one after the other and the second finds the first's
// states.

// ApplyAlerts applies transitions and stores what flipped; see
// storage.Alerting.
func (s *Store) ApplyAlerts(ctx context.Context, ts []storage.Transition, alerts []storage.Alert) ([]storage.GeofenceEvent, []storage.Alert, error) {
	if err := storage.ValidateAlerting(ts, alerts); err != nil {
		return nil, nil, fmt.Errorf("sqlite: apply alerts: %w", err)
	}
	if len(ts) == 0 && len(alerts) == 0 {
		return nil, nil, nil
	}
	sorted := slices.Clone(ts)
	slices.SortStableFunc(sorted, func(a, b storage.Transition) int { return cmpInt(a.TS, b.TS) })
	type stateKey struct{ device, key string }
	type state struct {
		on    bool
		ts    int64
		known bool
	}
	var keys []stateKey
	seen := map[stateKey]bool{}
	for _, t := range sorted {
		if k := (stateKey{t.Device, t.Key}); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	pairs := make([][2]string, len(keys))
	for i, k := range keys {
		pairs[i] = [2]string{k.device, k.key}
	}
	keysJSON, err := json.Marshal(pairs)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: apply alerts: %w", err)
	}
	now := nowMS()
	var events []storage.GeofenceEvent
	var added []storage.Alert
	_, err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		events, added = nil, nil
		// The states of every key at once (the write lock is held: nobody
		// changes them before the commit), then the transitions in memory.
		states := make(map[stateKey]state, len(keys))
		if len(keys) > 0 {
			rows, err := tx.QueryContext(ctx, `SELECT s.device, s.key, s.is_on, s.ts FROM json_each(?) AS j
				JOIN device_states s ON s.device = j.value ->> '$[0]' AND s.key = j.value ->> '$[1]'`, string(keysJSON))
			if err != nil {
				return 0, fmt.Errorf("read states: %w", err)
			}
			for rows.Next() {
				var k stateKey
				st := state{known: true}
				if err := rows.Scan(&k.device, &k.key, &st.on, &st.ts); err != nil {
					rows.Close()
					return 0, fmt.Errorf("read states: %w", err)
				}
				states[k] = st
			}
			if err := closeRows(rows, "read states"); err != nil {
				return 0, err
			}
		}
		ins, err := prepareInserts(ctx, tx)
		if err != nil {
			return 0, err
		}
		defer ins.close()
		changed := map[stateKey]bool{}
		for _, t := range sorted {
			k := stateKey{t.Device, t.Key}
			st := states[k]
			if st.known && t.TS <= st.ts {
				continue
			}
			states[k], changed[k] = state{on: t.On, ts: t.TS, known: true}, true
			if t.On == st.on {
				continue
			}
			if e := t.Event; e != nil {
				res, err := ins.event.ExecContext(ctx, e.ID, e.Device, e.Geofence, e.Type, e.TS, e.Location, e.Lat, e.Lng)
				if err != nil {
					return 0, fmt.Errorf("store event %q: %w", e.ID, err)
				}
				if n, _ := res.RowsAffected(); n > 0 {
					events = append(events, *e)
				}
			}
			for _, a := range t.Alerts {
				var err error
				if added, err = ins.alert(ctx, a, now, added); err != nil {
					return 0, err
				}
			}
		}
		for _, a := range alerts {
			var err error
			if added, err = ins.alert(ctx, a, now, added); err != nil {
				return 0, err
			}
		}
		if len(changed) == 0 {
			return 0, nil
		}
		type row struct {
			Device string `json:"d"`
			Key    string `json:"k"`
			On     bool   `json:"o"`
			TS     int64  `json:"t"`
		}
		var upd []row
		for _, k := range keys {
			if changed[k] {
				st := states[k]
				upd = append(upd, row{k.device, k.key, st.on, st.ts})
			}
		}
		b, err := json.Marshal(upd)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO device_states (device, key, is_on, ts)
			SELECT value ->> 'd', value ->> 'k', value ->> 'o', value ->> 't' FROM json_each(?) WHERE true
			ON CONFLICT (device, key) DO UPDATE SET is_on = excluded.is_on, ts = excluded.ts`, string(b)); err != nil {
			return 0, fmt.Errorf("write states: %w", err)
		}
		return 0, nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: apply alerts: %w", err)
	}
	return events, added, nil
}

// alertInserts are the statements of ApplyAlerts' inserts, prepared once
// per transaction: a batch may store hundreds of events and alerts.
type alertInserts struct {
	event, alertRow, deliveries *sql.Stmt
}

func prepareInserts(ctx context.Context, tx *sql.Tx) (*alertInserts, error) {
	var ins alertInserts
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&ins.event, `INSERT INTO geofence_events (id, device, geofence, type, ts, location, lat, lng)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&ins.alertRow, `INSERT INTO alerts (id, rule, kind, device, grp, ts, cause, message, lat, lng, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&ins.deliveries, `INSERT INTO deliveries (id, alert, webhook, due_at)
			SELECT ? || ':' || id, ?, id, ? FROM webhooks WHERE grp IN (?, '') ON CONFLICT (id) DO NOTHING`},
	} {
		st, err := tx.PrepareContext(ctx, p.q)
		if err != nil {
			ins.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
		*p.st = st
	}
	return &ins, nil
}

func (ins *alertInserts) close() {
	for _, st := range []*sql.Stmt{ins.event, ins.alertRow, ins.deliveries} {
		if st != nil {
			_ = st.Close()
		}
	}
}

// alert stores a, unless its id is stored already, with one delivery per
// webhook of its group and of every group, and appends it to added if it
// was new.
func (ins *alertInserts) alert(ctx context.Context, a storage.Alert, now int64, added []storage.Alert) ([]storage.Alert, error) {
	if a.CreatedAt == 0 {
		a.CreatedAt = now
	}
	res, err := ins.alertRow.ExecContext(ctx, a.ID, a.Rule, a.Kind, a.Device, a.Group, a.TS, a.Cause, a.Message, a.Lat, a.Lng, a.CreatedAt)
	if err != nil {
		return added, fmt.Errorf("store alert %q: %w", a.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return added, nil
	}
	if _, err := ins.deliveries.ExecContext(ctx, a.ID, a.ID, now, a.Group); err != nil {
		return added, fmt.Errorf("queue deliveries of alert %q: %w", a.ID, err)
	}
	return append(added, a), nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GeofenceEvents returns one page of events, newest first.
func (s *Store) GeofenceEvents(ctx context.Context, q storage.EventQuery) ([]storage.GeofenceEvent, string, error) {
	return eventPage(ctx, s.rdb, q, "geofence events", `SELECT seq, id, device, geofence, type, ts, location, lat, lng FROM geofence_events`,
		func(row scanner, c *storage.Cursor) (storage.GeofenceEvent, error) {
			var e storage.GeofenceEvent
			err := row.Scan(&c.Seq, &e.ID, &e.Device, &e.Geofence, &e.Type, &e.TS, &e.Location, &e.Lat, &e.Lng)
			c.TS = e.TS
			return e, err
		})
}

// Alerts returns one page of alerts, newest first.
func (s *Store) Alerts(ctx context.Context, q storage.EventQuery) ([]storage.Alert, string, error) {
	return eventPage(ctx, s.rdb, q, "alerts", `SELECT seq, id, rule, kind, device, grp, ts, cause, message, lat, lng, created_at FROM alerts`,
		func(row scanner, c *storage.Cursor) (storage.Alert, error) {
			var a storage.Alert
			err := row.Scan(&c.Seq, &a.ID, &a.Rule, &a.Kind, &a.Device, &a.Group, &a.TS, &a.Cause, &a.Message, &a.Lat, &a.Lng, &a.CreatedAt)
			c.TS = a.TS
			return a, err
		})
}

// eventPage runs a newest-first page of an archive table (seq, ts and
// device columns) filtered by q.
func eventPage[T any](ctx context.Context, db *sql.DB, q storage.EventQuery, what, sel string,
	scan func(scanner, *storage.Cursor) (T, error)) ([]T, string, error) {
	limit := storage.PageLimit(q.Limit)
	var w where
	if q.Device != "" {
		w.add("device = ?", q.Device)
	}
	if q.Devices != nil {
		list, err := json.Marshal(q.Devices)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: %s: %w", what, err)
		}
		w.add("device IN (SELECT value FROM json_each(?))", string(list))
	}
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return nil, "", fmt.Errorf("sqlite: %s: %w", what, err)
	}
	rows, err := db.QueryContext(ctx, sel+w.sql()+pageOrder, append(w.args, limit+1)...)
	if err != nil {
		return nil, "", fmt.Errorf("sqlite: %s: %w", what, err)
	}
	defer rows.Close()
	out := []T{}
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			return out, last.Encode(), closeRows(rows, what)
		}
		v, err := scan(rows, &last)
		if err != nil {
			return nil, "", fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, "", nil
}

// ClaimDeliveries leases due deliveries to worker; the write lock makes the
// select and the lease one step, so two claims never share a delivery.
func (s *Store) ClaimDeliveries(ctx context.Context, worker string, nowMS, leaseMS int64, limit int) ([]storage.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	// Every worker polls: a read first, so that an empty outbox costs no
	// write lock.
	var one int
	err := s.rdb.QueryRowContext(ctx, `SELECT 1 FROM deliveries WHERE due_at IS NOT NULL AND due_at <= ? AND lease_until <= ? LIMIT 1`,
		nowMS, nowMS).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", classify(err))
	}
	var out []storage.Delivery
	_, err = s.write(ctx, func(tx *sql.Tx) (int64, error) {
		out = nil
		rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET lease_until = ?, leased_by = ?
			WHERE id IN (SELECT id FROM deliveries WHERE due_at IS NOT NULL AND due_at <= ? AND lease_until <= ?
				ORDER BY due_at, id LIMIT ?)
			RETURNING id`, nowMS+leaseMS, worker, nowMS, nowMS, limit)
		if err != nil {
			return 0, err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return 0, err
			}
			ids = append(ids, id)
		}
		if err := closeRows(rows, "claim deliveries"); err != nil {
			return 0, err
		}
		if len(ids) == 0 {
			return 0, nil
		}
		list, _ := json.Marshal(ids)
		rows, err = tx.QueryContext(ctx, `SELECT d.id, d.attempts,
			a.id, a.rule, a.kind, a.device, a.grp, a.ts, a.cause, a.message, a.lat, a.lng, a.created_at,
			w.id, w.url, w.grp, w.secret, w.created_at
			FROM deliveries d JOIN alerts a ON a.id = d.alert JOIN webhooks w ON w.id = d.webhook
			WHERE d.id IN (SELECT value FROM json_each(?)) ORDER BY d.due_at, d.id`, string(list))
		if err != nil {
			return 0, err
		}
		defer rows.Close()
		for rows.Next() {
			var d storage.Delivery
			a, w := &d.Alert, &d.Webhook
			if err := rows.Scan(&d.ID, &d.Attempts,
				&a.ID, &a.Rule, &a.Kind, &a.Device, &a.Group, &a.TS, &a.Cause, &a.Message, &a.Lat, &a.Lng, &a.CreatedAt,
				&w.ID, &w.URL, &w.Group, &w.Secret, &w.CreatedAt); err != nil {
				return 0, err
			}
			out = append(out, d)
		}
		return 0, rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim deliveries: %w", err)
	}
	return out, nil
}

// FinishDelivery records an attempt of a delivery and ends its lease.
func (s *Store) FinishDelivery(ctx context.Context, id string, delivered bool, errText string, retryAtMS int64) error {
	now := nowMS()
	var due, deliveredAt any
	switch {
	case delivered:
		deliveredAt = now
	case retryAtMS > 0:
		due = retryAtMS
	}
	if len(errText) > 1000 {
		errText = strings.ToValidUTF8(errText[:1000], "")
	}
	n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		return execCount(ctx, tx, `UPDATE deliveries SET attempts = attempts + 1, due_at = ?, delivered_at = ?,
			last_error = ?, lease_until = 0, leased_by = '' WHERE id = ?`, due, deliveredAt, errText, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: finish delivery %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: finish delivery %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

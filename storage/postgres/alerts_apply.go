package postgres

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// What geofences and alert rules raise, as in the SQLite store
// (storage/sqlite/alerts_apply.go). Concurrency: ApplyAlerts first makes a
// row for every key it touches (a placeholder "off since forever" where
// none is) and locks them all, in (device, key) order, FOR UPDATE; a second
// transaction with the same keys waits there and then reads the first's
// states, so a flip is applied, and its event and alerts stored, once.
// ClaimDeliveries leases with FOR UPDATE SKIP LOCKED, so concurrent claims
// never take the same delivery.

// noState is the ts of the placeholder row of a key that had no state:
// every transition is later.
const noState = math.MinInt64

type stateKey struct{ device, key string }

type state struct {
	on bool
	ts int64
}

// ApplyAlerts applies transitions and stores what flipped; see
// storage.Alerting.
func (s *Store) ApplyAlerts(ctx context.Context, ts []storage.Transition, alerts []storage.Alert) ([]storage.GeofenceEvent, []storage.Alert, error) {
	if err := storage.ValidateAlerting(ts, alerts); err != nil {
		return nil, nil, fmt.Errorf("postgres: apply alerts: %w", err)
	}
	if len(ts) == 0 && len(alerts) == 0 {
		return nil, nil, nil
	}
	sorted := slices.Clone(ts)
	slices.SortStableFunc(sorted, func(a, b storage.Transition) int { return cmp.Compare(a.TS, b.TS) })
	keys := make([]stateKey, 0, len(sorted))
	for _, t := range sorted {
		keys = append(keys, stateKey{t.Device, t.Key})
	}
	slices.SortFunc(keys, func(a, b stateKey) int {
		return cmp.Or(strings.Compare(a.device, b.device), strings.Compare(a.key, b.key))
	})
	keys = slices.Compact(keys)
	devs, ks := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		devs[i], ks[i] = k.device, k.key
	}

	now := nowMS()
	var events []storage.GeofenceEvent
	var added []storage.Alert
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		events, added = nil, nil
		states := make(map[stateKey]state, len(keys))
		if len(keys) > 0 {
			if _, err := tx.Exec(ctx, `INSERT INTO device_states (device, key, is_on, ts)
				SELECT d, k, false, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS u(d, k, n) ORDER BY n
				ON CONFLICT (device, key) DO NOTHING`, devs, ks, int64(noState)); err != nil {
				return fmt.Errorf("make states: %w", err)
			}
			rows, err := tx.Query(ctx, `SELECT s.device, s.key, s.is_on, s.ts FROM device_states s
				JOIN unnest($1::text[], $2::text[]) AS u(d, k) ON s.device = u.d AND s.key = u.k
				ORDER BY s.device, s.key FOR UPDATE OF s`, devs, ks)
			if err != nil {
				return fmt.Errorf("lock states: %w", err)
			}
			for rows.Next() {
				var k stateKey
				var st state
				if err := rows.Scan(&k.device, &k.key, &st.on, &st.ts); err != nil {
					rows.Close()
					return err
				}
				states[k] = st
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return fmt.Errorf("lock states: %w", err)
			}
		}
		changed := map[stateKey]bool{}
		var flipEvents []storage.GeofenceEvent
		var flipAlerts []storage.Alert
		for _, t := range sorted {
			k := stateKey{t.Device, t.Key}
			st := states[k]
			if t.TS <= st.ts {
				continue
			}
			states[k], changed[k] = state{t.On, t.TS}, true
			if t.On == st.on {
				continue
			}
			if t.Event != nil {
				flipEvents = append(flipEvents, *t.Event)
			}
			flipAlerts = append(flipAlerts, t.Alerts...)
		}
		var err error
		if events, err = insertEvents(ctx, tx, flipEvents); err != nil {
			return err
		}
		if added, err = insertAlerts(ctx, tx, append(flipAlerts, alerts...), now); err != nil {
			return err
		}
		if len(changed) > 0 {
			var cd, ck []string
			var con []bool
			var cts []int64
			for _, k := range keys {
				if changed[k] {
					st := states[k]
					cd, ck, con, cts = append(cd, k.device), append(ck, k.key), append(con, st.on), append(cts, st.ts)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE device_states s SET is_on = u.o, ts = u.t
				FROM unnest($1::text[], $2::text[], $3::boolean[], $4::bigint[]) AS u(d, k, o, t)
				WHERE s.device = u.d AND s.key = u.k`, cd, ck, con, cts); err != nil {
				return fmt.Errorf("write states: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: apply alerts: %w", classify(err))
	}
	return events, added, nil
}

// insertEvents stores the events whose ids are not stored yet, in one
// statement, and returns those, in order.
func insertEvents(ctx context.Context, tx pgx.Tx, evs []storage.GeofenceEvent) ([]storage.GeofenceEvent, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	n := len(evs)
	ids, devs, fences, types, locs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tss := make([]int64, n)
	lats, lngs := make([]float64, n), make([]float64, n)
	for i, e := range evs {
		ids[i], devs[i], fences[i], types[i], locs[i], tss[i], lats[i], lngs[i] = e.ID, e.Device, e.Geofence, e.Type, e.Location, e.TS, e.Lat, e.Lng
	}
	rows, err := tx.Query(ctx, `INSERT INTO geofence_events (id, device, geofence, type, ts, location, lat, lng)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::text[], $7::float8[], $8::float8[])
		ON CONFLICT (id) DO NOTHING RETURNING id`, ids, devs, fences, types, tss, locs, lats, lngs)
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store events: %w", err)
	}
	return keepFresh(evs, func(e storage.GeofenceEvent) string { return e.ID }, fresh), nil
}

// insertAlerts stores the alerts whose ids are not stored yet, with one
// delivery per webhook of each one's group and of every group, and returns
// them, in order.
func insertAlerts(ctx context.Context, tx pgx.Tx, as []storage.Alert, now int64) ([]storage.Alert, error) {
	if len(as) == 0 {
		return nil, nil
	}
	n := len(as)
	ids, rules, kinds, devs, grps, causes, msgs := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	tss, created := make([]int64, n), make([]int64, n)
	lats, lngs := make([]float64, n), make([]float64, n)
	for i := range as {
		a := &as[i]
		if a.CreatedAt == 0 {
			a.CreatedAt = now
		}
		ids[i], rules[i], kinds[i], devs[i], grps[i], causes[i], msgs[i] = a.ID, a.Rule, a.Kind, a.Device, a.Group, a.Cause, a.Message
		tss[i], created[i], lats[i], lngs[i] = a.TS, a.CreatedAt, a.Lat, a.Lng
	}
	rows, err := tx.Query(ctx, `INSERT INTO alerts (id, rule, kind, device, grp, ts, cause, message, lat, lng, created_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[], $8::text[],
			$9::float8[], $10::float8[], $11::bigint[])
		ON CONFLICT (id) DO NOTHING RETURNING id, grp`, ids, rules, kinds, devs, grps, tss, causes, msgs, lats, lngs, created)
	if err != nil {
		return nil, fmt.Errorf("store alerts: %w", err)
	}
	var freshIDs, freshGroups []string
	for rows.Next() {
		var id, grp string
		if err := rows.Scan(&id, &grp); err != nil {
			rows.Close()
			return nil, fmt.Errorf("store alerts: %w", err)
		}
		freshIDs, freshGroups = append(freshIDs, id), append(freshGroups, grp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store alerts: %w", err)
	}
	if len(freshIDs) == 0 {
		return nil, nil
	}
	if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, alert, webhook, due_at)
		SELECT n.a || ':' || w.id, n.a, w.id, $3::bigint FROM unnest($1::text[], $2::text[]) AS n(a, g)
		JOIN webhooks w ON w.grp IN (n.g, '') ON CONFLICT (id) DO NOTHING`, freshIDs, freshGroups, now); err != nil {
		return nil, fmt.Errorf("queue deliveries: %w", err)
	}
	return keepFresh(as, func(a storage.Alert) string { return a.ID }, freshIDs), nil
}

// keepFresh returns, in their order, the items whose id an INSERT ...
// RETURNING gave back (fresh), each id once: the rows that were new.
func keepFresh[T any](items []T, id func(T) string, fresh []string) []T {
	isNew := make(map[string]bool, len(fresh))
	for _, f := range fresh {
		isNew[f] = true
	}
	var out []T
	for _, it := range items {
		if k := id(it); isNew[k] {
			out = append(out, it)
			delete(isNew, k)
		}
	}
	return out
}

// GeofenceEvents returns one page of events, newest first.
func (s *Store) GeofenceEvents(ctx context.Context, q storage.EventQuery) ([]storage.GeofenceEvent, string, error) {
	return eventPage(ctx, s, q, "geofence events", `SELECT seq, id, device, geofence, type, ts, location, lat, lng FROM geofence_events`,
		func(row pgx.Row, c *storage.Cursor) (storage.GeofenceEvent, error) {
			var e storage.GeofenceEvent
			err := row.Scan(&c.Seq, &e.ID, &e.Device, &e.Geofence, &e.Type, &e.TS, &e.Location, &e.Lat, &e.Lng)
			c.TS = e.TS
			return e, err
		})
}

// Alerts returns one page of alerts, newest first.
func (s *Store) Alerts(ctx context.Context, q storage.EventQuery) ([]storage.Alert, string, error) {
	return eventPage(ctx, s, q, "alerts", `SELECT seq, id, rule, kind, device, grp, ts, cause, message, lat, lng, created_at FROM alerts`,
		func(row pgx.Row, c *storage.Cursor) (storage.Alert, error) {
			var a storage.Alert
			err := row.Scan(&c.Seq, &a.ID, &a.Rule, &a.Kind, &a.Device, &a.Group, &a.TS, &a.Cause, &a.Message, &a.Lat, &a.Lng, &a.CreatedAt)
			c.TS = a.TS
			return a, err
		})
}

// eventPage runs a newest-first page of an archive table (seq, ts and
// device columns) filtered by q.
func eventPage[T any](ctx context.Context, s *Store, q storage.EventQuery, what, sel string,
	scan func(pgx.Row, *storage.Cursor) (T, error)) ([]T, string, error) {
	limit := storage.PageLimit(q.Limit)
	var w where
	if q.Device != "" {
		w.add("device = " + w.arg(q.Device))
	}
	if q.Devices != nil {
		w.add("device = ANY(" + w.arg(validOnly(q.Devices)) + ")")
	}
	if err := w.page(q.FromMS, q.ToMS, q.Cursor); err != nil {
		return nil, "", fmt.Errorf("postgres: %s: %w", what, err)
	}
	if validText("device", q.Device) != nil {
		return []T{}, "", nil
	}
	rows, err := s.pool.Query(ctx, sel+w.sql()+pageOrder+" LIMIT "+strconv.Itoa(limit+1), w.args...)
	if err != nil {
		return nil, "", fmt.Errorf("postgres: %s: %w", what, classify(err))
	}
	defer rows.Close()
	out := []T{}
	var last storage.Cursor
	for rows.Next() {
		if len(out) == limit {
			return out, last.Encode(), nil
		}
		v, err := scan(rows, &last)
		if err != nil {
			return nil, "", fmt.Errorf("postgres: %s: %w", what, classify(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("postgres: %s: %w", what, classify(err))
	}
	return out, "", nil
}

// ClaimDeliveries leases due deliveries to worker (FOR UPDATE SKIP LOCKED).
func (s *Store) ClaimDeliveries(ctx context.Context, worker string, nowMS, leaseMS int64, limit int) ([]storage.Delivery, error) {
	if limit <= 0 {
		return nil, nil
	}
	if err := validText("worker", worker); err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %v: %w", err, storage.ErrInvalid)
	}
	var out []storage.Delivery
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `WITH c AS (
				SELECT id FROM deliveries WHERE due_at IS NOT NULL AND due_at <= $1 AND lease_until <= $1
				ORDER BY due_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)
			UPDATE deliveries d SET lease_until = $3, leased_by = $4 FROM c WHERE d.id = c.id RETURNING d.id`,
			nowMS, limit, nowMS+leaseMS, worker)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(ids) == 0 {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT d.id, d.attempts,
			a.id, a.rule, a.kind, a.device, a.grp, a.ts, a.cause, a.message, a.lat, a.lng, a.created_at,
			w.id, w.url, w.grp, w.secret, w.created_at
			FROM deliveries d JOIN alerts a ON a.id = d.alert JOIN webhooks w ON w.id = d.webhook
			WHERE d.id = ANY($1) ORDER BY d.due_at, d.id`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d storage.Delivery
			a, w := &d.Alert, &d.Webhook
			if err := rows.Scan(&d.ID, &d.Attempts,
				&a.ID, &a.Rule, &a.Kind, &a.Device, &a.Group, &a.TS, &a.Cause, &a.Message, &a.Lat, &a.Lng, &a.CreatedAt,
				&w.ID, &w.URL, &w.Group, &w.Secret, &w.CreatedAt); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim deliveries: %w", classify(err))
	}
	return out, nil
}

// FinishDelivery records an attempt of a delivery and ends its lease.
func (s *Store) FinishDelivery(ctx context.Context, id string, delivered bool, errText string, retryAtMS int64) error {
	if validText("id", id) != nil {
		return fmt.Errorf("postgres: finish delivery %q: %w", id, storage.ErrNotFound)
	}
	now := nowMS()
	var due, deliveredAt *int64
	switch {
	case delivered:
		deliveredAt = &now
	case retryAtMS > 0:
		due = &retryAtMS
	}
	if len(errText) > 1000 {
		errText = errText[:1000]
	}
	errText = strings.ToValidUTF8(strings.ReplaceAll(errText, "\x00", ""), "")
	tag, err := s.pool.Exec(ctx, `UPDATE deliveries SET attempts = attempts + 1, due_at = $1, delivered_at = $2,
		last_error = $3, lease_until = 0, leased_by = '' WHERE id = $4`, due, deliveredAt, errText, id)
	if err != nil {
		return fmt.Errorf("postgres: finish delivery %q: %w", id, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: finish delivery %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/devtrack/devtrack/storage"
)

// Geofences, alert rules and webhooks behave exactly as in the SQLite store
// (storage/sqlite/alerts.go), in the tables of 00006; what they raise is in
// alerts_apply.go.

var _ storage.Alerting = (*Store)(nil)

const geofenceColumns = `id, name, grp, kind, lat, lng, radius_m, ring, created_at, updated_at`

// CreateGeofence stores a new geofence; see storage.Alerting.
func (s *Store) CreateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error) {
	if g.ID == "" {
		g.ID = storage.NewAlertingID()
	}
	if err := storage.ValidateGeofence(g); err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: create geofence: %w", err)
	}
	if g.CreatedAt == 0 {
		g.CreatedAt = nowMS()
	}
	g.UpdatedAt = g.CreatedAt
	_, err := s.pool.Exec(ctx, `INSERT INTO geofences (`+geofenceColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		g.ID, g.Name, g.Group, g.Kind, g.Lat, g.Lng, g.RadiusM, ringJSON(g), g.CreatedAt, g.UpdatedAt)
	if pgCode(err) == codeUniqueViolation {
		return storage.Geofence{}, fmt.Errorf("postgres: create geofence %q: %w", g.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: create geofence %q: %w", g.ID, classify(err))
	}
	return g, nil
}

// UpdateGeofence replaces the name and shape of a geofence; its group and
// creation time stay.
func (s *Store) UpdateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error) {
	old, err := s.Geofence(ctx, g.ID)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: update geofence: %w", err)
	}
	g.Group, g.CreatedAt = old.Group, old.CreatedAt
	if err := storage.ValidateGeofence(g); err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: update geofence: %w", err)
	}
	g.UpdatedAt = max(nowMS(), old.UpdatedAt+1)
	tag, err := s.pool.Exec(ctx, `UPDATE geofences SET name = $1, kind = $2, lat = $3, lng = $4, radius_m = $5, ring = $6,
		updated_at = $7 WHERE id = $8`, g.Name, g.Kind, g.Lat, g.Lng, g.RadiusM, ringJSON(g), g.UpdatedAt, g.ID)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: update geofence %q: %w", g.ID, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return storage.Geofence{}, fmt.Errorf("postgres: update geofence %q: %w", g.ID, storage.ErrNotFound)
	}
	return g, nil
}

// DeleteGeofence deletes a geofence, its rules and the devices' states
// under it, in one transaction.
func (s *Store) DeleteGeofence(ctx context.Context, id string) error {
	if validText("id", id) != nil {
		return fmt.Errorf("postgres: delete geofence %q: %w", id, storage.ErrNotFound)
	}
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM device_states WHERE key = $1`, "geofence:"+id); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE geofence = $1`, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM geofences WHERE id = $1`, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete geofence %q: %w", id, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("postgres: delete geofence %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// Geofence returns one geofence.
func (s *Store) Geofence(ctx context.Context, id string) (storage.Geofence, error) {
	if validText("id", id) != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: geofence %q: %w", id, storage.ErrNotFound)
	}
	g, err := scanGeofence(s.pool.QueryRow(ctx, `SELECT `+geofenceColumns+` FROM geofences WHERE id = $1`, id))
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("postgres: geofence %q: %w", id, notFound(err))
	}
	return g, nil
}

// Geofences lists geofences ordered by id, of the groups when not nil.
func (s *Store) Geofences(ctx context.Context, groups []string) ([]storage.Geofence, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+geofenceColumns+` FROM geofences`+groupFilter(groups)+` ORDER BY id`, groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: geofences: %w", classify(err))
	}
	return collect(rows, "geofences", scanGeofence)
}

func ringJSON(g storage.Geofence) []byte {
	if g.Kind != storage.GeofencePolygon {
		return nil
	}
	b, _ := json.Marshal(g.Ring)
	return b
}

func scanGeofence(row pgx.Row) (storage.Geofence, error) {
	var g storage.Geofence
	var ring []byte
	if err := row.Scan(&g.ID, &g.Name, &g.Group, &g.Kind, &g.Lat, &g.Lng, &g.RadiusM, &ring, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return storage.Geofence{}, err
	}
	if ring != nil {
		if err := json.Unmarshal(ring, &g.Ring); err != nil {
			return storage.Geofence{}, fmt.Errorf("geofence %q: ring: %w", g.ID, err)
		}
	}
	return g, nil
}

const ruleColumns = `id, name, grp, kind, coalesce(geofence, ''), offline_minutes, speed_kmh, level, text, created_at`

// CreateAlertRule stores a new rule; a geofence rule's geofence must exist
// in the rule's group (ErrInvalid otherwise).
func (s *Store) CreateAlertRule(ctx context.Context, r storage.AlertRule) (storage.AlertRule, error) {
	if r.ID == "" {
		r.ID = storage.NewAlertingID()
	}
	if err := storage.ValidateAlertRule(r); err != nil {
		return storage.AlertRule{}, fmt.Errorf("postgres: create alert rule: %w", err)
	}
	if r.CreatedAt == 0 {
		r.CreatedAt = nowMS()
	}
	var geofence *string
	if r.Geofence != "" {
		geofence = &r.Geofence
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if r.Geofence != "" {
			// FOR SHARE: the geofence cannot be deleted before the rule is in.
			var grp string
			err := tx.QueryRow(ctx, `SELECT grp FROM geofences WHERE id = $1 FOR SHARE`, r.Geofence).Scan(&grp)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && grp != r.Group) {
				return fmt.Errorf("geofence %q is not one of group %q: %w", r.Geofence, r.Group, storage.ErrInvalid)
			}
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO alert_rules (id, name, grp, kind, geofence, offline_minutes, speed_kmh, level, text, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, r.ID, r.Name, r.Group, r.Kind, geofence, r.OfflineMinutes, r.SpeedKMH, r.Level, r.Text, r.CreatedAt)
		return err
	})
	if pgCode(err) == codeUniqueViolation {
		return storage.AlertRule{}, fmt.Errorf("postgres: create alert rule %q: %w", r.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.AlertRule{}, fmt.Errorf("postgres: create alert rule %q: %w", r.ID, classify(err))
	}
	return r, nil
}

// DeleteAlertRule deletes a rule and the devices' states under it.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	if validText("id", id) != nil {
		return fmt.Errorf("postgres: delete alert rule %q: %w", id, storage.ErrNotFound)
	}
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM device_states WHERE key IN ($1, $2)`, "speed:"+id, "offline:"+id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE id = $1`, id)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete alert rule %q: %w", id, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("postgres: delete alert rule %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// AlertRule returns one rule.
func (s *Store) AlertRule(ctx context.Context, id string) (storage.AlertRule, error) {
	if validText("id", id) != nil {
		return storage.AlertRule{}, fmt.Errorf("postgres: alert rule %q: %w", id, storage.ErrNotFound)
	}
	r, err := scanRule(s.pool.QueryRow(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE id = $1`, id))
	if err != nil {
		return storage.AlertRule{}, fmt.Errorf("postgres: alert rule %q: %w", id, notFound(err))
	}
	return r, nil
}

// AlertRules lists rules ordered by id, of the groups when not nil.
func (s *Store) AlertRules(ctx context.Context, groups []string) ([]storage.AlertRule, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+ruleColumns+` FROM alert_rules`+groupFilter(groups)+` ORDER BY id`, groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: alert rules: %w", classify(err))
	}
	return collect(rows, "alert rules", scanRule)
}

func scanRule(row pgx.Row) (storage.AlertRule, error) {
	var r storage.AlertRule
	err := row.Scan(&r.ID, &r.Name, &r.Group, &r.Kind, &r.Geofence, &r.OfflineMinutes, &r.SpeedKMH, &r.Level, &r.Text, &r.CreatedAt)
	return r, err
}

const webhookColumns = `id, url, grp, secret, created_at`

// CreateWebhook stores a new webhook.
func (s *Store) CreateWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error) {
	if w.ID == "" {
		w.ID = storage.NewAlertingID()
	}
	if err := storage.ValidateWebhook(w); err != nil {
		return storage.Webhook{}, fmt.Errorf("postgres: create webhook: %w", err)
	}
	if w.CreatedAt == 0 {
		w.CreatedAt = nowMS()
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES ($1, $2, $3, $4, $5)`,
		w.ID, w.URL, w.Group, w.Secret, w.CreatedAt)
	if pgCode(err) == codeUniqueViolation {
		return storage.Webhook{}, fmt.Errorf("postgres: create webhook %q: %w", w.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Webhook{}, fmt.Errorf("postgres: create webhook %q: %w", w.ID, classify(err))
	}
	return w, nil
}

// DeleteWebhook deletes a webhook and its deliveries still to make.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	if validText("id", id) != nil {
		return fmt.Errorf("postgres: delete webhook %q: %w", id, storage.ErrNotFound)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete webhook %q: %w", id, classify(err))
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: delete webhook %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// Webhooks lists webhooks ordered by id; a webhook of every group ("") only
// for nil groups.
func (s *Store) Webhooks(ctx context.Context, groups []string) ([]storage.Webhook, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+webhookColumns+` FROM webhooks`+groupFilter(groups)+` ORDER BY id`, groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("postgres: webhooks: %w", classify(err))
	}
	return collect(rows, "webhooks", func(row pgx.Row) (storage.Webhook, error) {
		var w storage.Webhook
		err := row.Scan(&w.ID, &w.URL, &w.Group, &w.Secret, &w.CreatedAt)
		return w, err
	})
}

// groupFilter is the WHERE clause of a list restricted to groups ($1,
// groupArgs), or nothing for nil.
func groupFilter(groups []string) string {
	if groups == nil {
		return ""
	}
	return ` WHERE grp = ANY($1)`
}

func groupArgs(groups []string) []any {
	if groups == nil {
		return nil
	}
	return []any{validOnly(groups)}
}

// collect scans every row with scan and closes rows.
func collect[T any](rows pgx.Rows, what string, scan func(pgx.Row) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: %s: %w", what, classify(err))
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: %s: %w", what, classify(err))
	}
	return out, nil
}

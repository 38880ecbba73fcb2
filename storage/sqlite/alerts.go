package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// Geofences, alert rules and webhooks (migration 0009); what they raise is
// in alerts_apply.go.

var _ storage.Alerting = (*Store)(nil)

const geofenceColumns = `id, name, grp, kind, lat, lng, radius_m, ring, created_at, updated_at`

// CreateGeofence stores a new geofence; see storage.Alerting.
func (s *Store) CreateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error) {
	if g.ID == "" {
		g.ID = storage.NewAlertingID()
	}
	if err := storage.ValidateGeofence(g); err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: create geofence: %w", err)
	}
	if g.CreatedAt == 0 {
		g.CreatedAt = nowMS()
	}
	g.UpdatedAt = g.CreatedAt
	ring, err := ringJSON(g)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: create geofence %q: %w", g.ID, err)
	}
	_, err = s.wdb.ExecContext(ctx, `INSERT INTO geofences (`+geofenceColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.Name, g.Group, g.Kind, g.Lat, g.Lng, g.RadiusM, ring, g.CreatedAt, g.UpdatedAt)
	if isConstraint(err) {
		return storage.Geofence{}, fmt.Errorf("sqlite: create geofence %q: %w", g.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: create geofence %q: %w", g.ID, classify(err))
	}
	return g, nil
}

// UpdateGeofence replaces the name and shape of a geofence; its group and
// creation time stay.
func (s *Store) UpdateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error) {
	old, err := s.Geofence(ctx, g.ID)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: update geofence: %w", err)
	}
	g.Group, g.CreatedAt = old.Group, old.CreatedAt
	if err := storage.ValidateGeofence(g); err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: update geofence: %w", err)
	}
	g.UpdatedAt = max(nowMS(), old.UpdatedAt+1)
	ring, err := ringJSON(g)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: update geofence %q: %w", g.ID, err)
	}
	res, err := s.wdb.ExecContext(ctx, `UPDATE geofences SET name = ?, kind = ?, lat = ?, lng = ?, radius_m = ?, ring = ?,
		updated_at = ? WHERE id = ?`, g.Name, g.Kind, g.Lat, g.Lng, g.RadiusM, ring, g.UpdatedAt, g.ID)
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: update geofence %q: %w", g.ID, classify(err))
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return storage.Geofence{}, fmt.Errorf("sqlite: update geofence %q: %w", g.ID, storage.ErrNotFound)
	}
	return g, nil
}

// DeleteGeofence deletes a geofence, its rules and the devices' states
// under it, in one transaction.
func (s *Store) DeleteGeofence(ctx context.Context, id string) error {
	n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_states WHERE key = ?`, "geofence:"+id); err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM alert_rules WHERE geofence = ?`, id); err != nil {
			return 0, err
		}
		return execCount(ctx, tx, `DELETE FROM geofences WHERE id = ?`, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete geofence %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete geofence %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// Geofence returns one geofence.
func (s *Store) Geofence(ctx context.Context, id string) (storage.Geofence, error) {
	g, err := scanGeofence(s.rdb.QueryRowContext(ctx, `SELECT `+geofenceColumns+` FROM geofences WHERE id = ?`, id))
	if err != nil {
		return storage.Geofence{}, fmt.Errorf("sqlite: geofence %q: %w", id, notFound(err))
	}
	return g, nil
}

// Geofences lists geofences ordered by id, of the groups when not nil.
func (s *Store) Geofences(ctx context.Context, groups []string) ([]storage.Geofence, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+geofenceColumns+` FROM geofences`+groupFilter(groups)+` ORDER BY id`,
		groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: geofences: %w", err)
	}
	return collect(rows, "geofences", scanGeofence)
}

func ringJSON(g storage.Geofence) (any, error) {
	if g.Kind != storage.GeofencePolygon {
		return nil, nil
	}
	b, err := json.Marshal(g.Ring)
	return string(b), err
}

func scanGeofence(row scanner) (storage.Geofence, error) {
	var g storage.Geofence
	var ring sql.NullString
	if err := row.Scan(&g.ID, &g.Name, &g.Group, &g.Kind, &g.Lat, &g.Lng, &g.RadiusM, &ring, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return storage.Geofence{}, err
	}
	if ring.Valid {
		if err := json.Unmarshal([]byte(ring.String), &g.Ring); err != nil {
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
		return storage.AlertRule{}, fmt.Errorf("sqlite: create alert rule: %w", err)
	}
	if r.CreatedAt == 0 {
		r.CreatedAt = nowMS()
	}
	var geofence any
	if r.Geofence != "" {
		geofence = r.Geofence
	}
	_, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		if r.Geofence != "" {
			var grp string
			err := tx.QueryRowContext(ctx, `SELECT grp FROM geofences WHERE id = ?`, r.Geofence).Scan(&grp)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && grp != r.Group) {
				return 0, fmt.Errorf("geofence %q is not one of group %q: %w", r.Geofence, r.Group, storage.ErrInvalid)
			}
			if err != nil {
				return 0, err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO alert_rules (id, name, grp, kind, geofence, offline_minutes, speed_kmh, level, text, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Name, r.Group, r.Kind, geofence, r.OfflineMinutes, r.SpeedKMH, r.Level, r.Text, r.CreatedAt)
		if isConstraint(err) {
			return 0, storage.ErrExists
		}
		return 0, err
	})
	if err != nil {
		return storage.AlertRule{}, fmt.Errorf("sqlite: create alert rule %q: %w", r.ID, err)
	}
	return r, nil
}

// DeleteAlertRule deletes a rule and the devices' states under it.
func (s *Store) DeleteAlertRule(ctx context.Context, id string) error {
	n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM device_states WHERE key IN (?, ?)`, "speed:"+id, "offline:"+id); err != nil {
			return 0, err
		}
		return execCount(ctx, tx, `DELETE FROM alert_rules WHERE id = ?`, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete alert rule %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete alert rule %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// AlertRule returns one rule.
func (s *Store) AlertRule(ctx context.Context, id string) (storage.AlertRule, error) {
	r, err := scanRule(s.rdb.QueryRowContext(ctx, `SELECT `+ruleColumns+` FROM alert_rules WHERE id = ?`, id))
	if err != nil {
		return storage.AlertRule{}, fmt.Errorf("sqlite: alert rule %q: %w", id, notFound(err))
	}
	return r, nil
}

// AlertRules lists rules ordered by id, of the groups when not nil.
func (s *Store) AlertRules(ctx context.Context, groups []string) ([]storage.AlertRule, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+ruleColumns+` FROM alert_rules`+groupFilter(groups)+` ORDER BY id`,
		groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: alert rules: %w", err)
	}
	return collect(rows, "alert rules", scanRule)
}

func scanRule(row scanner) (storage.AlertRule, error) {
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
		return storage.Webhook{}, fmt.Errorf("sqlite: create webhook: %w", err)
	}
	if w.CreatedAt == 0 {
		w.CreatedAt = nowMS()
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO webhooks (`+webhookColumns+`) VALUES (?, ?, ?, ?, ?)`,
		w.ID, w.URL, w.Group, w.Secret, w.CreatedAt)
	if isConstraint(err) {
		return storage.Webhook{}, fmt.Errorf("sqlite: create webhook %q: %w", w.ID, storage.ErrExists)
	}
	if err != nil {
		return storage.Webhook{}, fmt.Errorf("sqlite: create webhook %q: %w", w.ID, classify(err))
	}
	return w, nil
}

// DeleteWebhook deletes a webhook and its deliveries still to make.
func (s *Store) DeleteWebhook(ctx context.Context, id string) error {
	n, err := s.write(ctx, func(tx *sql.Tx) (int64, error) {
		return execCount(ctx, tx, `DELETE FROM webhooks WHERE id = ?`, id)
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete webhook %q: %w", id, err)
	}
	if n == 0 {
		return fmt.Errorf("sqlite: delete webhook %q: %w", id, storage.ErrNotFound)
	}
	return nil
}

// Webhooks lists webhooks ordered by id; a webhook of every group ("") only
// for nil groups.
func (s *Store) Webhooks(ctx context.Context, groups []string) ([]storage.Webhook, error) {
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+webhookColumns+` FROM webhooks`+groupFilter(groups)+` ORDER BY id`,
		groupArgs(groups)...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: webhooks: %w", err)
	}
	return collect(rows, "webhooks", func(row scanner) (storage.Webhook, error) {
		var w storage.Webhook
		err := row.Scan(&w.ID, &w.URL, &w.Group, &w.Secret, &w.CreatedAt)
		return w, err
	})
}

// groupFilter is the WHERE clause of a list restricted to groups (one JSON
// parameter, groupArgs), or nothing for nil.
func groupFilter(groups []string) string {
	if groups == nil {
		return ""
	}
	return ` WHERE grp IN (SELECT value FROM json_each(?))`
}

func groupArgs(groups []string) []any {
	if groups == nil {
		return nil
	}
	b, _ := json.Marshal(groups)
	return []any{string(b)}
}

// collect scans every row with scan and closes rows.
func collect[T any](rows *sql.Rows, what string, scan func(scanner) (T, error)) ([]T, error) {
	defer rows.Close()
	out := []T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", what, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return out, nil
}

package wsgateway

// Geofences, alert rules, webhooks and what they raised (README, Geofences
// and alerts):
//
//   GET    /api/v1/geofences                 -> {"items":[geofence...]}
//   POST   /api/v1/geofences                 {"name","group","kind","lat","lng","radius_m"|"ring"} -> 201 geofence
//   GET    /api/v1/geofences/{id}            -> geofence
//   PUT    /api/v1/geofences/{id}            {"name","kind",shape...} -> geofence (the group stays)
//   DELETE /api/v1/geofences/{id}            -> 204 (its rules go with it)
//   GET    /api/v1/alert-rules               -> {"items":[rule...]}
//   POST   /api/v1/alert-rules               {"name","group","kind",...} -> 201 rule
//   DELETE /api/v1/alert-rules/{id}          -> 204
//   GET    /api/v1/webhooks                  -> {"items":[webhook...]} (admins; never the secret)
//   POST   /api/v1/webhooks                  {"url","group","secret"} -> 201 webhook with its secret, shown once
//   DELETE /api/v1/webhooks/{id}             -> 204 (admins)
//   GET    /api/v1/alerts?device=&from=&to=&limit=&cursor=           newest first
//   GET    /api/v1/geofence-events?device=&from=&to=&limit=&cursor=  newest first
//
// Who may do what, as everywhere in the API: an admin sees and edits every
// geofence and rule; an operator those of their groups only, and sees the
// alerts and events of the devices of their groups. Webhooks carry every
// alert of a group (or of all) to another system and are the admins'.
//
// The store keeps these through its Alerting part (storage.Alerting); a
// store without it gets 501 here, as device enrolment does (enrol.go).

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// AlertStore is what the alerts API reads and writes in the store.
type AlertStore interface {
	CreateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error)
	UpdateGeofence(ctx context.Context, g storage.Geofence) (storage.Geofence, error)
	DeleteGeofence(ctx context.Context, id string) error
	Geofence(ctx context.Context, id string) (storage.Geofence, error)
	Geofences(ctx context.Context, groups []string) ([]storage.Geofence, error)
	CreateAlertRule(ctx context.Context, r storage.AlertRule) (storage.AlertRule, error)
	DeleteAlertRule(ctx context.Context, id string) error
	AlertRule(ctx context.Context, id string) (storage.AlertRule, error)
	AlertRules(ctx context.Context, groups []string) ([]storage.AlertRule, error)
	CreateWebhook(ctx context.Context, w storage.Webhook) (storage.Webhook, error)
	DeleteWebhook(ctx context.Context, id string) error
	Webhooks(ctx context.Context, groups []string) ([]storage.Webhook, error)
	GeofenceEvents(ctx context.Context, q storage.EventQuery) ([]storage.GeofenceEvent, string, error)
	Alerts(ctx context.Context, q storage.EventQuery) ([]storage.Alert, string, error)
}

const (
	// maxGeofenceBody caps a geofence body: a polygon of a few thousand
	// points (the store takes at most storage's MaxGeofencePoints).
	maxGeofenceBody = 512 << 10
	// webhookSecretPrefix marks a generated webhook signing secret.
	webhookSecretPrefix = "dtwh_"
	// minWebhookSecret is the shortest secret a client may choose: a
	// signature keyed with less is guessable.
	minWebhookSecret = 16
)

// alertRoutes registers the geofence and alert endpoints on m.
func (g *Gateway) alertRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/geofences", g.api(g.listGeofences))
	m.HandleFunc("POST /api/v1/geofences", g.api(g.createGeofence))
	m.HandleFunc("GET /api/v1/geofences/{id}", g.api(g.getGeofence))
	m.HandleFunc("PUT /api/v1/geofences/{id}", g.api(g.updateGeofence))
	m.HandleFunc("DELETE /api/v1/geofences/{id}", g.api(g.deleteGeofence))
	m.HandleFunc("GET /api/v1/alert-rules", g.api(g.listAlertRules))
	m.HandleFunc("POST /api/v1/alert-rules", g.api(g.createAlertRule))
	m.HandleFunc("DELETE /api/v1/alert-rules/{id}", g.api(g.deleteAlertRule))
	m.HandleFunc("GET /api/v1/webhooks", g.api(adminOnly(g.listWebhooks)))
	m.HandleFunc("POST /api/v1/webhooks", g.api(adminOnly(g.createWebhook)))
	m.HandleFunc("DELETE /api/v1/webhooks/{id}", g.api(adminOnly(g.deleteWebhook)))
	m.HandleFunc("GET /api/v1/alerts", g.api(g.listAlerts))
	m.HandleFunc("GET /api/v1/geofence-events", g.api(g.listGeofenceEvents))
}

// alerting returns the store as an AlertStore, or the error to answer.
func (g *Gateway) alerting() (AlertStore, error) {
	as, ok := g.store.(AlertStore)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, protocol.CodeInternal, "this gateway's store cannot keep geofences and alerts"}
	}
	return as, nil
}

// storeError turns the store's refusals into the API's: ErrInvalid is the
// client's 400 (the store validates every record alike, storage's
// Validate*), ErrExists a 409, ErrNotFound a 404 naming what.
func storeError(err error, what string) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrInvalid):
		return badRequest(err.Error())
	case errors.Is(err, storage.ErrExists):
		return &httpError{http.StatusConflict, "exists", what + " already exists"}
	case errors.Is(err, storage.ErrNotFound):
		return notFound("no " + what)
	}
	return err
}

// mayEditGroup reports whether u may see and edit the items of group.
func mayEditGroup(u storage.User, group string) bool {
	return u.Role == storage.RoleAdmin || slices.Contains(u.Groups, group)
}

// groupAllowed refuses a group the user may not use: 400 for none, 403 for
// another's.
func groupAllowed(u storage.User, group string) error {
	if group == "" {
		return badRequest("group is required")
	}
	if !mayEditGroup(u, group) {
		return forbidden("group " + strconv.Quote(group) + " is not one of yours")
	}
	return nil
}

// decodeJSON reads a JSON object body of at most limit bytes into v,
// refusing unknown fields.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64, shape string) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("body must be " + shape + ": " + err.Error())
	}
	return nil
}

func writeItems[T any](w http.ResponseWriter, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
}

// geofenceBody is the body of POST and PUT /api/v1/geofences.
type geofenceBody struct {
	Name    string       `json:"name"`
	Group   string       `json:"group"`
	Kind    string       `json:"kind"`
	Lat     float64      `json:"lat"`
	Lng     float64      `json:"lng"`
	RadiusM float64      `json:"radius_m"`
	Ring    [][2]float64 `json:"ring"`
}

const geofenceShape = `{"name":...,"group":...,"kind":"circle","lat":...,"lng":...,"radius_m":...} or {...,"kind":"polygon","ring":[[lng,lat],...]}`

func (b geofenceBody) geofence() (storage.Geofence, error) {
	gf := storage.Geofence{Name: b.Name, Group: b.Group, Kind: b.Kind}
	switch b.Kind {
	case storage.GeofenceCircle:
		gf.Lat, gf.Lng, gf.RadiusM = b.Lat, b.Lng, b.RadiusM
	case storage.GeofencePolygon:
		gf.Ring = b.Ring
	default:
		return gf, badRequest("kind must be circle or polygon")
	}
	return gf, nil
}

func (g *Gateway) listGeofences(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return listAll(g, w, r, func(as AlertStore, ctx context.Context) ([]storage.Geofence, error) {
		return as.Geofences(ctx, groupsOf(u))
	})
}

func (g *Gateway) createGeofence(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	var b geofenceBody
	if err := decodeJSON(w, r, &b, maxGeofenceBody, geofenceShape); err != nil {
		return err
	}
	if err := groupAllowed(u, b.Group); err != nil {
		return err
	}
	gf, err := b.geofence()
	if err != nil {
		return err
	}
	gf, err = as.CreateGeofence(r.Context(), gf)
	if err := storeError(err, "geofence"); err != nil {
		return err
	}
	g.log.Info("geofence created", zap.String("geofence", gf.ID), zap.String("group", gf.Group), zap.String("user", u.Name))
	writeJSON(w, http.StatusCreated, gf)
	return nil
}

// visibleGeofence loads a geofence the user may see: 404 if unknown, 403 if
// of another group.
func (g *Gateway) visibleGeofence(ctx context.Context, as AlertStore, u storage.User, id string) (storage.Geofence, error) {
	gf, err := as.Geofence(ctx, id)
	if err != nil {
		return gf, storeError(err, "geofence "+strconv.Quote(id))
	}
	if !mayEditGroup(u, gf.Group) {
		return gf, forbidden("geofence " + strconv.Quote(id) + " is not in your groups")
	}
	return gf, nil
}

func (g *Gateway) getGeofence(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	gf, err := g.visibleGeofence(r.Context(), as, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, gf)
	return nil
}

// updateGeofence replaces a geofence's name and shape. Its group stays: a
// body that names another group is refused rather than half applied.
func (g *Gateway) updateGeofence(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	old, err := g.visibleGeofence(r.Context(), as, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	var b geofenceBody
	if err := decodeJSON(w, r, &b, maxGeofenceBody, geofenceShape); err != nil {
		return err
	}
	if b.Group != "" && b.Group != old.Group {
		return badRequest("a geofence's group cannot change (delete it and draw it in the other group)")
	}
	b.Group = old.Group
	gf, err := b.geofence()
	if err != nil {
		return err
	}
	gf.ID = old.ID
	gf, err = as.UpdateGeofence(r.Context(), gf)
	if err := storeError(err, "geofence "+strconv.Quote(old.ID)); err != nil {
		return err
	}
	g.log.Info("geofence updated", zap.String("geofence", gf.ID), zap.String("user", u.Name))
	writeJSON(w, http.StatusOK, gf)
	return nil
}

func (g *Gateway) deleteGeofence(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	gf, err := g.visibleGeofence(r.Context(), as, u, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := storeError(as.DeleteGeofence(r.Context(), gf.ID), "geofence "+strconv.Quote(gf.ID)); err != nil {
		return err
	}
	g.log.Info("geofence deleted", zap.String("geofence", gf.ID), zap.String("user", u.Name))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) listAlertRules(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return listAll(g, w, r, func(as AlertStore, ctx context.Context) ([]storage.AlertRule, error) {
		return as.AlertRules(ctx, groupsOf(u))
	})
}

// createAlertRule stores a rule. A geofence rule belongs to its geofence's
// group: the group may be left out, and may not differ.
func (g *Gateway) createAlertRule(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	var b struct {
		Name           string  `json:"name"`
		Group          string  `json:"group"`
		Kind           string  `json:"kind"`
		Geofence       string  `json:"geofence"`
		OfflineMinutes int     `json:"offline_minutes"`
		SpeedKMH       float64 `json:"speed_kmh"`
		Level          string  `json:"level"`
		Text           string  `json:"text"`
	}
	if err := decodeJSON(w, r, &b, 16<<10, `{"name":...,"group":...,"kind":...,"geofence"|"offline_minutes"|"speed_kmh"|"level","text":...}`); err != nil {
		return err
	}
	rule := storage.AlertRule{Name: b.Name, Group: b.Group, Kind: b.Kind, Geofence: b.Geofence,
		OfflineMinutes: b.OfflineMinutes, SpeedKMH: b.SpeedKMH, Level: b.Level, Text: b.Text}
	switch b.Kind {
	case storage.RuleGeofenceEnter, storage.RuleGeofenceExit:
		if b.Geofence == "" {
			return badRequest("a " + b.Kind + " rule needs a geofence")
		}
		gf, err := g.visibleGeofence(r.Context(), as, u, b.Geofence)
		if err != nil {
			return err
		}
		if b.Group != "" && b.Group != gf.Group {
			return badRequest("geofence " + strconv.Quote(gf.ID) + " is of group " + strconv.Quote(gf.Group) + ", not " + strconv.Quote(b.Group))
		}
		rule.Group = gf.Group
	case storage.RuleOffline, storage.RuleSpeed, storage.RuleLog:
		if err := groupAllowed(u, b.Group); err != nil {
			return err
		}
	default:
		return badRequest("kind must be one of " + storage.RuleGeofenceEnter + ", " + storage.RuleGeofenceExit + ", " +
			storage.RuleOffline + ", " + storage.RuleSpeed + ", " + storage.RuleLog)
	}
	rule, err = as.CreateAlertRule(r.Context(), rule)
	if err := storeError(err, "alert rule"); err != nil {
		return err
	}
	g.log.Info("alert rule created", zap.String("rule", rule.ID), zap.String("kind", rule.Kind),
		zap.String("group", rule.Group), zap.String("user", u.Name))
	writeJSON(w, http.StatusCreated, rule)
	return nil
}

func (g *Gateway) deleteAlertRule(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	rule, err := as.AlertRule(r.Context(), id)
	if err != nil {
		return storeError(err, "alert rule "+strconv.Quote(id))
	}
	if !mayEditGroup(u, rule.Group) {
		return forbidden("alert rule " + strconv.Quote(id) + " is not in your groups")
	}
	if err := storeError(as.DeleteAlertRule(r.Context(), id), "alert rule "+strconv.Quote(id)); err != nil {
		return err
	}
	g.log.Info("alert rule deleted", zap.String("rule", id), zap.String("user", u.Name))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// webhookView is a webhook in the API; Secret only in the answer to its
// creation.
type webhookView struct {
	storage.Webhook
	Secret string `json:"secret,omitempty"`
}

func (g *Gateway) listWebhooks(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	return listAll(g, w, r, func(as AlertStore, ctx context.Context) ([]storage.Webhook, error) { return as.Webhooks(ctx, nil) }) // storage.Webhook never encodes its secret
}

// createWebhook stores a webhook; the secret that signs its deliveries is
// the client's (at least 16 bytes) or generated, and answered this once.
func (g *Gateway) createWebhook(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	var b struct {
		URL    string `json:"url"`
		Group  string `json:"group"`
		Secret string `json:"secret"`
	}
	if err := decodeJSON(w, r, &b, 16<<10, `{"url":...,"group":...,"secret":...}`); err != nil {
		return err
	}
	if b.URL == "" {
		return badRequest("url is required")
	}
	if b.Secret == "" {
		b.Secret = token.New(webhookSecretPrefix)
	} else if len(b.Secret) < minWebhookSecret {
		return badRequest("secret must be at least " + strconv.Itoa(minWebhookSecret) + " bytes (or left out to have one made)")
	}
	wh, err := as.CreateWebhook(r.Context(), storage.Webhook{URL: b.URL, Group: b.Group, Secret: b.Secret})
	if err := storeError(err, "webhook"); err != nil {
		return err
	}
	// The URL may carry credentials of the receiver: not logged.
	g.log.Info("webhook created", zap.String("webhook", wh.ID), zap.String("group", wh.Group), zap.String("user", u.Name))
	writeJSON(w, http.StatusCreated, webhookView{Webhook: wh, Secret: b.Secret})
	return nil
}

func (g *Gateway) deleteWebhook(w http.ResponseWriter, r *http.Request, u storage.User) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := storeError(as.DeleteWebhook(r.Context(), id), "webhook "+strconv.Quote(id)); err != nil {
		return err
	}
	g.log.Info("webhook deleted", zap.String("webhook", id), zap.String("user", u.Name))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// eventQuery reads the filters of the alerts and events lists and applies
// the user's visibility, as logQuery does: an operator's query is
// restricted to the devices of their groups.
func (g *Gateway) eventQuery(r *http.Request, u storage.User) (storage.EventQuery, error) {
	var q storage.EventQuery
	var err error
	if q.Limit, q.Cursor, err = page(r); err != nil {
		return q, err
	}
	if q.FromMS, q.ToMS, err = timeRange(r); err != nil {
		return q, err
	}
	if dev := r.URL.Query().Get("device"); dev != "" {
		if _, err := g.visibleDevice(r.Context(), u, dev); err != nil {
			return q, err
		}
		q.Device = dev
	}
	if u.Role != storage.RoleAdmin && q.Device == "" {
		devs, err := g.store.Devices(r.Context(), groupsOf(u))
		if err != nil {
			return q, err
		}
		q.Devices = make([]string, 0, len(devs))
		for _, d := range devs {
			q.Devices = append(q.Devices, d.ID)
		}
	}
	return q, nil
}

func (g *Gateway) listAlerts(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return listEvents(g, w, r, u, AlertStore.Alerts)
}

func (g *Gateway) listGeofenceEvents(w http.ResponseWriter, r *http.Request, u storage.User) error {
	return listEvents(g, w, r, u, AlertStore.GeofenceEvents)
}

// listAll answers every item that list reads (geofences, rules, webhooks).
func listAll[T any](g *Gateway, w http.ResponseWriter, r *http.Request, list func(AlertStore, context.Context) ([]T, error)) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	items, err := list(as, r.Context())
	if err != nil {
		return err
	}
	writeItems(w, items)
	return nil
}

// listEvents answers one page of what page reads (alerts or geofence
// events) for the request's query and the user's visible devices.
func listEvents[T any](g *Gateway, w http.ResponseWriter, r *http.Request, u storage.User,
	page func(AlertStore, context.Context, storage.EventQuery) ([]T, string, error)) error {
	as, err := g.alerting()
	if err != nil {
		return err
	}
	q, err := g.eventQuery(r, u)
	if err != nil {
		return err
	}
	items, next, err := page(as, r.Context(), q)
	if err != nil {
		return err
	}
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

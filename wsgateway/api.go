package wsgateway

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// httpError is an API failure with its status and contract code.
type httpError struct {
	status int
	code   string
	msg    string
}

func (e *httpError) Error() string { return e.msg }

func badRequest(msg string) error {
	return &httpError{http.StatusBadRequest, protocol.CodeBadRequest, msg}
}
func forbidden(msg string) error {
	return &httpError{http.StatusForbidden, protocol.CodeForbidden, msg}
}

// unavailable is a Redis failure: 503, retry later.
func unavailable(err error) error {
	return &httpError{http.StatusServiceUnavailable, protocol.CodeUnavailable, "redis: " + err.Error()}
}

func notFound(msg string) error { return &httpError{http.StatusNotFound, protocol.CodeNotFound, msg} }

// apiHandler serves an authenticated API call.
type apiHandler func(w http.ResponseWriter, r *http.Request, u storage.User) error

// api authenticates the user (401 otherwise) and turns the handler's error
// into the contract's error JSON.
func (g *Gateway) api(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := g.authUser(r)
		if err == nil {
			err = h(w, r, u)
		}
		if err == nil {
			return
		}
		var he *httpError
		switch {
		case errors.As(err, &he):
			writeError(w, he.status, he.code, he.msg)
		case errors.Is(err, storage.ErrBadCursor):
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, "bad cursor")
		case errors.Is(err, storage.ErrBadQuery):
			writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, err.Error())
		case errors.Is(err, storage.ErrNotFound):
			writeError(w, http.StatusNotFound, protocol.CodeNotFound, "not found")
		default:
			g.log.Error("api", zap.String("path", r.URL.Path), zap.Error(err))
			writeError(w, http.StatusInternalServerError, protocol.CodeInternal, "internal error")
		}
	}
}

// authUser resolves the request's user: a bearer or ?token= API token, else
// the web UI's session cookie, which is only taken from a page of this
// gateway (same Origin) on WebSocket upgrades and state-changing requests.
func (g *Gateway) authUser(r *http.Request) (storage.User, error) {
	tok := token.FromRequest(r)
	if tok == "" {
		return g.sessionUser(r)
	}
	u, err := g.store.UserByTokenHash(r.Context(), token.Hash(tok))
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrRevoked) {
		authFailures.Inc()
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "unknown token"}
	}
	if err != nil {
		return storage.User{}, &httpError{http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the token now"}
	}
	authenticated(r) // the connection leaves the unauthenticated pool (admit.go)
	return u, nil
}

func (g *Gateway) sessionUser(r *http.Request) (storage.User, error) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "missing token or session"}
	}
	if !sameOrigin(r) {
		return storage.User{}, &httpError{http.StatusForbidden, protocol.CodeForbidden, "cross-origin request with a session cookie"}
	}
	val, err := g.presence.Session(r.Context(), c.Value)
	if err != nil {
		return storage.User{}, &httpError{http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the session now"}
	}
	if val == "" {
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "session expired; log in again"}
	}
	stamp, name, ok := parseSessionValue(val)
	if !ok {
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "session from an older version; log in again"}
	}
	u, _, err := g.store.UserByName(r.Context(), name)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "session user is gone"}
	}
	if err != nil {
		return storage.User{}, &httpError{http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the session now"}
	}
	// A revoke (or delete and re-create) or a password change since the
	// login ends the session.
	if sessionStamp(u) != stamp {
		return storage.User{}, &httpError{http.StatusUnauthorized, protocol.CodeUnauthorized, "session ended: the user's token or password was replaced; log in again"}
	}
	authenticated(r)
	return u, nil
}

// groupsOf is the group filter of a user: nil (all) for admins.
func groupsOf(u storage.User) []string {
	if u.Role == storage.RoleAdmin {
		return nil
	}
	if u.Groups == nil {
		return []string{}
	}
	return u.Groups
}

// maySee reports whether u may see device d.
func maySee(u storage.User, d storage.Device) bool {
	return u.Role == storage.RoleAdmin || slices.Contains(u.Groups, d.Group)
}

// visibleDevice loads a device the user may see: 404 if unknown, 403 if not theirs.
func (g *Gateway) visibleDevice(ctx context.Context, u storage.User, id string) (storage.Device, error) {
	d, err := g.store.Device(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return d, notFound("no device " + strconv.Quote(id))
	}
	if err != nil {
		return d, err
	}
	if !maySee(u, d) {
		return d, forbidden("device " + strconv.Quote(id) + " is not in your groups")
	}
	return d, nil
}

// deviceView is an item of GET /api/v1/devices.
type deviceView struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Group    string          `json:"group"`
	Online   bool            `json:"online"`
	LastSeen *time.Time      `json:"last_seen"`
	Location json.RawMessage `json:"location"`
	Revoked  bool            `json:"revoked,omitempty"`
}

func (g *Gateway) listDevices(w http.ResponseWriter, r *http.Request, u storage.User) error {
	devs, err := g.store.Devices(r.Context(), groupsOf(u))
	if err != nil {
		return err
	}
	states := g.deviceStates(r.Context())
	items := make([]deviceView, 0, len(devs))
	for _, d := range devs {
		items = append(items, viewOf(d, states[d.ID]))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// getDevice serves one device in the shape of a devices list item.
func (g *Gateway) getDevice(w http.ResponseWriter, r *http.Request, u storage.User) error {
	d, err := g.visibleDevice(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewOf(d, g.deviceStates(r.Context())[d.ID]))
	return nil
}

// deviceStates reads presence and last positions; without Redis the devices
// are still listed, as offline and without a position.
func (g *Gateway) deviceStates(ctx context.Context) map[string]redisq.DeviceState {
	states, err := g.presence.DeviceStates(ctx)
	if err != nil {
		g.log.Warn("device states", zap.Error(err))
		return map[string]redisq.DeviceState{}
	}
	return states
}

func viewOf(d storage.Device, st redisq.DeviceState) deviceView {
	v := deviceView{ID: d.ID, Name: d.Name, Group: d.Group, Online: st.Link != "", Revoked: d.RevokedAt != 0,
		Location: json.RawMessage("null")}
	if st.LastSeen > 0 {
		t := time.UnixMilli(st.LastSeen).UTC()
		v.LastSeen = &t
	}
	if loc := locationOf(st.Location); loc != nil {
		v.Location = loc
	}
	return v
}

// me tells the web UI who is signed in and how to draw the map.
func (g *Gateway) me(w http.ResponseWriter, r *http.Request, u storage.User) error {
	groups := u.Groups
	if groups == nil {
		groups = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "role": u.Role, "groups": groups,
		"tiles": g.cfg.Tiles, "tiles_attribution": g.cfg.TilesAttribution, "tiles_crs": g.cfg.TilesCRS})
	return nil
}

// locationOf flattens a last-location live message into the location object
// of the devices list: the data fields plus ts and received_at.
func locationOf(live []byte) json.RawMessage {
	if len(live) == 0 {
		return nil
	}
	var m protocol.Live
	if json.Unmarshal(live, &m) != nil {
		return nil
	}
	var fields map[string]any
	if json.Unmarshal(m.Data, &fields) != nil {
		return nil
	}
	fields["ts"] = m.TS
	fields["received_at"] = m.ReceivedAt
	b, _ := json.Marshal(fields)
	return b
}

// page reads limit and cursor.
func page(r *http.Request) (int, string, error) {
	q := r.URL.Query()
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, "", badRequest("limit must be a positive integer")
		}
		limit = min(n, 1000)
	}
	return limit, q.Get("cursor"), nil
}

// timeRange reads from and to (RFC 3339) as Unix ms; 0 when absent.
func timeRange(r *http.Request) (from, to int64, err error) {
	parse := func(name string) (int64, error) {
		s := r.URL.Query().Get(name)
		if s == "" {
			return 0, nil
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return 0, badRequest(name + " must be an RFC 3339 time, like 2026-01-02T15:04:05Z")
		}
		return t.UnixMilli(), nil
	}
	if from, err = parse("from"); err != nil {
		return 0, 0, err
	}
	if to, err = parse("to"); err != nil {
		return 0, 0, err
	}
	if from != 0 && to != 0 && from > to {
		return 0, 0, badRequest("from is after to")
	}
	return from, to, nil
}

func (g *Gateway) listLocations(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	if _, err := g.visibleDevice(r.Context(), u, id); err != nil {
		return err
	}
	limit, cursor, err := page(r)
	if err != nil {
		return err
	}
	from, to, err := timeRange(r)
	if err != nil {
		return err
	}
	items, next, err := g.store.Locations(r.Context(), storage.LocationQuery{Device: id, FromMS: from, ToMS: to, Limit: limit, Cursor: cursor})
	if err != nil {
		return err
	}
	if items == nil {
		items = []storage.Location{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

// logQuery reads the filters of the logs endpoints and applies the user's
// visibility: an operator's query is restricted to the devices of their groups.
func (g *Gateway) logQuery(r *http.Request, u storage.User) (storage.LogQuery, error) {
	q := r.URL.Query()
	var lq storage.LogQuery
	var err error
	if lq.Limit, lq.Cursor, err = page(r); err != nil {
		return lq, err
	}
	if lq.FromMS, lq.ToMS, err = timeRange(r); err != nil {
		return lq, err
	}
	lq.Text = q.Get("q")
	if len(lq.Text) > 256 {
		return lq, badRequest("q is longer than 256 bytes")
	}
	if strings.ContainsRune(lq.Text, 0) {
		return lq, badRequest("q must not contain NUL characters")
	}
	if lv := strings.ToLower(q.Get("level")); lv != "" {
		if !slices.Contains(protocol.Levels, lv) {
			return lq, badRequest("level must be one of " + strings.Join(protocol.Levels, ", "))
		}
		lq.Level = lv
	}
	if dev := q.Get("device"); dev != "" {
		if _, err := g.visibleDevice(r.Context(), u, dev); err != nil {
			return lq, err
		}
		lq.Device = dev
	}
	if u.Role != storage.RoleAdmin && lq.Device == "" {
		devs, err := g.store.Devices(r.Context(), groupsOf(u))
		if err != nil {
			return lq, err
		}
		lq.Devices = make([]string, 0, len(devs))
		for _, d := range devs {
			lq.Devices = append(lq.Devices, d.ID)
		}
	}
	return lq, nil
}

func (g *Gateway) listLogs(w http.ResponseWriter, r *http.Request, u storage.User) error {
	lq, err := g.logQuery(r, u)
	if err != nil {
		return err
	}
	items, next, err := g.store.Logs(r.Context(), lq)
	if err != nil {
		return err
	}
	if items == nil {
		items = []storage.LogEntry{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

// exportLogs streams every match as JSON lines or CSV, page by page.
func (g *Gateway) exportLogs(w http.ResponseWriter, r *http.Request, u storage.User) error {
	format := r.URL.Query().Get("format")
	if format == "" {
		format = "jsonl"
	}
	if format != "jsonl" && format != "csv" {
		return badRequest("format must be jsonl or csv")
	}
	lq, err := g.logQuery(r, u)
	if err != nil {
		return err
	}
	lq.Limit = 1000
	// The first page is read before any byte is written, so that a bad
	// cursor still gets a proper 400.
	items, next, err := g.store.Logs(r.Context(), lq)
	if err != nil {
		return err
	}
	name := "devtrack-logs-" + time.Now().UTC().Format("20060102-150405")
	var cw *csv.Writer
	enc := json.NewEncoder(w)
	if format == "csv" {
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.csv"`)
		cw = csv.NewWriter(w)
		_ = cw.Write([]string{"device", "id", "ts", "received_at", "level", "message", "fields"})
	} else {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.jsonl"`)
	}
	w.Header().Set("X-Content-Type-Options", "nosniff")
	for {
		for _, it := range items {
			if cw != nil {
				_ = cw.Write([]string{csvCell(it.Device), csvCell(it.ID),
					time.UnixMilli(it.TS).UTC().Format(time.RFC3339Nano), time.UnixMilli(it.ReceivedAt).UTC().Format(time.RFC3339Nano),
					it.Level, csvCell(it.Message), csvCell(string(it.Fields))})
			} else if err := enc.Encode(it); err != nil {
				return nil // client went away
			}
		}
		if cw != nil {
			cw.Flush()
		}
		if next == "" || r.Context().Err() != nil {
			return nil
		}
		lq.Cursor = next
		if items, next, err = g.store.Logs(r.Context(), lq); err != nil {
			g.log.Warn("export logs", zap.Error(err))
			return nil // headers are sent; the truncated file is all we can do
		}
	}
}

// commandRequest is the body of POST /api/v1/devices/{id}/commands.
type commandRequest struct {
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

// sendCommand routes a command to the gateway that holds the device.
func (g *Gateway) sendCommand(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	if _, err := g.visibleDevice(r.Context(), u, id); err != nil {
		return err
	}
	var req commandRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	if err := dec.Decode(&req); err != nil {
		return badRequest("body must be {\"name\":...,\"args\":{...}}: " + err.Error())
	}
	if req.Name == "" || len(req.Name) > 64 {
		return badRequest("name must be 1 to 64 bytes")
	}
	if len(req.Args) > 0 && req.Args[0] != '{' {
		return badRequest("args must be a JSON object")
	}
	link, err := g.presence.Link(r.Context(), id)
	if err != nil {
		return unavailable(err)
	}
	if link == "" {
		return &httpError{http.StatusConflict, "offline", "device " + strconv.Quote(id) + " is not connected"}
	}
	cmd := &protocol.Command{Type: protocol.TypeCommand, ID: "c-" + token.New("")[:16], Name: req.Name, Args: req.Args}
	b, _ := json.Marshal(control{Type: "command", Device: id, Command: cmd})
	if err := g.presence.PublishGateway(r.Context(), redisq.LinkGateway(link), b); err != nil {
		return unavailable(err)
	}
	g.log.Info("command sent", zap.String("device", id), zap.String("command", req.Name), zap.String("user", u.Name))
	writeJSON(w, http.StatusAccepted, map[string]string{"id": cmd.ID})
	return nil
}

package wsgateway

// The admin API of accounts and devices: list, create, edit, rotate the
// token of and delete users; revoke and delete devices (enrolment, token
// rotation and PATCH of a device are in enrol.go). Admins only. Like
// enrolment it writes through a store that is also an AccountStore (both
// of devtrack's are).
//
// A change takes effect at once for what this gateway holds: a rotated or
// deleted user's live sockets are closed here (4001) as the request
// returns, the sockets of a user whose role or groups changed (4003), so
// that they reconnect with what the user may see now, and those opened
// with a web session of a user whose password changed (4001: the change
// ends the user's sessions, except the one of an admin changing their own
// password; the API token stays). Requests look the
// user up at each call, so sessions and tokens follow the change at the
// next request on every gateway; the other gateways close their sockets
// within a RevokePoll (credentials.go). A deleted or revoked device's
// connections on this gateway are closed as the request returns, on the
// others within a RevokePoll (its tombstone or RevokedAt, control.go).

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// AccountStore is what the admin API writes in the store.
type AccountStore interface {
	AddUser(ctx context.Context, u storage.User, tokenHash, passwordHash []byte) (storage.User, error)
	Users(ctx context.Context) ([]storage.User, error)
	UpdateUser(ctx context.Context, name string, ch storage.UserChange) (storage.User, error)
	SetUserPassword(ctx context.Context, name string, passwordHash []byte) error
	RevokeUser(ctx context.Context, name string, tokenHash []byte) (storage.User, error)
	DeleteUser(ctx context.Context, name string) error
	RevokeDevice(ctx context.Context, id string) error
	DeleteDevice(ctx context.Context, id string) (storage.DeletedDevice, error)
}

// closeViewerChanged closes the live sockets of a user whose role or
// groups changed: reconnecting, the client sees what the user may see now.
const closeViewerChanged = 4003

var errViewerChanged = closeReason{closeViewerChanged, "role or groups changed", "changed"}

// Password bounds: bcrypt reads at most 72 bytes.
const (
	minPasswordBytes = 8
	maxPasswordBytes = 72
)

// userRoutes registers the admin API of accounts and devices.
func (g *Gateway) userRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /api/v1/users", g.api(adminOnly(g.listUsers)))
	m.HandleFunc("POST /api/v1/users", g.api(adminOnly(g.createUser)))
	m.HandleFunc("PATCH /api/v1/users/{name}", g.api(adminOnly(g.updateUser)))
	m.HandleFunc("POST /api/v1/users/{name}/token", g.api(adminOnly(g.rotateUser)))
	m.HandleFunc("DELETE /api/v1/users/{name}", g.api(adminOnly(g.deleteUser)))
	m.HandleFunc("POST /api/v1/devices/{id}/revoke", g.api(adminOnly(g.revokeDevice)))
	m.HandleFunc("DELETE /api/v1/devices/{id}", g.api(adminOnly(g.deleteDevice)))
}

// accounts returns the store as an AccountStore, or the error to answer.
func (g *Gateway) accounts() (AccountStore, error) {
	a, ok := g.store.(AccountStore)
	if !ok {
		return nil, &httpError{http.StatusNotImplemented, protocol.CodeInternal, "this gateway's store cannot manage accounts"}
	}
	return a, nil
}

// userView is a user in the admin API; Token only once, when one is made.
type userView struct {
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Groups []string `json:"groups"`
	// CreatedAt and TokenReplacedAt (0 if never: omitted) are Unix ms.
	CreatedAt       int64 `json:"created_at"`
	TokenReplacedAt int64 `json:"token_replaced_at,omitempty"`
	// PasswordChangedAt (0 if never: omitted) is Unix ms.
	PasswordChangedAt int64  `json:"password_changed_at,omitempty"`
	Token             string `json:"token,omitempty"`
}

func viewOfUser(u storage.User, tok string) userView {
	gs := u.Groups
	if gs == nil {
		gs = []string{}
	}
	return userView{Name: u.Name, Role: u.Role, Groups: gs, CreatedAt: u.CreatedAt, TokenReplacedAt: u.RevokedAt,
		PasswordChangedAt: u.PasswordChangedAt, Token: tok}
}

func (g *Gateway) listUsers(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	us, err := a.Users(r.Context())
	if err != nil {
		return err
	}
	items := make([]userView, 0, len(us))
	for _, u := range us {
		items = append(items, viewOfUser(u, ""))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// passwordHash checks and hashes a password of the API.
func passwordHash(pw string) ([]byte, error) {
	if len(pw) < minPasswordBytes || len(pw) > maxPasswordBytes {
		return nil, badRequest("password must be " + strconv.Itoa(minPasswordBytes) + " to " + strconv.Itoa(maxPasswordBytes) + " bytes")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost)
	if err != nil {
		return nil, badRequest("password: " + err.Error())
	}
	return h, nil
}

// accountError maps the store's refusals of an account change.
func accountError(name string, err error) error {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return notFound("no user " + strconv.Quote(name))
	case errors.Is(err, storage.ErrExists):
		return &httpError{http.StatusConflict, "exists", "user " + strconv.Quote(name) + " already exists"}
	case errors.Is(err, storage.ErrInvalid):
		// The store's prefix ("sqlite: update user \"op\": ") and the
		// sentinel's text say nothing to an API client: the reason is
		// between them.
		msg := strings.TrimSuffix(err.Error(), ": "+storage.ErrInvalid.Error())
		if prefix := strconv.Quote(name) + ": "; strings.Contains(msg, prefix) {
			msg = msg[strings.Index(msg, prefix)+len(prefix):]
		}
		return badRequest(msg)
	}
	return err
}

// createUser makes a user: 201 with its API token, shown this once.
func (g *Gateway) createUser(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	var req struct {
		Name     string   `json:"name"`
		Role     string   `json:"role"`
		Groups   []string `json:"groups"`
		Password string   `json:"password"`
	}
	if err := decodeBody(w, r, &req, `{"name":...,"role":...,"groups":[...],"password":...}`); err != nil {
		return err
	}
	if !storage.ValidName(req.Name) {
		return badRequest("name " + strconv.Quote(req.Name) + ": use 1 to 64 letters, digits and . _ : @ - (not first)")
	}
	if err := storage.CheckAccount(req.Role, req.Groups); err != nil {
		return accountError(req.Name, err)
	}
	var pw []byte
	if req.Password != "" {
		if pw, err = passwordHash(req.Password); err != nil {
			return err
		}
	}
	tok := token.New(token.UserPrefix)
	u, err := a.AddUser(r.Context(), storage.User{Name: req.Name, Role: req.Role, Groups: req.Groups}, token.Hash(tok), pw)
	if err != nil {
		return accountError(req.Name, err)
	}
	writeJSON(w, http.StatusCreated, viewOfUser(u, tok))
	return nil
}

// updateUser changes a user's role, groups or password.
func (g *Gateway) updateUser(w http.ResponseWriter, r *http.Request, me storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	var req struct {
		Role     *string   `json:"role"`
		Groups   *[]string `json:"groups"`
		Password *string   `json:"password"`
	}
	const shape = `{"role":...,"groups":[...],"password":...} (any of them)`
	if err := decodeBody(w, r, &req, shape); err != nil {
		return err
	}
	if req.Role == nil && req.Groups == nil && req.Password == nil {
		return badRequest("body must be " + shape)
	}
	if name == me.Name && req.Role != nil && *req.Role != me.Role {
		return &httpError{http.StatusConflict, "self", "you cannot change your own role (ask another admin)"}
	}
	var pw []byte
	if req.Password != nil {
		if pw, err = passwordHash(*req.Password); err != nil {
			return err
		}
	}
	var u storage.User
	if req.Role != nil || req.Groups != nil {
		if u, err = a.UpdateUser(r.Context(), name, storage.UserChange{Role: req.Role, Groups: req.Groups}); err != nil {
			return accountError(name, err)
		}
		g.closeChangedViewers(u)
	}
	if pw != nil {
		if err := a.SetUserPassword(r.Context(), name, pw); err != nil {
			return accountError(name, err)
		}
		// Answer the user as it is now, with the stamp that ended its
		// sessions.
		if u, _, err = g.store.UserByName(r.Context(), name); err != nil {
			return accountError(name, err)
		}
		g.renewSession(r, me, u)
		g.endSessionSockets(r.Context(), u)
	}
	writeJSON(w, http.StatusOK, viewOfUser(u, ""))
	return nil
}

// renewSession keeps the web session of an admin who changed their own
// password with it: the change ends the user's other sessions, not the one
// it was made from. The session keeps its id (the browser's cookie) and
// takes u's new stamp; its live sockets stay open too (endStaleSession).
// A failure only ends it like the others (logged).
func (g *Gateway) renewSession(r *http.Request, me, u storage.User) {
	id := sessionOf(r)
	if id == "" || me.Name != u.Name {
		return
	}
	if err := g.presence.SetSession(r.Context(), id, sessionValue(u), sessionTTL); err != nil {
		g.log.Warn("password change: keep the session it was made with", zap.String("user", u.Name), zap.Error(err))
	}
}

// rotateUser replaces a user's API token: the old one is refused at once,
// its sessions end, and its live sockets here are closed now.
func (g *Gateway) rotateUser(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	tok := token.New(token.UserPrefix)
	u, err := a.RevokeUser(r.Context(), name, token.Hash(tok))
	if err != nil {
		return accountError(name, err)
	}
	g.closeViewersOf(name, errViewerRevoked)
	writeJSON(w, http.StatusOK, viewOfUser(u, tok))
	return nil
}

func (g *Gateway) deleteUser(w http.ResponseWriter, r *http.Request, me storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if name == me.Name {
		return &httpError{http.StatusConflict, "self", "you cannot delete yourself (ask another admin)"}
	}
	if err := a.DeleteUser(r.Context(), name); err != nil {
		return accountError(name, err)
	}
	g.closeViewersOf(name, errViewerRevoked)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// revokeDevice revokes a device's token; its connections here close now.
func (g *Gateway) revokeDevice(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := a.RevokeDevice(r.Context(), id); errors.Is(err, storage.ErrNotFound) {
		return notFound("no device " + strconv.Quote(id))
	} else if err != nil {
		return err
	}
	g.dropDevice(id, "token revoked")
	d, err := g.store.Device(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, enrolled(d, ""))
	return nil
}

// deleteDevice removes a device with its archive: 200 with the counts of
// records removed. A big archive takes a while (SQLite removes about
// 10,000 locations or 1,000 logs a second); if the request ends first the
// device stays revoked, and deleting it again finishes.
func (g *Gateway) deleteDevice(w http.ResponseWriter, r *http.Request, _ storage.User) error {
	a, err := g.accounts()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	res, err := a.DeleteDevice(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("no device " + strconv.Quote(id))
	}
	g.dropDevice(id, "device deleted")
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": res})
	return nil
}

// dropDevice forgets a revoked or deleted device's cached tokens and closes
// its connections on this gateway, those still in their handshake included
// (registry.add).
func (g *Gateway) dropDevice(id, why string) {
	g.tokens.forget(id)
	for _, dc := range g.conns.drop(id, time.Now()) {
		dc.log.Info("closing device connection: " + why)
		dc.close(closeRevoked, why)
	}
}

// closeViewersOf closes this gateway's live sockets of the user.
func (g *Gateway) closeViewersOf(name string, why closeReason) {
	for _, v := range g.viewers.all() {
		if v.user.Name == name {
			v.closeWith(why)
		}
	}
}

// closeChangedViewers closes this gateway's live sockets of u opened with
// another role or other groups than u's now.
func (g *Gateway) closeChangedViewers(u storage.User) {
	for _, v := range g.viewers.all() {
		if v.user.Name == u.Name && accessChanged(v.user, u) {
			v.closeWith(errViewerChanged)
		}
	}
}

// accessChanged reports whether now may see other devices than was did.
func accessChanged(was, now storage.User) bool {
	return was.Role != now.Role || !slices.Equal(was.Groups, now.Groups)
}

// closeViewersNotSeeing closes this gateway's live sockets that watch d
// but whose user may not see it (d moved to another group).
func (g *Gateway) closeViewersNotSeeing(d storage.Device) {
	g.hub.mu.Lock()
	var vs []*viewer
	if s := g.hub.subs[d.ID]; s != nil {
		for v := range s.viewers {
			// A share link's viewer (accept set) watches its one device
			// whatever the device's group.
			if v.accept == nil && !maySee(v.user, d) {
				vs = append(vs, v)
			}
		}
	}
	g.hub.mu.Unlock()
	for _, v := range vs {
		v.closeWith(errViewerChanged)
	}
}

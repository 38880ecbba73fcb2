package wsgateway

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// sessionCookie is the web UI's session cookie: HttpOnly (no script reads
// it), SameSite=Strict (no cross-site request carries it), Secure on TLS.
const (
	sessionCookie = "devtrack_session"
	sessionTTL    = 12 * time.Hour
)

// dummyHash keeps a login for an unknown user as slow as a wrong password,
// so that timing does not tell which user names exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("devtrack-no-such-user"), bcrypt.DefaultCost)

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// login checks a password and sets the session cookie.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.Name == "" {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, `body must be {"name":...,"password":...}`)
		return
	}
	now := time.Now()
	addr := clientAddr(r)
	if g.logins.empty(req.Name, now) || g.addrs.empty(addr, now) {
		w.Header().Set("Retry-After", "6")
		writeError(w, http.StatusTooManyRequests, protocol.CodeRateLimited, "too many failed logins; try again in a few seconds")
		return
	}
	u, hash, err := g.store.UserByName(r.Context(), req.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		g.log.Error("login", zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the password now")
		return
	}
	if len(hash) == 0 {
		hash = dummyHash
		err = storage.ErrNotFound
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || err != nil {
		authFailures.Inc()
		g.logins.allow(req.Name, 1, now)
		g.addrs.allow(addr, 1, now)
		g.log.Info("login failed", zap.String("user", req.Name), zap.String("remote", addr))
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "wrong name or password")
		return
	}
	id := token.New("")
	if err := g.presence.SetSession(r.Context(), id, u.Name, sessionTTL); err != nil {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot store the session now")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "role": u.Role, "groups": u.Groups})
}

// logout ends the session and clears the cookie.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := g.presence.DeleteSession(r.Context(), c.Value); err != nil {
			g.log.Warn("logout", zap.Error(err))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	w.WriteHeader(http.StatusNoContent)
}

// clientAddr is the request's peer address without the port. Behind a proxy
// that is the proxy: the per-address limit then covers all its clients, and
// the per-name limit still protects each account.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// sameOrigin reports whether a cookie-authenticated request comes from a
// page of this gateway: its Origin (when sent) names the request's host.
// This is what stops cross-site WebSocket hijacking and CSRF.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		// Browsers send Origin on WebSocket handshakes and cross-site POSTs;
		// a request without one comes from a non-browser client.
		return r.Method == http.MethodGet && r.Header.Get("Upgrade") == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

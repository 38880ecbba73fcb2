package wsgateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// sessionCookie is the web UI's session cookie: HttpOnly (no script reads
// it), SameSite=Strict (no cross-site request carries it), Secure when the
// request came over TLS, directly or through a trusted proxy.
const (
	sessionCookie = "devtrack_session"
	sessionTTL    = 12 * time.Hour
)

// loginPenalty is how long each login attempt for a user name waits once
// that name has run out of failed attempts (logins: 10, then one per 6 s).
// The name is slowed, never locked: the right password still signs in after
// the wait, so a stranger's guesses cannot lock its owner out, while the
// guesses themselves cost the guesser the wait each. A source of many
// guesses is refused outright by the per-address limit (addrs).
const loginPenalty = 2 * time.Second

// dummyHash keeps a login for an unknown user as slow as a wrong password,
// so that timing does not tell which user names exist.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("devtrack-no-such-user"), bcrypt.DefaultCost)

type loginRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
}

// login checks a password and sets the session cookie.
func (g *Gateway) login(w http.ResponseWriter, r *http.Request) {
	// Login CSRF: a foreign page must not sign the browser in to an account
	// of the attacker's choosing. Browsers send Origin on every POST.
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, "login must come from a page of this gateway (Origin)")
		return
	}
	var req loginRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&req); err != nil || req.Name == "" {
		writeError(w, http.StatusBadRequest, protocol.CodeBadRequest, `body must be {"name":...,"password":...}`)
		return
	}
	addr := g.clientAddr(r)
	// The address's token is taken now (for IPv6 the /64's: one host holds a
	// whole /64 and could change address at every guess) and given back if the password is
	// right, so that concurrent guesses cannot all pass the check at once.
	addrOK, uncountAddr := g.addrs.take(throttleKey(addr), time.Now())
	if !addrOK {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, protocol.CodeRateLimited, "too many failed logins from your address; try again in a few seconds")
		return
	}
	if g.logins.empty(req.Name, time.Now()) && !sleepCtx(r.Context(), loginPenalty) {
		return // the client gave up
	}
	u, hash, err := g.store.UserByName(r.Context(), req.Name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		g.log.Error("login: look up user", zap.String("user", req.Name), zap.Error(err))
		uncountAddr()
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the password now")
		return
	}
	if len(hash) == 0 {
		hash = dummyHash
		err = storage.ErrNotFound
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(req.Password)) != nil || err != nil {
		authFailures.Inc()
		g.logins.allow(req.Name, 1, time.Now())
		g.log.Info("login failed", zap.String("user", req.Name), zap.String("remote", addr))
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "wrong name or password")
		return
	}
	uncountAddr() // successful logins never count
	id := token.New("")
	if err := g.presence.SetSession(r.Context(), id, sessionValue(u), sessionTTL); err != nil {
		g.log.Warn("login: store session", zap.String("user", u.Name), zap.Error(err))
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot store the session now")
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", MaxAge: int(sessionTTL / time.Second),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: g.viaTLS(r)})
	writeJSON(w, http.StatusOK, map[string]any{"name": u.Name, "role": u.Role, "groups": u.Groups})
}

// logout ends the session and clears the cookie.
func (g *Gateway) logout(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, protocol.CodeForbidden, "logout must come from a page of this gateway (Origin)")
		return
	}
	if c, err := r.Cookie(sessionCookie); err == nil {
		if err := g.presence.DeleteSession(r.Context(), c.Value); err != nil {
			g.log.Warn("logout", zap.Error(err))
		}
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: g.viaTLS(r)})
	w.WriteHeader(http.StatusNoContent)
}

// sleepCtx waits d or until ctx ends, and reports whether d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// userStamp names a user's credentials as they are now: it changes when the
// user is revoked (RevokedAt) and differs for a user deleted and created
// again under the same name (ID, CreatedAt). A session or live socket is
// valid while the stamp it was opened with is still the user's.
func userStamp(u storage.User) string {
	return fmt.Sprintf("%d.%d.%d", u.ID, u.CreatedAt, u.RevokedAt)
}

// sessionStamp is userStamp and, once the password has been changed, when
// it was (PasswordChangedAt): a password change ends the user's sessions
// but not their token. Before any change it is userStamp, so sessions from
// before PasswordChangedAt existed stay valid.
func sessionStamp(u storage.User) string {
	if u.PasswordChangedAt == 0 {
		return userStamp(u)
	}
	return fmt.Sprintf("%s.%d", userStamp(u), u.PasswordChangedAt)
}

// sessionValue is what Redis holds for a session: "STAMP NAME", STAMP
// being sessionStamp.
func sessionValue(u storage.User) string { return sessionStamp(u) + " " + u.Name }

// parseSessionValue splits a session value; ok is false for a value from a
// version that stored the name alone.
func parseSessionValue(v string) (stamp, name string, ok bool) {
	stamp, name, ok = strings.Cut(v, " ")
	return stamp, name, ok && name != ""
}

// peerAddr is the request's peer address without the port.
func peerAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// fromTrustedProxy reports whether the request's peer is one of
// Config.TrustedProxies: only then are its X-Forwarded-* headers believed.
func (g *Gateway) fromTrustedProxy(r *http.Request) bool {
	ip, err := netip.ParseAddr(peerAddr(r))
	return err == nil && g.trustedProxy(ip)
}

func (g *Gateway) trustedProxy(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range g.cfg.TrustedProxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// clientAddr is the address that the failed-login limit counts against: the
// peer, or, when the peer is a trusted proxy, the right-most hop of
// X-Forwarded-For that is not a trusted proxy itself (the hops left of it
// were written by the client and prove nothing). Behind an untrusted proxy
// it is the proxy: the per-address limit then covers all its clients, and
// the per-name delay still protects each account.
func (g *Gateway) clientAddr(r *http.Request) string {
	addr := peerAddr(r)
	if !g.fromTrustedProxy(r) {
		return addr
	}
	var hops []string
	for _, h := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(h, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return addr // garbage: the last hop we could read
		}
		addr = ip.Unmap().String()
		if !g.trustedProxy(ip) {
			return addr
		}
	}
	return addr
}

// throttleKey is what failed logins are counted against for a client
// address: the address itself for IPv4, its /64 for IPv6.
func throttleKey(addr string) string {
	ip, err := netip.ParseAddr(addr)
	if err != nil || !ip.Unmap().Is6() {
		return addr
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return addr
	}
	return p.String()
}

// viaTLS reports whether the client reached us over TLS: directly, or
// through a trusted proxy that says so in X-Forwarded-Proto (its right-most
// value is the one that proxy wrote).
func (g *Gateway) viaTLS(r *http.Request) bool {
	if r.TLS != nil {
		return true
	}
	if !g.fromTrustedProxy(r) {
		return false
	}
	vals := r.Header.Values("X-Forwarded-Proto")
	if len(vals) == 0 {
		return false
	}
	parts := strings.Split(vals[len(vals)-1], ",")
	return strings.EqualFold(strings.TrimSpace(parts[len(parts)-1]), "https")
}

// ParseTrustedProxies reads a comma-separated list of CIDRs or single
// addresses (the --trusted-proxies flag) for Config.TrustedProxies.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	return parsePrefixes("trusted proxy", list)
}

// parsePrefixes reads a comma-separated list of CIDRs or single addresses;
// what names an entry in errors.
func parsePrefixes(what, list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(list, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%s %q: want a CIDR like 10.0.0.0/8 or an address", what, s)
		}
		out = append(out, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
	}
	return out, nil
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

package wsgateway

import (
	"context"
	"net/http"
	"time"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"go.uber.org/zap"
)

// errSessionEnded closes a live socket opened with a web session that a
// password change ended; as for a revoke, the client does not reconnect
// with it (the page shows the login form).
var errSessionEnded = closeReason{closeViewerRevoked, "session ended: password changed", "session_ended"}

// credentialsLoop closes, within a RevokePoll or two, the connections whose
// credentials changed after their handshake. The API and /ws/live handshakes
// look every token and session up in the store per request (no cache), so a
// replaced user token is refused at once. Device tokens go through the token
// cache, which this loop keeps in step with rotations (a replaced device
// token is refused from the round that sees it on, at most 3 s after the
// rotation). Beyond that, this loop is for what is already open:
//   - live viewers of a user that was revoked, deleted, or deleted and
//     created again (its userStamp differs from the one at the handshake),
//     closed with 4001 "credentials revoked";
//   - live viewers opened with a web session of a user whose password
//     changed since (devtrack user passwd, PATCH /api/v1/users/{name}):
//     the change ended the session (requests with it get 401), and the
//     socket is closed with 4001 "session ended: password changed", unless
//     the session was renewed by the change (the admin who changed their
//     own password keeps the session they did it with). Sockets opened
//     with the API token stay: a password change keeps the token;
//   - live viewers of a user whose role or groups changed since the
//     handshake (devtrack user edit, PATCH /api/v1/users/{name}), closed
//     with 4003 "role or groups changed": the client reconnects and sees
//     what the user may see now (requests read the user at each call);
//   - live viewers watching a device that was moved to a group their user
//     may not see (devtrack device move, PATCH /api/v1/devices/{id}):
//     DevicesChangedSince lists it, and the viewers are closed with 4003
//     as on the gateway that served the PATCH (closeViewersNotSeeing);
//   - device connections opened with a token that has since been replaced
//     (devtrack device rotate): the device's TokenRotatedAt differs from the
//     one read at the handshake; closed with closeRevoked;
//   - legacy connections opened with a legacy key that has since been
//     replaced (devtrack device legacy-key): the key's IssuedAt differs from
//     the one read at the handshake; closed with closeRevoked. Legacy
//     connections do not use the token, so a rotation leaves them open.
//
// Both compare stored values, never clocks, so the CLI host's clock does not
// matter. A store error skips the round (logged); nothing is closed on it.
// A viewer whose session was only logged out stays open until it closes.
func (g *Gateway) credentialsLoop(ctx context.Context) {
	t := time.NewTicker(g.cfg.RevokePoll)
	defer t.Stop()
	// Rotations are looked up from a minute before the last good round: a
	// late poll or a store outage does not skip one.
	since := time.Now().Add(-time.Minute).UnixMilli()
	// The first round runs at once: the token cache serves nothing until
	// it has completed one.
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		start := time.Now()
		ok := g.checkViewers(ctx)
		ok = g.checkChangedDevices(ctx, since) && ok
		ok = g.checkLegacyKeys(ctx, since) && ok
		if g.checkRotatedDevices(ctx, since) && ok {
			since = start.Add(-time.Minute).UnixMilli()
		}
	}
}

func (g *Gateway) checkViewers(ctx context.Context) bool {
	vs := g.viewers.all()
	if len(vs) == 0 {
		return true
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	users, err := g.store.Users(c)
	if err != nil {
		g.warnUnlessStopping(ctx, "check viewers' credentials: list users", zap.Error(err))
		return false
	}
	byName := make(map[string]storage.User, len(users))
	for _, u := range users {
		byName[u.Name] = u
	}
	for _, v := range vs {
		u, ok := byName[v.user.Name]
		switch {
		case !ok || userStamp(u) != v.stamp:
			g.log.Info("closing live viewer: credentials revoked", zap.String("user", v.user.Name))
			v.closeWith(errViewerRevoked)
		case v.session != "" && v.pwAt.Load() != u.PasswordChangedAt:
			g.endStaleSession(c, v, u)
		case accessChanged(v.user, u):
			g.log.Info("closing live viewer: role or groups changed", zap.String("user", v.user.Name))
			v.closeWith(errViewerChanged)
		}
	}
	return true
}

// sessionOf is the id of the web session a request is authenticated with
// (authUser takes the cookie only when no token is sent), "" if none.
func sessionOf(r *http.Request) string {
	if token.FromRequest(r) != "" {
		return ""
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

// endSessionSockets closes this gateway's live sockets of u opened with a
// web session from before u's latest password change.
func (g *Gateway) endSessionSockets(ctx context.Context, u storage.User) {
	for _, v := range g.viewers.all() {
		if v.user.Name == u.Name && v.session != "" && v.pwAt.Load() != u.PasswordChangedAt {
			g.endStaleSession(ctx, v, u)
		}
	}
}

// endStaleSession closes v, a live socket whose web session predates u's
// password change, unless that session now holds u's current stamp (the
// change renewed it: renewSession): then v is brought up to date and
// stays. A Redis error is no proof of renewal: v is closed.
func (g *Gateway) endStaleSession(ctx context.Context, v *viewer, u storage.User) {
	val, err := g.presence.Session(ctx, v.session)
	if stamp, name, ok := parseSessionValue(val); err == nil && ok && name == u.Name && stamp == sessionStamp(u) {
		v.pwAt.Store(u.PasswordChangedAt)
		return
	}
	g.log.Info("closing live viewer: its session ended with a password change", zap.String("user", v.user.Name))
	v.closeWith(errSessionEnded)
}

// checkChangedDevices closes the live viewers watching a device that was
// moved to a group their user may not see. It asks the store only while
// viewers are open on this gateway.
func (g *Gateway) checkChangedDevices(ctx context.Context, since int64) bool {
	if len(g.viewers.all()) == 0 {
		return true
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	devs, err := g.store.DevicesChangedSince(c, since)
	if err != nil {
		g.warnUnlessStopping(ctx, "check moved devices: devices changed since", zap.Error(err))
		return false
	}
	for _, d := range devs {
		g.closeViewersNotSeeing(d)
	}
	return true
}

// checkRotatedDevices evicts the replaced tokens from the token cache, then
// closes the connections made with them.
func (g *Gateway) checkRotatedDevices(ctx context.Context, since int64) bool {
	start := time.Now()
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	devs, err := g.store.DevicesRotatedSince(c, since)
	if err != nil {
		g.warnUnlessStopping(ctx, "check device tokens: rotated devices", zap.Error(err))
		return false
	}
	g.tokens.rotationsChecked(start, devs)
	if len(devs) == 0 {
		return true
	}
	rotated := make(map[string]int64, len(devs))
	for _, d := range devs {
		rotated[d.ID] = d.TokenRotatedAt
	}
	for _, dc := range g.conns.snapshot() {
		if _, legacy := dc.fr.(*legacyConn); legacy {
			continue
		}
		if at, ok := rotated[dc.device.ID]; ok && dc.device.TokenRotatedAt != at {
			dc.log.Info("closing device connection: its token was replaced")
			dc.close(closeRevoked, "token replaced")
		}
	}
	return true
}

// checkLegacyKeys closes the legacy connections opened with a key that has
// since been replaced. It asks the store only while such connections are
// open on this gateway.
func (g *Gateway) checkLegacyKeys(ctx context.Context, since int64) bool {
	if g.legacy == nil || g.legacy.keyed.Load() == 0 {
		return true
	}
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	keys, err := g.store.LegacyKeysIssuedSince(c, since)
	if err != nil {
		g.warnUnlessStopping(ctx, "check legacy keys: keys issued since", zap.Error(err))
		return false
	}
	if len(keys) == 0 {
		return true
	}
	issued := make(map[string]int64, len(keys))
	for _, k := range keys {
		issued[k.Device] = k.IssuedAt
	}
	for _, dc := range g.conns.snapshot() {
		lc, ok := dc.fr.(*legacyConn)
		if !ok || lc.keyAt == 0 {
			continue
		}
		if at, ok := issued[dc.device.ID]; ok && at != lc.keyAt {
			dc.log.Info("closing legacy connection: its key was replaced")
			dc.close(closeRevoked, "legacy key replaced")
		}
	}
	return true
}

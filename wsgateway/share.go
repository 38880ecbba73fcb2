package wsgateway

// Share links (CONTRACT, "Share links"): an admin, or an operator who may
// see the device, makes an expiring link to one device's live position;
// whoever opens it sees that device only, until it expires or is revoked.
//
//   POST   /api/v1/devices/{id}/shares {"ttl_s":N} -> 201 {"id","url","expires_at","device"}
//   GET    /api/v1/devices/{id}/shares             -> {"items":[share...]} (active ones)
//   DELETE /api/v1/shares/{id}                     -> 204
//   GET    /s/{secret}                             the public page (web/static/share.html)
//   GET    /ws/share?s=SECRET                      its live feed
//
// The secret in the URL is the capability: it is stored only as its
// SHA-256 hash (like device tokens), it is no user token (the query API and
// /ws/live refuse it, since authUser only looks up users), and it opens
// nothing but /ws/share. A share socket is a viewer (viewer.go) that the
// gateway subscribes to the share's device alone; it reads no subscribe
// requests, and its accept filter passes positions and presence only, never
// logs or command results. The socket is closed with 4010 when the share
// expires (a timer to expires_at) or is revoked (DELETE on this gateway
// closes it at once; every gateway also polls the share each RevokePoll).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/web"
	"go.uber.org/zap"
	"golang.org/x/time/rate"
)

const (
	// sharePrefix marks a share secret, as token.DevicePrefix marks a device
	// token.
	sharePrefix = "dts_"
	// minShareTTL and maxShareTTL bound ttl_s. The floor is low (one second)
	// so that tests and demos can watch a link expire; the ceiling keeps a
	// forgotten link from working for ever.
	minShareTTL = time.Second
	maxShareTTL = 7 * 24 * time.Hour
	// maxShareSockets caps the open sockets of one share on this gateway
	// (a link passed around a group chat); one more gets HTTP 429.
	maxShareSockets = 20
	// closeShareEnded closes a share socket whose share expired or was
	// revoked.
	closeShareEnded = 4010
)

var errShareEnded = closeReason{closeShareEnded, "share link expired or revoked", "share_ended"}

// shareView is a share in the API.
type shareView struct {
	ID        string    `json:"id"`
	Device    string    `json:"device"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	URL       string    `json:"url,omitempty"` // only when created: the secret is not stored
}

func shareViewOf(sh storage.Share) shareView {
	return shareView{ID: sh.ID, Device: sh.Device, CreatedBy: sh.CreatedBy,
		CreatedAt: time.UnixMilli(sh.CreatedAt).UTC(), ExpiresAt: time.UnixMilli(sh.ExpiresAt).UTC()}
}

// shareRoutes registers the share endpoints on m and sets up their state.
func (g *Gateway) shareRoutes(m *http.ServeMux) {
	g.shares = &shareSockets{byShare: map[string]map[*viewer]struct{}{}}
	m.HandleFunc("POST /api/v1/devices/{id}/shares", g.api(g.createShare))
	m.HandleFunc("GET /api/v1/devices/{id}/shares", g.api(g.listShares))
	m.HandleFunc("DELETE /api/v1/shares/{id}", g.api(g.deleteShare))
	m.HandleFunc("GET /ws/share", g.serveShare)
	page := web.NewHandler(web.Options{FrameAncestors: g.cfg.CORSOrigins})
	m.HandleFunc("GET /s/{secret}", func(w http.ResponseWriter, r *http.Request) {
		// One page for every secret: the script reads it from the path.
		// Nothing is looked up here, so the page tells nothing about a
		// secret; the socket does. Not cached: the URL is a capability.
		w.Header().Set("Cache-Control", "no-store")
		r2 := r.Clone(r.Context())
		r2.URL.Path = "/share.html"
		page.ServeHTTP(noCacheWriter{w}, r2)
	})
}

// noCacheWriter keeps the Cache-Control the share page set (the web
// handler would set no-cache, which allows storing it).
type noCacheWriter struct{ http.ResponseWriter }

func (w noCacheWriter) WriteHeader(code int) {
	w.Header().Set("Cache-Control", "no-store")
	w.ResponseWriter.WriteHeader(code)
}

func (w noCacheWriter) Write(b []byte) (int, error) {
	w.Header().Set("Cache-Control", "no-store")
	return w.ResponseWriter.Write(b)
}

func (g *Gateway) createShare(w http.ResponseWriter, r *http.Request, u storage.User) error {
	d, err := g.visibleDevice(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	var body struct {
		TTL *float64 `json:"ttl_s"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10)).Decode(&body); err != nil {
		return badRequest("body must be JSON {\"ttl_s\":N}: " + err.Error())
	}
	if body.TTL == nil {
		return badRequest("ttl_s is required")
	}
	ttl := time.Duration(*body.TTL * float64(time.Second))
	if *body.TTL != float64(int64(*body.TTL)) || ttl < minShareTTL || ttl > maxShareTTL {
		return badRequest(fmt.Sprintf("ttl_s must be a whole number of seconds from %d to %d",
			int64(minShareTTL/time.Second), int64(maxShareTTL/time.Second)))
	}
	secret := token.New(sharePrefix)
	now := time.Now()
	sh, err := g.store.CreateShare(r.Context(), storage.Share{ID: newShareID(), Device: d.ID, CreatedBy: u.Name,
		CreatedAt: now.UnixMilli(), ExpiresAt: now.Add(ttl).UnixMilli()}, token.Hash(secret))
	if errors.Is(err, storage.ErrRevoked) {
		return forbidden("device " + strconv.Quote(d.ID) + " is revoked")
	}
	if err != nil {
		return err
	}
	scheme := "http"
	if g.viaTLS(r) {
		scheme = "https"
	}
	view := shareViewOf(sh)
	view.URL = scheme + "://" + r.Host + "/s/" + secret
	g.log.Info("share created", zap.String("share", sh.ID), zap.String("device", sh.Device),
		zap.String("user", u.Name), zap.Time("expires_at", view.ExpiresAt))
	writeJSON(w, http.StatusCreated, view)
	return nil
}

// newShareID is a share's public id (in DELETE /api/v1/shares/{id}); it
// opens nothing.
func newShareID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return "sh_" + hex.EncodeToString(b[:])
}

func (g *Gateway) listShares(w http.ResponseWriter, r *http.Request, u storage.User) error {
	d, err := g.visibleDevice(r.Context(), u, r.PathValue("id"))
	if err != nil {
		return err
	}
	shares, err := g.store.SharesOf(r.Context(), d.ID, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	items := make([]shareView, 0, len(shares))
	for _, sh := range shares {
		items = append(items, shareViewOf(sh))
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items})
	return nil
}

// deleteShare revokes a share: an admin may, its creator may, and so may an
// operator who may see its device. Open sockets of it on this gateway are
// closed at once, on the others at their next poll.
func (g *Gateway) deleteShare(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	sh, err := g.store.Share(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return notFound("no share " + strconv.Quote(id))
	}
	if err != nil {
		return err
	}
	if u.Role != storage.RoleAdmin && sh.CreatedBy != u.Name {
		d, err := g.store.Device(r.Context(), sh.Device)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		if err != nil || !maySee(u, d) {
			return forbidden("share " + strconv.Quote(id) + " is of a device not in your groups")
		}
	}
	if _, err := g.store.RevokeShare(r.Context(), id); err != nil {
		return err
	}
	g.log.Info("share revoked", zap.String("share", id), zap.String("device", sh.Device), zap.String("user", u.Name))
	g.shares.closeShare(id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// shareMessage is the first message of a share socket: what the page needs
// to draw the device (the UI's /api/v1/me is not open to it).
type shareMessage struct {
	Type             string    `json:"type"` // "share"
	Device           string    `json:"device"`
	Name             string    `json:"name"`
	ExpiresAt        time.Time `json:"expires_at"`
	Tiles            string    `json:"tiles"`
	TilesAttribution string    `json:"tiles_attribution"`
	TilesCRS         string    `json:"tiles_crs"`
}

// shareAccept passes the live messages a share socket may carry.
func shareAccept(msg []byte) bool {
	for _, p := range []string{`{"type":"location"`, `{"type":"presence"`, `{"type":"snapshot"`} {
		if strings.HasPrefix(string(msg), p) {
			return true
		}
	}
	return false
}

// serveShare is /ws/share?s=SECRET: 401 for a secret that names no share,
// 410 for an expired or revoked share (or a revoked device), else the
// socket: a share message, a snapshot of the device, then its locations and
// presence until the share ends.
func (g *Gateway) serveShare(w http.ResponseWriter, r *http.Request) {
	secret := r.URL.Query().Get("s")
	if !strings.HasPrefix(secret, sharePrefix) {
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "missing or malformed share secret")
		return
	}
	sh, err := g.store.ShareByTokenHash(r.Context(), token.Hash(secret))
	if errors.Is(err, storage.ErrNotFound) {
		authFailures.Inc()
		writeError(w, http.StatusUnauthorized, protocol.CodeUnauthorized, "unknown share link")
		return
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the share link now")
		return
	}
	d, err := g.store.Device(r.Context(), sh.Device)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		writeError(w, http.StatusServiceUnavailable, protocol.CodeUnavailable, "cannot check the share link now")
		return
	}
	if err != nil || d.RevokedAt != 0 || !sh.ActiveAt(time.Now().UnixMilli()) {
		writeError(w, http.StatusGone, protocol.CodeNotFound, "share link expired or revoked")
		return
	}
	authenticated(r)
	// No user: the viewer's user has no role and no groups, so even a
	// subscribe, were one ever read, would see nothing.
	v := newViewer(g, storage.User{Name: "share " + sh.ID})
	v.subs[d.ID] = struct{}{}
	v.limiter, v.accept = rate.NewLimiter(0, 0), shareAccept
	if !g.shares.add(sh.ID, v) {
		writeError(w, http.StatusTooManyRequests, protocol.CodeTooManyConnections,
			fmt.Sprintf("share %s already has %d sockets open on this gateway, the most allowed", sh.ID, maxShareSockets))
		return
	}
	ws, err := viewerUpgrader.Upgrade(w, r, nil)
	if err != nil {
		g.shares.remove(sh.ID, v)
		return
	}
	v.start(ws)
	g.hub.join(v)
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		g.watchShare(v, sh)
	}()
	defer func() {
		g.hub.removeAll(v)
		g.shares.remove(sh.ID, v)
		v.close()
		v.writers.Wait()
		<-watched
	}()
	v.send(shareMessage{Type: "share", Device: d.ID, Name: d.Name, ExpiresAt: time.UnixMilli(sh.ExpiresAt).UTC(),
		Tiles: g.cfg.Tiles, TilesAttribution: g.cfg.TilesAttribution, TilesCRS: g.cfg.TilesCRS})
	// Join and wait for the subscription before reading the snapshot, as
	// viewer.subscribe does.
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	awaitSubscribed(ctx, g.hub.add(v, []string{d.ID}))
	v.send(map[string]any{"type": "snapshot", "devices": g.snapshot(ctx, []string{d.ID})})
	cancel()
	shareReadLoop(v)
}

// shareReadLoop reads the client's frames only to see pongs and the close:
// a share socket takes no requests.
func shareReadLoop(v *viewer) {
	v.ws.SetReadLimit(1 << 10)
	_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
	v.ws.SetPongHandler(func(string) error { return v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait)) })
	for {
		if _, _, err := v.ws.ReadMessage(); err != nil {
			return
		}
		_ = v.ws.SetReadDeadline(time.Now().Add(v.g.cfg.PongWait))
	}
}

// watchShare closes v when the share expires, is revoked or its device is
// revoked: a timer to expires_at, and a look at the store every RevokePoll
// (a store error keeps the socket open until the next look). It returns
// once v is closed.
func (g *Gateway) watchShare(v *viewer, sh storage.Share) {
	expiry := time.NewTimer(time.Until(time.UnixMilli(sh.ExpiresAt)))
	defer expiry.Stop()
	poll := time.NewTicker(g.cfg.RevokePoll)
	defer poll.Stop()
	for {
		select {
		case <-v.done:
			return
		case <-expiry.C:
			v.closeWith(errShareEnded)
			return
		case <-poll.C:
			ctx, cancel := context.WithTimeout(g.bg, 2*time.Second)
			cur, err := g.store.Share(ctx, sh.ID)
			var d storage.Device
			if err == nil {
				d, err = g.store.Device(ctx, sh.Device)
			}
			cancel()
			switch {
			case errors.Is(err, storage.ErrNotFound) || err == nil && (!cur.ActiveAt(time.Now().UnixMilli()) || d.RevokedAt != 0):
				g.log.Info("closing share socket: share ended", zap.String("share", sh.ID))
				v.closeWith(errShareEnded)
				return
			case err != nil:
				g.log.Warn("check share", zap.String("share", sh.ID), zap.Error(err))
			}
		}
	}
}

// shareSockets holds the open share sockets of this gateway by share: for
// the per-share cap and to close them when the share is revoked here.
type shareSockets struct {
	mu      sync.Mutex
	byShare map[string]map[*viewer]struct{}
}

func (s *shareSockets) add(id string, v *viewer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := s.byShare[id]
	if len(vs) >= maxShareSockets {
		return false
	}
	if vs == nil {
		vs = map[*viewer]struct{}{}
		s.byShare[id] = vs
	}
	vs[v] = struct{}{}
	return true
}

func (s *shareSockets) remove(id string, v *viewer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byShare[id], v)
	if len(s.byShare[id]) == 0 {
		delete(s.byShare, id)
	}
}

// closeShare closes every open socket of the share on this gateway.
func (s *shareSockets) closeShare(id string) {
	s.mu.Lock()
	vs := make([]*viewer, 0, len(s.byShare[id]))
	for v := range s.byShare[id] {
		vs = append(vs, v)
	}
	s.mu.Unlock()
	for _, v := range vs {
		v.closeWith(errShareEnded)
	}
}

package wsgateway

import (
	"container/list"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Admission keeps file descriptors for clients that authenticate.
//
// Every accepted connection is unauthenticated until a handler resolves a
// device or user token on it (authenticated); until then it counts against
// Config.MaxUnauthConns and, per client address, MaxUnauthConnsPerAddr. All
// connections together count against MaxConns, which defaults to a little
// below RLIMIT_NOFILE so that accept never fails with EMFILE: the reserve
// is for Redis, the store and log files.
//
// When a new connection would pass a cap, an unauthenticated connection is
// shed (closed): the oldest idle keep-alive first, else the oldest one,
// from the same address when the per-address cap is what was hit. Trusted
// proxies (Config.TrustedProxies) have no per-address cap: every client
// behind them shares their address. Shedding
// the oldest rather than refusing the newest is deliberate: the oldest
// unauthenticated connections are the ones that trickle or idle, while a
// device or a health check authenticates or finishes within milliseconds of
// connecting. Refusing the newest would let a flood of slow clients lock
// out everyone else for as long as it keeps its sockets open. When only
// authenticated connections are left, the new connection is closed at
// once (the fd limit is reached by real clients: raise it).
//
// Read deadlines complement it: HeaderTimeout for the request head,
// BodyTimeout for a request body (set per request, since WebSocket
// connections are hijacked and long exports must not be cut), IdleTimeout
// for keep-alives.
type admission struct {
	ln         net.Listener
	maxConns   int // all open connections; <= 0: no cap
	maxUnauth  int
	maxPerAddr int
	proxies    []netip.Prefix // Config.TrustedProxies: no per-address cap, they carry many clients
	log        *zap.Logger

	mu      sync.Mutex
	open    int
	unauth  *list.List // of *trackedConn, oldest first
	perAddr map[string]int
}

var _ net.Listener = (*admission)(nil)

func newAdmission(ln net.Listener, cfg Config, log *zap.Logger) *admission {
	return &admission{ln: ln, maxConns: cfg.MaxConns, maxUnauth: cfg.MaxUnauthConns,
		maxPerAddr: cfg.MaxUnauthConnsPerAddr, proxies: cfg.TrustedProxies, log: log, unauth: list.New(), perAddr: map[string]int{}}
}

func (a *admission) Addr() net.Addr { return a.ln.Addr() }
func (a *admission) Close() error   { return a.ln.Close() }

// Accept accepts the next connection, shedding another one if a cap would
// be passed, or closing this one when nothing can be shed.
func (a *admission) Accept() (net.Conn, error) {
	for {
		c, err := a.ln.Accept()
		if err != nil {
			return nil, err
		}
		tc, shed, reason := a.admit(c)
		for _, v := range shed {
			connsShed.WithLabelValues(reason).Inc()
			_ = v.Close()
		}
		if tc != nil {
			return tc, nil
		}
		connsShed.WithLabelValues(shedFull).Inc()
		if ce := a.log.Check(zap.DebugLevel, "connection refused: every connection is authenticated"); ce != nil {
			ce.Write(zap.String("remote", c.RemoteAddr().String()))
		}
		_ = c.Close()
	}
}

// Shed reasons (label of connections_shed_total).
const (
	shedUnauth = "unauthenticated_limit"
	shedAddr   = "address_limit"
	shedFDs    = "connection_limit"
	shedFull   = "connection_limit_authenticated"
)

// admit registers c, and returns the connections to shed to make room and
// why; a nil tracked connection means c itself must be closed.
func (a *admission) admit(c net.Conn) (*trackedConn, []*trackedConn, string) {
	addr := hostOf(c.RemoteAddr())
	a.mu.Lock()
	defer a.mu.Unlock()
	var shed []*trackedConn
	reason := ""
	take := func(v *trackedConn, why string) {
		a.forgetLocked(v)
		shed = append(shed, v)
		reason = why
	}
	if a.maxPerAddr > 0 && a.perAddr[addr] >= a.maxPerAddr && !a.isProxy(addr) {
		if v := a.victimLocked(addr); v != nil {
			take(v, shedAddr)
		}
	}
	if a.maxUnauth > 0 && a.unauth.Len() >= a.maxUnauth {
		if v := a.victimLocked(""); v != nil {
			take(v, shedUnauth)
		}
	}
	if a.maxConns > 0 && a.open >= a.maxConns {
		v := a.victimLocked("")
		if v == nil {
			return nil, shed, reason
		}
		take(v, shedFDs)
	}
	tc := &trackedConn{Conn: c, a: a, addr: addr}
	a.open++
	tc.elem = a.unauth.PushBack(tc)
	a.perAddr[addr]++
	unauthConns.Set(float64(a.unauth.Len()))
	return tc, shed, reason
}

// victimLocked picks the unauthenticated connection to shed (of addr, if
// not empty): the oldest idle one, else the oldest, never one whose handler
// is answering a request that was sent whole (a health check from behind
// the same address as a flood must still get its answer).
//
// With no addr (the gateway's caps), it sheds from the address holding the
// most unauthenticated connections, if that address holds more than one
// and it is not a trusted proxy's. Shedding the oldest of all is not enough
// against a flood that reconnects as fast as it is shed: 2,000 slow clients
// on 8 addresses turned a pool of 268 over every ~160 ms (chaos case 6), so
// a health check whose request had not been read within that time became
// the oldest and was closed unanswered (1 to 3 probes of 30 failed with
// EOF). A client with few connections of its own is now shed only after
// the flood's addresses are down to its share.
func (a *admission) victimLocked(addr string) *trackedConn {
	if addr == "" {
		if top := a.topAddrLocked(); top != "" {
			if v := a.victimOfLocked(top); v != nil {
				return v
			}
		}
	}
	return a.victimOfLocked(addr)
}

// topAddrLocked is the address (not a trusted proxy's) holding the most
// unauthenticated connections, if more than one; "" if none does.
func (a *admission) topAddrLocked() string {
	top, most := "", 1
	for addr, n := range a.perAddr {
		if n > most && !a.isProxy(addr) {
			top, most = addr, n
		}
	}
	return top
}

// victimOfLocked is the oldest idle unauthenticated connection (of addr,
// if not empty), else the oldest, never one being answered.
func (a *admission) victimOfLocked(addr string) *trackedConn {
	var oldest *trackedConn
	for e := a.unauth.Front(); e != nil; e = e.Next() {
		tc := e.Value.(*trackedConn)
		if (addr != "" && tc.addr != addr) || tc.serving {
			continue
		}
		if tc.idle {
			return tc
		}
		if oldest == nil {
			oldest = tc
		}
	}
	return oldest
}

// forgetLocked takes tc out of every count (it is being closed).
func (a *admission) forgetLocked(tc *trackedConn) {
	if tc.gone {
		return
	}
	tc.gone = true
	a.open--
	a.leavePoolLocked(tc)
}

func (a *admission) leavePoolLocked(tc *trackedConn) {
	if tc.elem == nil {
		return
	}
	a.unauth.Remove(tc.elem)
	tc.elem = nil
	if a.perAddr[tc.addr]--; a.perAddr[tc.addr] <= 0 {
		delete(a.perAddr, tc.addr)
	}
	unauthConns.Set(float64(a.unauth.Len()))
}

// connState follows keep-alive idleness (http.Server.ConnState).
func (a *admission) connState(c net.Conn, st http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	tc.idle = st == http.StateIdle
}

func (a *admission) isProxy(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range a.proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func hostOf(addr net.Addr) string {
	if ta, ok := addr.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// trackedConn is an accepted connection under admission control.
type trackedConn struct {
	net.Conn
	a    *admission
	addr string
	// under a.mu:
	elem    *list.Element // in a.unauth while unauthenticated
	idle    bool
	serving bool // a handler answers a request that has no body left to read
	gone    bool
}

func (tc *trackedConn) Close() error {
	tc.a.mu.Lock()
	tc.a.forgetLocked(tc)
	tc.a.mu.Unlock()
	return tc.Conn.Close()
}

// authenticate takes the connection out of the unauthenticated pool.
func (tc *trackedConn) authenticate() {
	tc.a.mu.Lock()
	defer tc.a.mu.Unlock()
	tc.a.leavePoolLocked(tc)
}

type connKey struct{}

// connContext puts the tracked connection into its requests' context
// (http.Server.ConnContext).
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*trackedConn); ok {
		return context.WithValue(ctx, connKey{}, tc)
	}
	return ctx
}

// answering marks r's connection as being answered (true) or done (false):
// a request with nothing left to read only waits for the gateway, so it is
// not shed.
func answering(r *http.Request, on bool) {
	if tc, ok := r.Context().Value(connKey{}).(*trackedConn); ok {
		tc.a.mu.Lock()
		tc.serving = on
		tc.a.mu.Unlock()
	}
}

// authenticated records that r carried a valid device or user token: its
// connection leaves the unauthenticated pool for good.
func authenticated(r *http.Request) {
	if tc, ok := r.Context().Value(connKey{}).(*trackedConn); ok {
		tc.authenticate()
	}
}

// bodyDeadline bounds the reading of a request body to BodyTimeout, so that
// a client trickling a body one byte at a time cannot hold a handler and
// its connection. The deadline is lifted once the body is read (or closed):
// the rest of the request, a streamed export, or a hijacked WebSocket, is
// bounded by its own rules. Requests without a body get none. (A server-wide
// http.Server.ReadTimeout would instead stay on for the whole request, and
// net/http's background read would cancel a long export when it fires.)
func (g *Gateway) bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			answering(r, true)
			defer answering(r, false)
			next.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(g.cfg.BodyTimeout)); err != nil {
			next.ServeHTTP(w, r) // not a net/http server connection (a test recorder)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body has been read to its
// end. A body left unread keeps it: net/http then discards the rest under
// the same deadline before it reads the connection's next request.
type deadlineBody struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}

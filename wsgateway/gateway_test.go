package wsgateway_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
)

// env is a gateway on a real Redis and a SQLite store.
type env struct {
	t     testing.TB
	redis *redistest.Server
	rdb   *redisq.Client
	store *sqlite.Store
	gw    *wsgateway.Gateway
	base  string      // http://127.0.0.1:port
	log   *zap.Logger // the gateway's; nil: none
	stop  func()
}

func newEnv(t testing.TB, cfg wsgateway.Config) *env {
	t.Helper()
	return newEnvLogged(t, cfg, nil)
}

// newEnvLogged is newEnv with the gateway logging to log.
func newEnvLogged(t testing.TB, cfg wsgateway.Config, log *zap.Logger) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, redis: redistest.Start(t), log: log}
	var err error
	e.store, err = sqlite.Open(ctx, t.TempDir()+"/test.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.rdb, err = redisq.Open(ctx, e.redis.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.rdb.Close)
	e.startGateway(cfg)
	return e
}

func (e *env) startGateway(cfg wsgateway.Config) {
	e.t.Helper()
	var err error
	if cfg.ID == "" {
		cfg.ID = "gw-test"
	}
	e.gw, err = wsgateway.New(cfg, e.rdb, e.rdb, e.store, e.log)
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.gw.Serve(ctx, ln, nil) }()
	e.base = "http://" + ln.Addr().String()
	stopped := false
	e.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("gateway stopped with %v", err)
		}
	}
	e.t.Cleanup(e.stop)
}

// addDevice registers a device and returns its token.
func (e *env) addDevice(id, group string) string {
	e.t.Helper()
	tok := token.New(token.DevicePrefix)
	if err := e.store.AddDevice(context.Background(), storage.Device{ID: id, Group: group, CreatedAt: time.Now().UnixMilli()}, token.Hash(tok)); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// addUser creates a user and returns its API token.
func (e *env) addUser(name, role string, groups ...string) string {
	e.t.Helper()
	tok := token.New(token.UserPrefix)
	if _, err := e.store.AddUser(context.Background(), storage.User{Name: name, Role: role, Groups: groups}, token.Hash(tok), nil); err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *env) wsURL() string { return "ws" + strings.TrimPrefix(e.base, "http") + "/ws/device" }

// dial connects a device; it returns the connection and the HTTP response.
func (e *env) dial(tok string) (*websocket.Conn, *http.Response, error) {
	h := http.Header{}
	if tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	return websocket.DefaultDialer.Dial(e.wsURL(), h)
}

func (e *env) mustDial(tok string) *devConn {
	e.t.Helper()
	ws, _, err := e.dial(tok)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return &devConn{t: e.t, ws: ws}
}

// devConn is a test device.
type devConn struct {
	t  testing.TB
	ws *websocket.Conn
}

func (d *devConn) send(frame string) {
	d.t.Helper()
	if err := d.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		d.t.Fatalf("write: %v", err)
	}
}

// reply is any gateway-to-device frame.
type reply struct {
	Type    string   `json:"type"`
	IDs     []string `json:"ids"`
	ID      string   `json:"id"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Name    string   `json:"name"`
}

func (d *devConn) read() reply {
	d.t.Helper()
	_ = d.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := d.ws.ReadMessage()
	if err != nil {
		d.t.Fatalf("read: %v", err)
	}
	var r reply
	if err := json.Unmarshal(b, &r); err != nil {
		d.t.Fatalf("reply %s: %v", b, err)
	}
	return r
}

// checkFor polls cond until it holds or the timeout passes.
func checkFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.CheckFor(t, timeout, what, cond)
}

func loc(id string, lat, lng float64) string {
	b, _ := json.Marshal(map[string]any{"type": "location", "id": id, "ts": time.Now().UnixMilli(),
		"data": map[string]any{"lat": lat, "lng": lng}})
	return string(b)
}

// queued returns the items on the ingest list, oldest first.
func (e *env) queued() []protocol.Item {
	e.t.Helper()
	raws, err := e.rdb.Redis().Do(context.Background(), e.rdb.Redis().B().Lrange().Key(e.rdb.Keys().Queue()).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]protocol.Item, 0, len(raws))
	for i := len(raws) - 1; i >= 0; i-- {
		it, err := protocol.DecodeItem([]byte(raws[i]))
		if err != nil {
			e.t.Fatalf("queued item %s: %v", raws[i], err)
		}
		out = append(out, it)
	}
	return out
}

package wsgateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

const embedder = "https://admin.example.com"

func do(t *testing.T, method, url string, hdr map[string]string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestCORSOfTheQueryAPI(t *testing.T) {
	e := newEnv(t, wsgateway.Config{CORSOrigins: []string{"HTTPS://Admin.Example.com:443", "http://localhost:3000"}})
	tok := e.addUser("root", storage.RoleAdmin)
	bearer := "Bearer " + tok

	t.Run("allowed origin gets its origin back, never credentials", func(t *testing.T) {
		resp := do(t, "GET", e.base+"/api/v1/devices", map[string]string{"Origin": embedder, "Authorization": bearer})
		h := resp.Header
		if resp.StatusCode != 200 || h.Get("Access-Control-Allow-Origin") != embedder {
			t.Fatalf("status %d, Allow-Origin %q, want 200 and %s", resp.StatusCode, h.Get("Access-Control-Allow-Origin"), embedder)
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("Allow-Credentials %q, want none", h.Get("Access-Control-Allow-Credentials"))
		}
		if !strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Fatalf("Vary %q, want Origin", h.Values("Vary"))
		}
	})
	t.Run("other origin gets no CORS headers", func(t *testing.T) {
		resp := do(t, "GET", e.base+"/api/v1/devices", map[string]string{"Origin": "https://evil.example", "Authorization": bearer})
		if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("Allow-Origin %q for another origin, want none", v)
		}
		if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
			t.Fatalf("Vary %q, want Origin", resp.Header.Values("Vary"))
		}
	})
	t.Run("preflight", func(t *testing.T) {
		pre := map[string]string{"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "authorization,content-type"}
		resp := do(t, "OPTIONS", e.base+"/api/v1/devices/d1/commands", pre)
		h := resp.Header
		if resp.StatusCode != 204 || h.Get("Access-Control-Allow-Origin") != "http://localhost:3000" ||
			!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") || h.Get("Access-Control-Allow-Credentials") != "" {
			t.Fatalf("preflight: %d %v", resp.StatusCode, h)
		}
		pre["Origin"] = "https://evil.example"
		resp = do(t, "OPTIONS", e.base+"/api/v1/devices", pre)
		if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("preflight from another origin: %d %v, want 204 without CORS headers", resp.StatusCode, resp.Header)
		}
	})
	t.Run("ingest and login are not opened", func(t *testing.T) {
		for _, p := range []string{"/api/v1/ingest", "/api/v1/login"} {
			resp := do(t, "POST", e.base+p, map[string]string{"Origin": embedder})
			if v := resp.Header.Get("Access-Control-Allow-Origin"); v != "" {
				t.Fatalf("%s: Allow-Origin %q, want none", p, v)
			}
		}
	})
	t.Run("the session cookie stays same-origin", func(t *testing.T) {
		resp := do(t, "GET", e.base+"/api/v1/devices", map[string]string{"Origin": embedder, "Cookie": "devtrack_session=whatever"})
		if resp.StatusCode != 403 {
			t.Fatalf("cookie from an allowed origin: %d, want 403", resp.StatusCode)
		}
	})
	t.Run("allowed origins may frame the UI", func(t *testing.T) {
		resp := do(t, "GET", e.base+"/", nil)
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors https://admin.example.com http://localhost:3000") || resp.Header.Get("X-Frame-Options") != "" {
			t.Fatalf("CSP %q, X-Frame-Options %q: want the origins as frame-ancestors and no X-Frame-Options",
				csp, resp.Header.Get("X-Frame-Options"))
		}
	})
}

func TestWithoutCORSOriginsNothingChanges(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addUser("root", storage.RoleAdmin)
	resp := do(t, "GET", e.base+"/api/v1/devices", map[string]string{"Origin": embedder, "Authorization": "Bearer " + tok})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("%d Allow-Origin %q: want 200 without CORS", resp.StatusCode, resp.Header.Get("Access-Control-Allow-Origin"))
	}
	resp = do(t, "GET", e.base+"/", nil)
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || resp.Header.Get("X-Frame-Options") != "DENY" {
		t.Fatalf("CSP %q, X-Frame-Options %q: want framing denied", csp, resp.Header.Get("X-Frame-Options"))
	}
}

func TestBadCORSOriginIsRefused(t *testing.T) {
	for _, o := range []string{"*", "https://a.example/path", "ftp://a.example", "a.example", "https://*.example.com"} {
		if _, err := wsgateway.ParseCORSOrigins("http://ok.example," + o); err == nil {
			t.Errorf("%q accepted", o)
		}
	}
	got, err := wsgateway.ParseCORSOrigins(" https://A.example:443/ , http://b.example:8080,https://a.example")
	if err != nil || strings.Join(got, " ") != "https://a.example http://b.example:8080" {
		t.Fatalf("got %q %v", got, err)
	}
}

func TestSubscribeOnConnect(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "group-a")
	e.addDevice("a2", "group-a")
	e.addDevice("b1", "group-b")
	op := e.addUser("alice", storage.RoleOperator, "group-a")
	dial := func(query string) *websocket.Conn {
		t.Helper()
		ws, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live?token="+op+"&"+query, nil)
		if err != nil {
			t.Fatalf("dial ?%s: %v (%v)", query, err, resp)
		}
		t.Cleanup(func() { ws.Close() })
		return ws
	}

	// No frame is ever sent on these sockets.
	ws := dial("subscribe=a1,b1")
	if m := readLive(t, ws); m.Type != "error" || m.Code != "forbidden" || len(m.Devices) != 1 || m.Devices[0] != "b1" {
		t.Fatalf("first message: %s, want forbidden b1", m.Raw)
	}
	if m := readLive(t, ws); m.Type != "snapshot" || !strings.Contains(m.Raw, `"a1"`) || strings.Contains(m.Raw, `"b1"`) {
		t.Fatalf("snapshot %s: want a1 only", m.Raw)
	}
	all := dial("all=1")
	if m := readLive(t, all); m.Type != "snapshot" || !strings.Contains(m.Raw, `"a1"`) || !strings.Contains(m.Raw, `"a2"`) || strings.Contains(m.Raw, `"b1"`) {
		t.Fatalf("all=1 snapshot %s: want a1 and a2 only", m.Raw)
	}
	e.subscribed("a1")
	e.publish("b1", "secret", 0)
	e.publish("a1", "visible", 0)
	for _, c := range []*websocket.Conn{ws, all} {
		if m := readLive(t, c); m.Type != "location" || m.Device != "a1" || m.ID != "visible" {
			t.Fatalf("live: %s, want a1's location and never b1's", m.Raw)
		}
	}

	// A bad parameter is refused before the upgrade.
	_, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(e.base, "http")+"/ws/live?token="+op+"&all=yes", nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Fatalf("all=yes: %v %v, want 400", err, resp)
	}
}

func TestEmbeddableClientIsServed(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	// Importable from any page (module scripts are fetched with CORS).
	resp := do(t, "GET", e.base+"/client/devtrack-live.js", map[string]string{"Origin": "https://elsewhere.example"})
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Content-Type"), "javascript") || resp.Header.Get("ETag") == "" {
		t.Fatalf("client module: %d %v", resp.StatusCode, resp.Header)
	}
	for _, p := range []string{"/client/", "/client/index.html"} {
		resp = do(t, "GET", e.base+p, nil)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") ||
			resp.Header.Get("Access-Control-Allow-Origin") != "" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Fatalf("usage page %s: %d %v", p, resp.StatusCode, resp.Header)
		}
	}
	// The admin UI's own index.html is still itself.
	req, _ := http.NewRequest("GET", e.base+"/index.html", nil)
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Body.Close()
	b := make([]byte, 4096)
	n, _ := io.ReadFull(r2.Body, b)
	if r2.StatusCode != 200 || !strings.Contains(string(b[:n]), "Sign in to devtrack") {
		t.Fatalf("/index.html: %d", r2.StatusCode)
	}
}

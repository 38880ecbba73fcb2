package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// newLegacyEnv is an env whose gateway also runs the legacy listener on a
// free loopback port; logs holds what the gateway logged at info and above.
func newLegacyEnv(t *testing.T, cfg wsgateway.Config) (*env, *observer.ObservedLogs) {
	t.Helper()
	core, logs := observer.New(zap.InfoLevel)
	cfg.Legacy.Listen = "127.0.0.1:0"
	if cfg.RevokePoll == 0 {
		cfg.RevokePoll = 200 * time.Millisecond
	}
	e := newEnvLogged(t, cfg, zap.New(core))
	checkFor(t, 5*time.Second, "legacy listener", func() bool { return e.gw.LegacyAddr() != nil })
	return e, logs
}

// legacyURL is a URL of the legacy listener; any path will do.
func (e *env) legacyURL(pathAndQuery string) string {
	return "ws://" + e.gw.LegacyAddr().String() + pathAndQuery
}

// addLegacyKey issues a new legacy key for the device and returns it.
func (e *env) addLegacyKey(device string) string {
	e.t.Helper()
	key := token.New(wsgateway.LegacyKeyPrefix)
	if _, err := e.store.SetLegacyKey(context.Background(), device, token.Hash(key)); err != nil {
		e.t.Fatal(err)
	}
	return key
}

// firmware is legacy firmware as it runs today: no token, frames
// {"deviceId":...,"type":N,"data":{...}}, a text reply per frame.
type firmware struct {
	t  *testing.T
	ws *websocket.Conn
}

func dialFirmware(t *testing.T, url string) (*firmware, *http.Response, error) {
	t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { ws.Close() })
	return &firmware{t: t, ws: ws}, resp, nil
}

func mustDialFirmware(t *testing.T, url string) *firmware {
	t.Helper()
	fw, _, err := dialFirmware(t, url)
	if err != nil {
		t.Fatalf("legacy dial: %v", err)
	}
	return fw
}

// send writes one legacy frame of the given numeric type.
func (f *firmware) send(device string, typ int, data map[string]any) {
	f.t.Helper()
	b, _ := json.Marshal(map[string]any{"deviceId": device, "type": typ, "data": data})
	if err := f.ws.WriteMessage(websocket.TextMessage, b); err != nil {
		f.t.Fatalf("firmware write: %v", err)
	}
}

// read returns the next text message.
func (f *firmware) read() string {
	f.t.Helper()
	_ = f.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	kind, b, err := f.ws.ReadMessage()
	if err != nil {
		f.t.Fatalf("firmware read: %v", err)
	}
	if kind != websocket.TextMessage {
		f.t.Fatalf("firmware got a message of kind %d, want text", kind)
	}
	return string(b)
}

// queuedLogs are the logs on the ingest list of one device, oldest first.
func (e *env) queuedLogs(device string) []protocol.Log {
	e.t.Helper()
	var out []protocol.Log
	for _, it := range e.queued() {
		if it.Device != device || it.Type != protocol.TypeLog {
			continue
		}
		var l protocol.Log
		if err := json.Unmarshal(it.Data, &l); err != nil {
			e.t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func jsonEq(t *testing.T, got json.RawMessage, want string) bool {
	t.Helper()
	var a, b any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	ab, _ := json.Marshal(a)
	bb, _ := json.Marshal(b)
	return string(ab) == string(bb)
}

// Legacy firmware, unchanged, with its device's key in the URL: each log
// frame is answered with the text reply and queued as a log of that device
// (msg or message as the message, every other key in fields); the device
// is online (link, presence, device list); a command reaches it; a frame
// naming another device is refused and logged; a wrong key is refused.
func TestLegacyFirmwareWithItsKey(t *testing.T) {
	e, logs := newLegacyEnv(t, wsgateway.Config{})
	e.addDevice("D123", "g")
	e.addDevice("D999", "g")
	key := e.addLegacyKey("D123")
	admin := e.addUser("root", storage.RoleAdmin)

	live := e.dialLive(admin)
	_ = live.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"D123"}})
	if m := readLive(t, live); m.Type != "snapshot" || !strings.Contains(m.Raw, `"online":false`) {
		t.Fatalf("snapshot: %s, want D123 offline", m.Raw)
	}
	e.subscribed("D123")

	for _, c := range []struct{ name, query string }{
		{"no key", ""}, {"wrong key", "?key=" + wsgateway.LegacyKeyPrefix + "nope"}, {"the device token", "?key=" + e.addDevice("D5", "g")},
	} {
		if _, resp, err := dialFirmware(t, e.legacyURL("/ws"+c.query)); err == nil || resp == nil || resp.StatusCode != 401 {
			t.Errorf("%s: %v, want 401 and no upgrade", c.name, err)
		}
	}

	fw := mustDialFirmware(t, e.legacyURL("/any/path?key="+key))
	if m := readLive(t, live); m.Type != "presence" || !strings.Contains(m.Raw, `"online":true`) {
		t.Fatalf("after connect: %s, want presence online", m.Raw)
	}
	if v := e.link("D123"); !strings.HasPrefix(v, e.gw.Instance()+"#") {
		t.Fatalf("device link %q, want one of instance %s", v, e.gw.Instance())
	}
	if status, body := e.get(admin, "/api/v1/devices/D123"); status != 200 || !strings.Contains(body, `"online":true`) {
		t.Fatalf("device D123: %d %s, want online", status, body)
	}

	fw.send("D123", 4, map[string]any{"msg": "door 2 opened", "door": 2, "battery": "80%"})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q, want log_upload_response", got)
	}
	fw.send("D123", 4, map[string]any{"message": "低电量", "level": "WARNING", "voltage": 3.3})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q, want log_upload_response", got)
	}

	// Another device's id on this key's connection: refused, and said so.
	fw.send("D999", 4, map[string]any{"msg": "impersonation"})
	fw.send("D123", 4, map[string]any{"msg": "still here"})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q, want log_upload_response", got)
	}
	got := e.queuedLogs("D123")
	if len(got) != 3 || len(e.queuedLogs("D999")) != 0 {
		t.Fatalf("queued logs of D123: %+v, of D999: %+v; want 3 and none", got, e.queuedLogs("D999"))
	}
	if got[0].Level != "info" || got[0].Message != "door 2 opened" || !jsonEq(t, got[0].Fields, `{"door":2,"battery":"80%"}`) {
		t.Errorf("first log %+v (fields %s)", got[0], got[0].Fields)
	}
	if got[1].Level != "warn" || got[1].Message != "低电量" || !jsonEq(t, got[1].Fields, `{"level":"WARNING","voltage":3.3}`) {
		t.Errorf("second log %+v (fields %s)", got[1], got[1].Fields)
	}
	if got[2].Message != "still here" || len(got[2].Fields) != 0 {
		t.Errorf("third log %+v (fields %s)", got[2], got[2].Fields)
	}
	if n := logs.FilterMessageSnippet("deviceId is not the device of the connection's key").FilterField(zap.String("frame_device", "D999")).Len(); n != 1 {
		t.Errorf("%d log lines about the frame of D999, want 1", n)
	}

	if status, body := e.post(admin, "/api/v1/devices/D123/commands", `{"name":"reboot","args":{"delay":5}}`); status != 202 {
		t.Fatalf("command: %d %s", status, body)
	}
	var cmd struct {
		Type, DeviceID, ID, Name string
		Args                     map[string]any
	}
	if raw := fw.read(); json.Unmarshal([]byte(raw), &cmd) != nil || cmd.Type != "command" || cmd.Name != "reboot" ||
		cmd.DeviceID != "D123" || !strings.HasPrefix(cmd.ID, "c-") || cmd.Args["delay"] != 5.0 {
		t.Fatalf("firmware got %s, want the reboot command", raw)
	}

	fw.ws.Close()
	checkFor(t, 5*time.Second, "link removed after close", func() bool { return e.link("D123") == "" })
	if m := readLive(t, live); m.Type != "presence" || !strings.Contains(m.Raw, `"online":false`) {
		t.Fatalf("after close: %s, want presence offline", m.Raw)
	}
}

// A new legacy key closes the connection made with the old one within the
// revocation window (4001) and refuses the old key; the new one works, and
// a rotation of the device's token leaves it open. Revoking the device
// closes it too.
func TestLegacyKeyReplacedOrDeviceRevokedClosesItsConnection(t *testing.T) {
	e, _ := newLegacyEnv(t, wsgateway.Config{})
	ctx := context.Background()
	e.addDevice("D1", "g")
	old := e.addLegacyKey("D1")
	fw := mustDialFirmware(t, e.legacyURL("/?key="+old))
	fresh := e.addLegacyKey("D1")
	if code := waitClosed(t, fw.ws, 5*time.Second); code != 4001 {
		t.Fatalf("connection with the old key closed with %d, want 4001", code)
	}
	if _, resp, err := dialFirmware(t, e.legacyURL("/?key="+old)); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("old key: %v, want 401", err)
	}
	fw = mustDialFirmware(t, e.legacyURL("/?key="+fresh))
	if _, err := e.store.RotateDeviceToken(ctx, "D1", token.Hash(token.New(token.DevicePrefix))); err != nil {
		t.Fatal(err)
	}
	// Rotations are polled every 200 ms: the connection outlives several.
	_ = fw.ws.SetReadDeadline(time.Now().Add(time.Second))
	if _, _, err := fw.ws.ReadMessage(); err == nil || !isTimeout(err) {
		t.Fatalf("connection with the new key after a token rotation: %v, want it open", err)
	}
	fw = mustDialFirmware(t, e.legacyURL("/?key="+fresh)) // the timed-out read broke the socket
	fw.send("D1", 4, map[string]any{"msg": "hi"})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q", got)
	}
	if err := e.store.RevokeDevice(ctx, "D1"); err != nil {
		t.Fatal(err)
	}
	if code := waitClosed(t, fw.ws, 5*time.Second); code != 4001 {
		t.Fatalf("connection of a revoked device closed with %d, want 4001", code)
	}
}

// Fleet mode (--legacy-allow 127.0.0.0/8): a connection from loopback needs
// no key; its first frame binds it to that registered device, which is then
// online; frames of another device on it are refused; an unknown device is
// refused with 1008. Locations map by --legacy-types and the default keys.
func TestLegacyFleetModeAcceptsAllowedAddresses(t *testing.T) {
	e, _ := newLegacyEnv(t, wsgateway.Config{Legacy: wsgateway.LegacyConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Types: map[int64]string{4: protocol.TypeLog, 5: protocol.TypeLocation},
	}})
	e.addDevice("F1", "g")
	e.addDevice("F2", "g")
	fw := mustDialFirmware(t, e.legacyURL("/legacy"))
	fw.send("F1", 5, map[string]any{"latitude": 31.2304, "longitude": 121.4737, "speed": 3.5, "satellites": 7})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q", got)
	}
	if v := e.link("F1"); !strings.HasPrefix(v, e.gw.Instance()+"#") {
		t.Fatalf("link of F1 %q, want one of this gateway", v)
	}
	fw.send("F2", 4, map[string]any{"msg": "not mine"})
	fw.send("F1", 4, map[string]any{"msg": "mine"})
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q", got)
	}
	items := e.queued()
	if len(items) != 2 || items[0].Type != protocol.TypeLocation || items[1].Type != protocol.TypeLog ||
		items[0].Device != "F1" || items[1].Device != "F1" {
		t.Fatalf("queued %+v, want F1's location then its log", items)
	}
	if !jsonEq(t, items[0].Data, `{"lat":31.2304,"lng":121.4737,"speed":3.5}`) {
		t.Errorf("location data %s", items[0].Data)
	}
	if e.link("F2") != "" {
		t.Errorf("F2 has a link: only the bound device is online")
	}

	other := mustDialFirmware(t, e.legacyURL("/"))
	other.send("ghost", 4, map[string]any{"msg": "who"})
	if code := waitClosed(t, other.ws, 5*time.Second); code != 1008 {
		t.Fatalf("unknown device: closed with %d, want 1008", code)
	}
	if _, resp, err := dialFirmware(t, e.legacyURL("/?key=wrong")); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("a wrong key in fleet mode: %v, want 401", err)
	}
}

// Fleet mode refuses every address outside the allowlist with 403 before
// the upgrade, key or not.
func TestLegacyFleetModeRefusesOtherAddresses(t *testing.T) {
	e, logs := newLegacyEnv(t, wsgateway.Config{Legacy: wsgateway.LegacyConfig{
		Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")},
	}})
	e.addDevice("F1", "g")
	key := e.addLegacyKey("F1")
	for _, q := range []string{"", "?key=" + key} {
		if _, resp, err := dialFirmware(t, e.legacyURL("/"+q)); err == nil || resp == nil || resp.StatusCode != 403 {
			t.Errorf("from loopback (%q): %v, want 403", q, err)
		}
	}
	if n := logs.FilterMessageSnippet("address not in --legacy-allow").Len(); n == 0 {
		t.Errorf("refused address not logged")
	}
	if e.link("F1") != "" {
		t.Errorf("F1 has a link after refused connections")
	}
}

// Refused frames get no reply and do not close the connection; the frames
// around them are answered.
func TestLegacyBadFramesAreSkipped(t *testing.T) {
	e, _ := newLegacyEnv(t, wsgateway.Config{})
	e.addDevice("D1", "g")
	fw := mustDialFirmware(t, e.legacyURL("/?key="+e.addLegacyKey("D1")))
	for _, bad := range []string{`not json`, `{"deviceId":"D1","type":9,"data":{}}`, `{"deviceId":"D1","type":"x"}`,
		`{"type":4,"data":{}}`, `{"deviceId":"D1","type":4,"data":[1]}`, fmt.Sprintf(`{"deviceId":"D1","type":4,"data":{"msg":%q}}`, strings.Repeat("x", 9000))} {
		if err := fw.ws.WriteMessage(websocket.TextMessage, []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	fw.send("D1", 4, nil)
	if got := fw.read(); got != "log_upload_response" {
		t.Fatalf("reply %q", got)
	}
	if got := e.queuedLogs("D1"); len(got) != 1 || got[0].Message != "" {
		t.Fatalf("queued %+v, want the one empty log", got)
	}
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/gorilla/websocket"
)

// lineAfter returns the rest of the first line of s that starts with prefix.
func lineAfter(t *testing.T, s, prefix string) string {
	t.Helper()
	for _, l := range strings.Split(s, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return strings.TrimSpace(rest)
		}
	}
	t.Fatalf("no line %q... in:\n%s", prefix, s)
	return ""
}

// Legacy firmware as it runs today (no token, numeric type 4, the text
// reply), against the built binary: device add --legacy-key prints a key
// (the token stays alone on the last line); through a gateway with
// --legacy-listen and a worker, the firmware's logs are archived with their
// unknown keys in fields, the device shows online, a command reaches it, a
// wrong key and a frame of another device are refused; device legacy-key
// issues a new key, and the socket of the old one closes within seconds.
func TestLegacyFirmwareThroughTheBinary(t *testing.T) {
	c := newCluster(t)
	c.cli("migrate")
	out := c.cli("device", "add", "D123", "--legacy-key")
	key := lineAfter(t, out, "legacy key: ")
	if tok := lastLine(out); !strings.HasPrefix(tok, "dtd_") || !strings.HasPrefix(key, "dtl_") {
		t.Fatalf("device add --legacy-key printed:\n%s\nwant a dtl_ key line and the dtd_ token alone on the last line", out)
	}
	c.cli("device", "add", "D999")
	admin := lastLine(c.cli("user", "add", "root", "--role", "admin"))
	legacyAddr := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	_, base := c.startGateway("gw1", "--legacy-listen", legacyAddr)
	c.start("worker1", "worker")

	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+legacyAddr+"/?key=dtl_wrong", nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("wrong key: %v, want 401", err)
	}
	fw, _, err := websocket.DefaultDialer.Dial("ws://"+legacyAddr+"/device/log?key="+key, nil)
	if err != nil {
		t.Fatalf("legacy dial: %v", err)
	}
	defer fw.Close()
	send := func(frame string) {
		t.Helper()
		if err := fw.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		t.Helper()
		_ = fw.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := fw.ReadMessage()
		if err != nil {
			t.Fatalf("firmware read: %v", err)
		}
		return string(b)
	}
	send(`{"deviceId":"D123","type":4,"data":{"msg":"door 2 opened","door":2,"battery":"80%"}}`)
	if got := read(); got != "log_upload_response" {
		t.Fatalf("reply %q, want log_upload_response", got)
	}
	send(`{"deviceId":"D999","type":4,"data":{"msg":"not mine"}}`)
	send(`{"deviceId":"D123","type":4,"data":{"message":"boot","fw":"1.2"}}`)
	if got := read(); got != "log_upload_response" {
		t.Fatalf("reply %q, want log_upload_response", got)
	}

	st, err := backend.Open(context.Background(), c.dsn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs []storage.LogEntry
	checkFor(t, 10*time.Second, "both logs of D123 archived", func() bool {
		logs, _, err = st.Logs(context.Background(), storage.LogQuery{Device: "D123", Limit: 10})
		return err == nil && len(logs) == 2
	})
	byMsg := map[string]storage.LogEntry{}
	for _, l := range logs {
		byMsg[l.Message] = l
	}
	var fields map[string]any
	if l, ok := byMsg["door 2 opened"]; !ok || json.Unmarshal(l.Fields, &fields) != nil || fields["door"] != 2.0 || fields["battery"] != "80%" || l.Level != "info" {
		t.Errorf("archived logs %+v: want door 2 opened with door and battery in fields", logs)
	}
	if other, _, err := st.Logs(context.Background(), storage.LogQuery{Device: "D999", Limit: 10}); err != nil || len(other) != 0 {
		t.Errorf("logs of D999: %+v, %v; want none (sent on D123's key)", other, err)
	}

	req, _ := http.NewRequest("GET", base+"/api/v1/devices/D123", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var dev struct{ Online bool }
	_ = json.NewDecoder(resp.Body).Decode(&dev)
	resp.Body.Close()
	if !dev.Online {
		t.Errorf("D123 not online while its legacy firmware is connected")
	}
	req, _ = http.NewRequest("POST", base+"/api/v1/devices/D123/commands", strings.NewReader(`{"name":"reboot","args":{"delay":5}}`))
	req.Header.Set("Authorization", "Bearer "+admin)
	if resp, err = http.DefaultClient.Do(req); err != nil || resp.StatusCode != 202 {
		t.Fatalf("command: %v %v", resp, err)
	}
	resp.Body.Close()
	if got := read(); !strings.Contains(got, `"type":"command"`) || !strings.Contains(got, `"name":"reboot"`) || !strings.Contains(got, `"deviceId":"D123"`) {
		t.Fatalf("firmware got %s, want the reboot command", got)
	}

	fresh := lastLine(c.cli("device", "legacy-key", "D123"))
	if !strings.HasPrefix(fresh, "dtl_") || fresh == key {
		t.Fatalf("device legacy-key printed %q, want a new dtl_ key on the last line", fresh)
	}
	_ = fw.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := fw.ReadMessage()
		var ce *websocket.CloseError
		if errors.As(err, &ce) && ce.Code == 4001 {
			break
		}
		if err != nil {
			t.Fatalf("socket of the replaced key: %v, want close 4001 within 5 s", err)
		}
	}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+legacyAddr+"/?key="+key, nil); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Fatalf("replaced key: %v, want 401", err)
	}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+legacyAddr+"/?key="+fresh, nil)
	if err != nil {
		t.Fatalf("new key: %v", err)
	}
	ws.Close()
	if code, stderr := c.cliFails("device", "legacy-key", "nope"); code != 1 || !strings.Contains(stderr, "no device") {
		t.Errorf("device legacy-key nope: exit %d, %q; want 1 and a clear line", code, stderr)
	}
	for _, args := range [][]string{
		{"gateway", "--legacy-allow", "10.0.0.0/8"},
		{"gateway", "--legacy-listen", "127.0.0.1:0", "--legacy-types", "4=blob"},
		{"gateway", "--legacy-listen", "127.0.0.1:0", "--legacy-allow", "10.0.0.0/33"},
	} {
		if code, stderr := c.cliFails(args...); code != 2 || !strings.Contains(stderr, "--legacy-") {
			t.Errorf("devtrack %v: exit %d, %q; want 2 and the flag named", args, code, stderr)
		}
	}
}

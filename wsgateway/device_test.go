package wsgateway_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

func TestHandshakeRefusesBadTokensBeforeUpgrade(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	good := e.addDevice("d1", "g")
	revoked := e.addDevice("d2", "g")
	if err := e.store.RevokeDevice(context.Background(), "d2"); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"none": "", "wrong": "dtd_not-a-real-token", "revoked": revoked, "prefix of good": good[:20]} {
		t.Run(name, func(t *testing.T) {
			ws, resp, err := e.dial(tok)
			if err == nil {
				ws.Close()
				t.Fatal("upgraded with a bad token")
			}
			if !errors.Is(err, websocket.ErrBadHandshake) || resp == nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("got %v, status %v; want 401 and no upgrade", err, resp)
			}
		})
	}
	t.Run("query token", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.Dial(e.wsURL()+"?token="+good, nil)
		if err != nil {
			t.Fatalf("?token= refused: %v", err)
		}
		ws.Close()
	})
	if n := len(e.queued()); n != 0 {
		t.Fatalf("%d items queued by refused handshakes", n)
	}
}

func TestDeviceIDComesFromToken(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addDevice("truck-1", "g")
	e.addDevice("truck-2", "g")
	d := e.mustDial(tok)
	d.send(`{"type":"location","id":"m1","device":"truck-2","deviceId":"truck-2","data":{"lat":31.2,"lng":121.4,"device":"truck-2"}}`)
	if r := d.read(); r.Type != "ack" || len(r.IDs) != 1 || r.IDs[0] != "m1" {
		t.Fatalf("want ack m1, got %+v", r)
	}
	items := e.queued()
	if len(items) != 1 || items[0].Device != "truck-1" {
		t.Fatalf("queued %+v; want one item of truck-1", items)
	}
	if strings.Contains(string(items[0].Data), "truck-2") {
		t.Fatalf("claimed device leaked into data: %s", items[0].Data)
	}
}

func TestBadFramesGetTheirCodeAndKeepTheConnection(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	future := time.Now().Add(24 * time.Hour).UnixMilli()
	past := time.Now().Add(-365 * 24 * time.Hour).UnixMilli()
	cases := []struct {
		name, frame, code string
	}{
		{"not json", `{"type":`, "invalid_json"},
		{"scalar", `42`, "invalid_json"},
		{"unknown type", `{"type":"teleport","id":"x1"}`, "invalid_frame"},
		{"lat out of range", `{"type":"location","id":"x2","data":{"lat":91,"lng":0}}`, "invalid_frame"},
		{"lng out of range", `{"type":"location","id":"x3","data":{"lat":0,"lng":-180.5}}`, "invalid_frame"},
		{"NaN as string", `{"type":"location","id":"x4","data":{"lat":"NaN","lng":0}}`, "invalid_frame"},
		{"infinite", `{"type":"location","id":"x5","data":{"lat":1e999,"lng":0}}`, "invalid_frame"},
		{"lat missing", `{"type":"location","id":"x6","data":{"lng":0}}`, "invalid_frame"},
		{"ts far future", `{"type":"location","id":"x7","ts":` + itoa(future) + `,"data":{"lat":1,"lng":1}}`, "invalid_frame"},
		{"ts far past", `{"type":"location","id":"x8","ts":` + itoa(past) + `,"data":{"lat":1,"lng":1}}`, "invalid_frame"},
		{"ts a string", `{"type":"location","id":"x9","ts":"now","data":{"lat":1,"lng":1}}`, "invalid_frame"},
		{"id too long", `{"type":"location","id":"` + strings.Repeat("i", 65) + `","data":{"lat":1,"lng":1}}`, "invalid_frame"},
		{"id a number", `{"type":"location","id":7,"data":{"lat":1,"lng":1}}`, "invalid_frame"},
		{"unknown crs", `{"type":"location","id":"x10","data":{"lat":1,"lng":1,"crs":"mars"}}`, "invalid_frame"},
		{"log without level", `{"type":"log","id":"x11","data":{"message":"hi"}}`, "invalid_frame"},
		{"log bad level", `{"type":"log","id":"x12","data":{"level":"loud","message":"hi"}}`, "invalid_frame"},
		{"log fields array", `{"type":"log","id":"x13","data":{"level":"info","message":"hi","fields":[1]}}`, "invalid_frame"},
		{"too large", `{"type":"log","id":"x14","data":{"level":"info","message":"` + strings.Repeat("a", 70<<10) + `"}}`, "too_large"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d.send(c.frame)
			r := d.read()
			if r.Type != "error" || r.Code != c.code {
				t.Fatalf("want error %s, got %+v", c.code, r)
			}
			if r.Message == "" {
				t.Fatalf("error without message: %+v", r)
			}
			good := "good-" + itoa(int64(i))
			d.send(loc(good, 31.2, 121.4))
			if r := d.read(); r.Type != "ack" || len(r.IDs) != 1 || r.IDs[0] != good {
				t.Fatalf("next good frame: want ack %s, got %+v", good, r)
			}
		})
	}
	if n := len(e.queued()); n != len(cases) {
		t.Fatalf("%d items queued, want only the %d good ones", n, len(cases))
	}
}

func TestBatchAcksGoodItemsAndRefusesBadOnes(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	d.send(`{"type":"batch","items":[` + loc("b1", 1, 1) + `,{"type":"location","id":"b2","data":{"lat":100,"lng":1}},` +
		`{"type":"log","id":"b3","data":{"level":"warn","message":"<script>alert(1)</script>"}}]}`)
	var acked []string
	var refused []string
	for len(acked)+len(refused) < 3 {
		r := d.read()
		switch r.Type {
		case "ack":
			acked = append(acked, r.IDs...)
		case "error":
			refused = append(refused, r.ID)
		}
	}
	if strings.Join(acked, ",") != "b1,b3" || strings.Join(refused, ",") != "b2" {
		t.Fatalf("acked %v refused %v; want b1,b3 acked and b2 refused", acked, refused)
	}
}

// devtrack_gateway_ack_seconds counts each acked frame once, a batch's
// frames each, and not the refused ones; the time it adds up is no more than
// the test took.
func TestAckLatencyIsObservedOncePerAckedFrame(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	count, sum := e.metric("devtrack_gateway_ack_seconds_count"), e.metric("devtrack_gateway_ack_seconds_sum")
	start := time.Now()
	d.send(`{"type":"batch","items":[` + loc("b1", 1, 1) + `,` + loc("b2", 1, 2) + `,{"type":"location","id":"b3","data":{"lat":100,"lng":1}}]}`)
	d.send(loc("s1", 2, 2))
	for answered := 0; answered < 4; {
		r := d.read()
		switch r.Type {
		case "ack":
			answered += len(r.IDs)
		case "error":
			answered++
		}
	}
	took := time.Since(start).Seconds()
	if n := e.metric("devtrack_gateway_ack_seconds_count") - count; n != 3 {
		t.Errorf("ack_seconds counted %v frames, want the 3 acked", n)
	}
	if s := e.metric("devtrack_gateway_ack_seconds_sum") - sum; s <= 0 || s > 3*took {
		t.Errorf("ack_seconds added %v s for 3 frames acked within %v s", s, took)
	}
}

func TestGCJ02IsStoredAsWGS84WithOriginalKept(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	d.send(`{"type":"location","id":"w1","data":{"lat":31.2304,"lng":121.4737,"crs":"gcj02"}}`)
	if r := d.read(); r.Type != "ack" {
		t.Fatalf("want ack, got %+v", r)
	}
	items := e.queued()
	s := string(items[0].Data)
	for _, want := range []string{`"crs":"gcj02"`, `"orig_lat":31.2304`, `"orig_lng":121.4737`} {
		if !strings.Contains(s, want) {
			t.Fatalf("data %s lacks %s", s, want)
		}
	}
	if strings.Contains(s, `"lat":31.2304,`) {
		t.Fatalf("lat not converted: %s", s)
	}
}

func TestPingPong(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	d.send(`{"type":"ping"}`)
	if r := d.read(); r.Type != "pong" {
		t.Fatalf("want pong, got %+v", r)
	}
}

func TestRateLimit(t *testing.T) {
	e := newEnv(t, wsgateway.Config{FrameRate: 1, FrameBurst: 2, Limits: protocol.Limits{MaxBatch: 2}})
	d := e.mustDial(e.addDevice("d1", "g"))
	codes := map[string]int{}
	for i := range 5 {
		d.send(loc("r"+itoa(int64(i)), 1, 1))
		r := d.read()
		codes[r.Type+":"+r.Code]++
	}
	if codes["ack:"] != 2 || codes["error:rate_limited"] != 3 {
		t.Fatalf("got %v; want 2 acks then rate_limited", codes)
	}
}

func TestRevokedDeviceIsDisconnectedWithin5s(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	d.send(loc("a", 1, 1))
	d.read()
	start := time.Now()
	if err := e.store.RevokeDevice(context.Background(), "d1"); err != nil {
		t.Fatal(err)
	}
	_ = d.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := d.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 {
		t.Fatalf("want close 4001 within 5 s, got %v after %s", err, time.Since(start))
	}
	if _, resp, err := e.dial(""); err == nil || resp.StatusCode != 401 {
		t.Fatalf("reconnect should be refused")
	}
}

func TestRedisDownGivesUnavailableNotAck(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	d := e.mustDial(e.addDevice("d1", "g"))
	d.send(loc("before", 1, 1))
	if r := d.read(); r.Type != "ack" {
		t.Fatalf("want ack, got %+v", r)
	}
	e.redis.Stop()
	start := time.Now()
	d.send(loc("during", 1, 1))
	r := d.read()
	if r.Type != "error" || r.Code != "unavailable" || r.ID != "during" {
		t.Fatalf("want unavailable for 'during', got %+v", r)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("unavailable took %s, want < 2 s", took)
	}
	e.redis.Restart()
	checkFor(t, 10*time.Second, "acks again after Redis is back", func() bool {
		d.send(loc("after", 1, 1))
		return d.read().Type == "ack"
	})
	ids := map[string]int{}
	for _, it := range e.queued() {
		ids[it.ID]++
	}
	if ids["before"] != 1 || ids["during"] != 0 || ids["after"] < 1 {
		t.Fatalf("queued ids %v; want before once, during never, after", ids)
	}
}

func itoa(n int64) string { return strconvI(n) }

// A request with the device's token that is no WebSocket handshake (a
// probe, a broken client) gets 400 and leaves the live connection's link,
// and so the device's presence, alone.
func TestNonUpgradeRequestLeavesTheLiveLinkAlone(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addDevice("d1", "g")
	e.mustDial(tok)
	ctx := context.Background()
	var link string
	checkFor(t, 5*time.Second, "the device linked", func() bool {
		link, _ = e.rdb.Link(ctx, "d1")
		return link != ""
	})
	req, _ := http.NewRequest("GET", e.base+"/ws/device", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d; want 400", resp.StatusCode)
	}
	if now, err := e.rdb.Link(ctx, "d1"); err != nil || now != link {
		t.Fatalf("link = %q, %v; want the live connection's %q", now, err, link)
	}
}

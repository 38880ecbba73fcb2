package devclient_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/google/go-cmp/cmp"
	"github.com/gorilla/websocket"
)

// devclient has its own types (so that code outside the module can use
// them), converted at the socket. These tests pin them to the wire form:
// what the client writes is read by the gateway's own parser, field for
// field, and its constants are the gateway's.

func TestConstantsAreTheGatewaysOwn(t *testing.T) {
	for _, c := range []struct{ ours, gateway string }{
		{devclient.TypeLocation, protocol.TypeLocation},
		{devclient.TypeLog, protocol.TypeLog},
		{devclient.CodeInvalidJSON, protocol.CodeInvalidJSON},
		{devclient.CodeInvalidFrame, protocol.CodeInvalidFrame},
		{devclient.CodeTooLarge, protocol.CodeTooLarge},
		{devclient.CodeRateLimited, protocol.CodeRateLimited},
		{devclient.CodeUnavailable, protocol.CodeUnavailable},
	} {
		if c.ours != c.gateway {
			t.Errorf("devclient has %q where the gateway has %q", c.ours, c.gateway)
		}
	}
}

func TestWhatTheClientWritesTheGatewayParses(t *testing.T) {
	ts := time.Now().Add(-time.Minute).UnixMilli()
	msgs := make(chan []byte, 8)
	gw := newFakeGateway(t, func(ws *websocket.Conn) {
		read := func() {
			_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := ws.ReadMessage()
			if err != nil {
				t.Errorf("read: %v", err)
			}
			msgs <- msg
		}
		for range 3 {
			read()
		}
		_ = ws.WriteJSON(protocol.Command{Type: protocol.TypeCommand, ID: "c-9", Name: "locate", Args: json.RawMessage(`{"precise":true}`)})
		read()
		_, _, _ = ws.ReadMessage()
	})
	c := devclient.New(devclient.Config{URL: gw.url(), Token: "good",
		OnCommand: func(cmd devclient.Command) devclient.CommandResult {
			if cmd.ID != "c-9" || cmd.Name != "locate" || string(cmd.Args) != `{"precise":true}` {
				return devclient.CommandResult{Error: "got " + cmd.ID + " " + cmd.Name + " " + string(cmd.Args)}
			}
			return devclient.CommandResult{OK: true, Data: json.RawMessage(`{"lat": 31.2}`)}
		}})
	// Zero speed and heading are values, not absent.
	for _, f := range []devclient.Frame{
		{Type: devclient.TypeLocation, ID: "loc-1", TS: ts, Data: devclient.Location{Lat: 31.2304, Lng: 121.4737,
			Accuracy: new(12.5), Speed: new(0.0), Heading: new(0.0), Altitude: new(-3.0), CRS: "gcj02"}},
		{Type: devclient.TypeLog, ID: "log-1", TS: ts, Data: devclient.Log{Level: "warn", Message: "door 2 opened",
			Fields: map[string]any{"door": 2}}},
		{Type: devclient.TypeLocation, Data: devclient.Location{Lat: 1, Lng: 2}},
	} {
		if _, err := c.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	run(t, c)

	parse := func(what string) protocol.Parsed {
		t.Helper()
		var msg []byte
		select {
		case msg = <-msgs:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s from the client", what)
		}
		p := protocol.Limits{}.Parse(msg, time.Now(), nil)
		if len(p.Errors) > 0 {
			t.Fatalf("the gateway refuses the client's %s %s: %+v", what, msg, p.Errors)
		}
		return p
	}
	item := func(what string) (protocol.Item, []byte) {
		t.Helper()
		p := parse(what)
		if len(p.Items) != 1 {
			t.Fatalf("%s: %d items, want 1", what, len(p.Items))
		}
		return p.Items[0], p.Items[0].Data
	}

	it, data := item("location")
	var loc protocol.Location
	_ = json.Unmarshal(data, &loc)
	if it.ID != "loc-1" || it.TS != ts || it.Type != protocol.TypeLocation {
		t.Errorf("location item %+v", it)
	}
	wantLoc := protocol.Location{Accuracy: new(12.5), Speed: new(0.0), Heading: new(0.0), Altitude: new(-3.0),
		CRS: protocol.CRSGCJ02, OrigLat: new(31.2304), OrigLng: new(121.4737)}
	loc.Lat, loc.Lng = 0, 0 // converted from GCJ-02, tested in internal/protocol
	if d := cmp.Diff(wantLoc, loc); d != "" {
		t.Errorf("location data as the gateway reads it (-want +got):\n%s", d)
	}

	it, data = item("log")
	var lg protocol.Log
	_ = json.Unmarshal(data, &lg)
	if it.ID != "log-1" || it.TS != ts || it.Type != protocol.TypeLog {
		t.Errorf("log item %+v", it)
	}
	if d := cmp.Diff(protocol.Log{Level: "warn", Message: "door 2 opened", Fields: json.RawMessage(`{"door":2}`)}, lg); d != "" {
		t.Errorf("log data as the gateway reads it (-want +got):\n%s", d)
	}

	it, _ = item("location without id and ts")
	if it.ID == "" || len(it.ID) > protocol.DefaultMaxIDLen || it.TS == 0 {
		t.Errorf("assigned id %q and ts %d", it.ID, it.TS)
	}

	p := parse("command result")
	if len(p.Results) != 1 {
		t.Fatalf("%d command results, want 1", len(p.Results))
	}
	want := protocol.CommandResult{Type: protocol.TypeCommandResult, ID: "c-9", OK: true, Data: json.RawMessage(`{"lat":31.2}`)}
	if d := cmp.Diff(want, p.Results[0]); d != "" {
		t.Errorf("command result as the gateway reads it (-want +got):\n%s", d)
	}
}

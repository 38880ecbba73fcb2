package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/wsgateway"
)

// A WeChat / uni-app mini-program posts the object that uni.onLocationChange
// gives it, unchanged: it is stored as a location with iOS's unknown speed
// (-1) left out and horizontalAccuracy as the accuracy, and the reply keeps
// update_interval_s.
func TestHTTPIngestMiniProgramObject(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addDevice("courier-1", "g")
	obj := `{"latitude":31.2304,"longitude":121.4737,"speed":-1,"accuracy":65,"altitude":8,` +
		`"verticalAccuracy":3,"horizontalAccuracy":12.5,"errMsg":"getLocation:ok"}`
	status, body := e.post(tok, "/api/v1/ingest", obj)
	var resp struct {
		Accepted        int      `json:"accepted"`
		IDs             []string `json:"ids"`
		UpdateIntervalS int      `json:"update_interval_s"`
	}
	if err := json.Unmarshal([]byte(body), &resp); err != nil || status != 200 || resp.Accepted != 1 || len(resp.IDs) != 1 || resp.UpdateIntervalS <= 0 {
		t.Fatalf("mini-program object: %d %s", status, body)
	}
	// Several at once, as a page that buffered them offline posts them.
	if status, body := e.post(tok, "/api/v1/ingest", "["+obj+","+obj+"]"); status != 200 || !strings.Contains(body, `"accepted":2`) {
		t.Fatalf("array of objects: %d %s", status, body)
	}
	items := e.queued()
	if len(items) != 3 {
		t.Fatalf("%d queued, want 3", len(items))
	}
	for _, it := range items {
		var loc protocol.Location
		if err := json.Unmarshal(it.Data, &loc); err != nil {
			t.Fatal(err)
		}
		if it.Device != "courier-1" || it.Type != protocol.TypeLocation || loc.Lat != 31.2304 || loc.Lng != 121.4737 ||
			loc.Speed != nil || loc.Accuracy == nil || *loc.Accuracy != 12.5 || loc.Altitude == nil || *loc.Altitude != 8 {
			t.Errorf("queued %s %s %s", it.Device, it.Type, it.Data)
		}
	}
	// Without latitude it is no location, and says what is missing.
	if status, body := e.post(tok, "/api/v1/ingest", `{"longitude":121.4737}`); status != 400 || !strings.Contains(body, "type is missing") {
		t.Fatalf("no latitude: %d %s", status, body)
	}
}

// A device registered with a default crs (devtrack device add --crs gcj02)
// has its locations that name none converted from it, posted or sent on
// the socket; one that names its crs keeps it.
func TestDeviceDefaultCRS(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	tok := e.addDevice("courier-2", "g")
	if _, err := e.store.SetDeviceCRS(context.Background(), "courier-2", protocol.CRSGCJ02); err != nil {
		t.Fatal(err)
	}
	wLat, wLng := 31.2304, 121.4737
	gLat, gLng := protocol.WGS84ToGCJ02(wLat, wLng)
	if status, body := e.post(tok, "/api/v1/ingest", fmt.Sprintf(`{"latitude":%v,"longitude":%v}`, gLat, gLng)); status != 200 {
		t.Fatalf("post: %d %s", status, body)
	}
	d := e.mustDial(tok)
	d.send(fmt.Sprintf(`{"type":"location","id":"ws-1","data":{"lat":%v,"lng":%v}}`, gLat, gLng))
	d.send(fmt.Sprintf(`{"type":"location","id":"ws-2","data":{"lat":%v,"lng":%v,"crs":"wgs84"}}`, wLat, wLng))
	for acked := 0; acked < 2; {
		r := d.read()
		if r.Type != "ack" {
			t.Fatalf("reply %+v, want ack", r)
		}
		acked += len(r.IDs)
	}
	items := e.queued()
	if len(items) != 3 {
		t.Fatalf("%d queued, want 3", len(items))
	}
	for i, it := range items {
		var loc protocol.Location
		if err := json.Unmarshal(it.Data, &loc); err != nil {
			t.Fatal(err)
		}
		off := math.Hypot(loc.Lat-wLat, loc.Lng-wLng)
		wantCRS := protocol.CRSGCJ02
		if i == 2 {
			wantCRS = "" // named wgs84: nothing to convert
		}
		if off > 1e-5 || loc.CRS != wantCRS || (wantCRS != "" && (loc.OrigLat == nil || *loc.OrigLat != gLat)) {
			t.Errorf("item %s: %s, want WGS-84 %v,%v converted from crs %q", it.ID, it.Data, wLat, wLng, wantCRS)
		}
	}
}

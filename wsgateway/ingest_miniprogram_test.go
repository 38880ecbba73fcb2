package wsgateway_test

import (
	"encoding/json"
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

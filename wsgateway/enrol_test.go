package wsgateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// An app's backend enrols its users' phones through the API: an admin
// registers a device and gets its token (which then posts locations), gives
// it a default crs, and replaces a lost token (the old one stops working).
// Operators and strangers may do none of it.
func TestEnrolDevicesOverTheAPI(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	operator := e.addUser("op", storage.RoleOperator, "couriers")

	status, body := e.post(admin, "/api/v1/devices", `{"id":"courier-7","name":"Li's phone","group":"couriers","crs":"GCJ02"}`)
	var d struct{ ID, Name, Group, CRS, Token string }
	if err := json.Unmarshal([]byte(body), &d); err != nil || status != 201 || d.ID != "courier-7" || d.Group != "couriers" ||
		d.CRS != "gcj02" || !strings.HasPrefix(d.Token, "dtd_") {
		t.Fatalf("create: %d %s", status, body)
	}
	stored, err := e.store.Device(t.Context(), "courier-7")
	if err != nil || stored.Name != "Li's phone" || stored.CRS != "gcj02" {
		t.Fatalf("stored %+v, %v", stored, err)
	}

	// The token posts the mini-program's GCJ-02 object, converted.
	wLat, wLng := 31.2304, 121.4737
	gLat, gLng := protocol.WGS84ToGCJ02(wLat, wLng)
	if status, body := e.post(d.Token, "/api/v1/ingest", fmt.Sprintf(`{"latitude":%v,"longitude":%v}`, gLat, gLng)); status != 200 {
		t.Fatalf("ingest with the new token: %d %s", status, body)
	}
	// Its crs changed to WGS-84 applies to the next request at once.
	if status, body := e.do("PATCH", admin, "/api/v1/devices/courier-7", `{"crs":"wgs84"}`); status != 200 || !strings.Contains(body, `"crs":"wgs84"`) {
		t.Fatalf("patch crs: %d %s", status, body)
	}
	if status, body := e.post(d.Token, "/api/v1/ingest", fmt.Sprintf(`{"latitude":%v,"longitude":%v}`, wLat, wLng)); status != 200 {
		t.Fatalf("ingest after the patch: %d %s", status, body)
	}
	items := e.queued()
	if len(items) != 2 {
		t.Fatalf("%d queued, want 2", len(items))
	}
	for i, want := range []string{protocol.CRSGCJ02, ""} {
		var loc protocol.Location
		_ = json.Unmarshal(items[i].Data, &loc)
		if loc.CRS != want || abs(loc.Lat-wLat) > 1e-5 || abs(loc.Lng-wLng) > 1e-5 {
			t.Errorf("item %d: %s, want WGS-84 from crs %q", i, items[i].Data, want)
		}
	}

	// Refusals.
	for _, tc := range []struct {
		tok, method, path, body string
		status                  int
	}{
		{admin, "POST", "/api/v1/devices", `{"id":"courier-7"}`, 409},
		{admin, "POST", "/api/v1/devices", `{"id":"-bad id"}`, 400},
		{admin, "POST", "/api/v1/devices", `{"id":"x","crs":"utm"}`, 400},
		{admin, "POST", "/api/v1/devices", `{"id":"x","colour":"red"}`, 400},
		{admin, "POST", "/api/v1/devices", `nope`, 400},
		{operator, "POST", "/api/v1/devices", `{"id":"mine"}`, 403},
		{"", "POST", "/api/v1/devices", `{"id":"mine"}`, 401},
		{operator, "POST", "/api/v1/devices/courier-7/token", ``, 403},
		{admin, "POST", "/api/v1/devices/nobody/token", ``, 404},
		{admin, "PATCH", "/api/v1/devices/nobody", `{"crs":"gcj02"}`, 404},
		{admin, "PATCH", "/api/v1/devices/courier-7", `{}`, 400},
		{operator, "PATCH", "/api/v1/devices/courier-7", `{"crs":"bd09"}`, 403},
	} {
		if status, body := e.do(tc.method, tc.tok, tc.path, tc.body); status != tc.status {
			t.Errorf("%s %s %s: %d %s, want %d", tc.method, tc.path, tc.body, status, body, tc.status)
		}
	}
	if _, err := e.store.Device(t.Context(), "mine"); err == nil {
		t.Error("an operator registered a device")
	}

	// A lost token is replaced: the new one works at once, the old one is
	// refused once the rotation poll has run (within 5 s).
	status, body = e.post(admin, "/api/v1/devices/courier-7/token", ``)
	var r struct{ ID, Token string }
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != 200 || r.ID != "courier-7" || r.Token == d.Token || !strings.HasPrefix(r.Token, "dtd_") {
		t.Fatalf("rotate: %d %s", status, body)
	}
	if status, body := e.post(r.Token, "/api/v1/ingest", loc("n1", 1, 1)); status != 200 {
		t.Fatalf("ingest with the rotated token: %d %s", status, body)
	}
	checkFor(t, 5*time.Second, "old token refused", func() bool {
		status, _ := e.post(d.Token, "/api/v1/ingest", loc("o1", 1, 1))
		return status == 401
	})
	if err := e.store.RevokeDevice(t.Context(), "courier-7"); err != nil {
		t.Fatal(err)
	}
	if status, body := e.post(admin, "/api/v1/devices/courier-7/token", ``); status != 409 || !strings.Contains(body, "revoked") {
		t.Errorf("rotate a revoked device: %d %s, want 409", status, body)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// A revoked device id is enrolled again through the API with a new token
// (201), not refused as existing.
func TestEnrolARevokedDeviceAgain(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	old := e.addDevice("van-3", "g")
	if err := e.store.RevokeDevice(t.Context(), "van-3"); err != nil {
		t.Fatal(err)
	}
	status, body := e.post(admin, "/api/v1/devices", `{"id":"van-3","group":"g2"}`)
	var d struct{ ID, Group, Token string }
	if err := json.Unmarshal([]byte(body), &d); err != nil || status != 201 || d.Group != "g2" || d.Token == "" || d.Token == old {
		t.Fatalf("enrol a revoked id again: %d %s", status, body)
	}
	if status, body := e.post(d.Token, "/api/v1/ingest", loc("v1", 1, 1)); status != 200 {
		t.Fatalf("ingest with the new token: %d %s", status, body)
	}
	if status, _ := e.post(old, "/api/v1/ingest", loc("v2", 1, 1)); status != 401 {
		t.Fatalf("the revoked token: %d, want 401", status)
	}
}

package wsgateway_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

func ptr(f float64) *float64 { return &f }

// saveTrack stores locs for their devices in batches.
func (e *env) saveTrack(locs []storage.Location) {
	e.t.Helper()
	for len(locs) > 0 {
		n := min(len(locs), 500)
		if _, err := e.store.SaveBatch(context.Background(), storage.Batch{Locations: locs[:n]}); err != nil {
			e.t.Fatal(err)
		}
		locs = locs[n:]
	}
}

// knownTrack is n positions a second apart from start, with awkward values:
// many decimals, negative coordinates, altitude on every other point.
func knownTrack(device string, start time.Time, n int) []storage.Location {
	locs := make([]storage.Location, n)
	for i := range locs {
		ts := start.Add(time.Duration(i) * time.Second).UnixMilli()
		locs[i] = storage.Location{Device: device, ID: "m-" + strconv.Itoa(i), TS: ts + int64(i%7), ReceivedAt: ts + 40,
			Lat: -33.8688197 + float64(i)*1.23456789e-5, Lng: 151.2092955 - float64(i)*9.87654321e-6, Accuracy: ptr(4.5)}
		if i%2 == 0 {
			locs[i].Altitude = ptr(12.25 + float64(i)/8)
		}
	}
	return locs
}

func (e *env) download(tok, path string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.base+path, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		e.t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		e.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b.String())
	}
	return resp, b.Bytes()
}

// More than two store pages (1,000 each), read back in time order.
func TestGPXExportRoundTrips(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("gpx1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	want := knownTrack("gpx1", start, 2345)
	e.saveTrack(want)
	e.saveTrack(knownTrack("other", start, 10)) // not in the export

	resp, body := e.download(admin, "/api/v1/devices/gpx1/locations/export?format=gpx")
	if ct := resp.Header.Get("Content-Type"); ct != "application/gpx+xml" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="devtrack-gpx1-`) || !strings.HasSuffix(cd, `.gpx"`) {
		t.Errorf("Content-Disposition = %q", cd)
	}
	var doc struct {
		XMLName xml.Name `xml:"http://www.topografix.com/GPX/1/1 gpx"`
		Version string   `xml:"version,attr"`
		Points  []struct {
			Lat  float64  `xml:"lat,attr"`
			Lon  float64  `xml:"lon,attr"`
			Ele  *float64 `xml:"ele"`
			Time string   `xml:"time"`
		} `xml:"trk>trkseg>trkpt"`
	}
	if err := xml.Unmarshal(body, &doc); err != nil {
		t.Fatalf("GPX does not parse: %v\n%.500s", err, body)
	}
	if doc.Version != "1.1" || len(doc.Points) != len(want) {
		t.Fatalf("GPX %s with %d points, want 1.1 with %d", doc.Version, len(doc.Points), len(want))
	}
	for i, p := range doc.Points {
		w := want[i]
		ts, err := time.Parse(time.RFC3339Nano, p.Time)
		if err != nil || ts.UnixMilli() != w.TS {
			t.Fatalf("point %d: time %q, want %s", i, p.Time, time.UnixMilli(w.TS).UTC().Format(time.RFC3339Nano))
		}
		if math.Abs(p.Lat-w.Lat) > 1e-7 || math.Abs(p.Lon-w.Lng) > 1e-7 {
			t.Fatalf("point %d: %v,%v, want %v,%v", i, p.Lat, p.Lon, w.Lat, w.Lng)
		}
		if (p.Ele == nil) != (w.Altitude == nil) || p.Ele != nil && math.Abs(*p.Ele-*w.Altitude) > 1e-9 {
			t.Fatalf("point %d: ele %v, want %v", i, p.Ele, w.Altitude)
		}
	}

	// from and to select, both included.
	from := time.UnixMilli(want[100].TS).UTC().Format(time.RFC3339Nano)
	to := time.UnixMilli(want[199].TS).UTC().Format(time.RFC3339Nano)
	_, body = e.download(admin, "/api/v1/devices/gpx1/locations/export?format=gpx&from="+from+"&to="+to)
	if n := bytes.Count(body, []byte("<trkpt ")); n != 100 {
		t.Errorf("from/to export has %d points, want 100", n)
	}
}

func TestGeoJSONAndCSVExports(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("geo1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	want := knownTrack("geo1", start, 1500)
	want[3].ID = `=HYPERLINK("http://evil.example/","x")`
	want[4].CRS = "gcj02"
	e.saveTrack(want)

	resp, body := e.download(admin, "/api/v1/devices/geo1/locations/export?format=geojson")
	if ct := resp.Header.Get("Content-Type"); ct != "application/geo+json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var fc struct {
		Type     string `json:"type"`
		Features []struct {
			Type       string `json:"type"`
			Properties struct {
				Device               string `json:"device"`
				CoordinateProperties struct {
					Times []time.Time `json:"times"`
				} `json:"coordinateProperties"`
			} `json:"properties"`
			Geometry struct {
				Type        string       `json:"type"`
				Coordinates [][2]float64 `json:"coordinates"`
			} `json:"geometry"`
		} `json:"features"`
	}
	if err := json.Unmarshal(body, &fc); err != nil {
		t.Fatalf("GeoJSON does not parse: %v", err)
	}
	if fc.Type != "FeatureCollection" || len(fc.Features) != 1 || fc.Features[0].Geometry.Type != "LineString" {
		t.Fatalf("GeoJSON %s with %d features", fc.Type, len(fc.Features))
	}
	f := fc.Features[0]
	if f.Properties.Device != "geo1" || len(f.Geometry.Coordinates) != len(want) || len(f.Properties.CoordinateProperties.Times) != len(want) {
		t.Fatalf("feature of %q with %d coordinates and %d times, want %d", f.Properties.Device,
			len(f.Geometry.Coordinates), len(f.Properties.CoordinateProperties.Times), len(want))
	}
	for i, c := range f.Geometry.Coordinates {
		if c[0] != want[i].Lng || c[1] != want[i].Lat || f.Properties.CoordinateProperties.Times[i].UnixMilli() != want[i].TS {
			t.Fatalf("position %d: %v at %v, want %v,%v at %d", i, c, f.Properties.CoordinateProperties.Times[i], want[i].Lng, want[i].Lat, want[i].TS)
		}
	}

	resp, body = e.download(admin, "/api/v1/devices/geo1/locations/export?format=csv")
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "device,id,ts,received_at,lat,lng,accuracy,speed,heading,altitude,crs" {
		t.Fatalf("header %q", got)
	}
	if len(rows) != len(want)+1 {
		t.Fatalf("%d rows, want %d", len(rows)-1, len(want))
	}
	if rows[4][1] != `'=HYPERLINK("http://evil.example/","x")` {
		t.Errorf("formula id not defused: %q", rows[4][1])
	}
	if rows[5][10] != "gcj02" {
		t.Errorf("crs cell %q", rows[5][10])
	}
	for i, r := range rows[1:] {
		w := want[i]
		lat, _ := strconv.ParseFloat(r[4], 64)
		lng, _ := strconv.ParseFloat(r[5], 64)
		ts, _ := time.Parse(time.RFC3339Nano, r[2])
		if r[0] != "geo1" || lat != w.Lat || lng != w.Lng || ts.UnixMilli() != w.TS || r[6] != "4.5" {
			t.Fatalf("row %d = %q, want %+v", i, r, w)
		}
		if (r[9] == "") != (w.Altitude == nil) {
			t.Fatalf("row %d altitude %q, want %v", i, r[9], w.Altitude)
		}
	}

	// One position is a Point; none is an empty collection.
	e.addDevice("geo2", "g")
	_, body = e.download(admin, "/api/v1/devices/geo2/locations/export?format=geojson")
	if got := strings.TrimSpace(string(body)); got != `{"type":"FeatureCollection","features":[]}` {
		t.Errorf("empty export = %s", got)
	}
	e.saveTrack(knownTrack("geo2", start, 1))
	_, body = e.download(admin, "/api/v1/devices/geo2/locations/export?format=geojson")
	if !json.Valid(body) || !bytes.Contains(body, []byte(`"type":"Point","coordinates":[151.2092955,-33.8688197]`)) {
		t.Errorf("one-point export = %s", body)
	}
}

// scriptedDrive stores the drive: parked 10 min, drive 2 km north
// at 12 m/s, stop 10 min, drive 3 km east at 15 m/s, park 10 min; a sample
// every 5 s with a few metres of jitter.
func scriptedDrive(device string, start time.Time) []storage.Location {
	const mPerDeg = 6378137 * math.Pi / 180
	lat, lng := 31.2304, 121.4737
	ts := start
	var locs []storage.Location
	jitter := []float64{0, 3, -4, 2, -1, 5, -3}
	add := func() {
		j := jitter[len(locs)%len(jitter)] / mPerDeg
		locs = append(locs, storage.Location{Device: device, ID: fmt.Sprintf("d-%d", len(locs)), TS: ts.UnixMilli(),
			ReceivedAt: ts.UnixMilli(), Lat: lat + j, Lng: lng - j, Accuracy: ptr(10)})
		ts = ts.Add(5 * time.Second)
	}
	wait := func() {
		for range 10 * 60 / 5 {
			add()
		}
	}
	move := func(northM, eastM, speed float64) {
		steps := int(math.Hypot(northM, eastM) / (speed * 5))
		for range steps {
			lat += northM / float64(steps) / mPerDeg
			lng += eastM / float64(steps) / (mPerDeg * math.Cos(lat*math.Pi/180))
			add()
		}
	}
	wait()
	move(2000, 0, 12)
	wait()
	move(0, 3000, 15)
	wait()
	return locs
}

func TestTripsAndReportOfAScriptedDrive(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("car1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)
	e.saveTrack(scriptedDrive("car1", start))

	status, body := e.get(admin, "/api/v1/devices/car1/trips?from=2026-11-30T00:00:00Z&to=2026-11-30T23:59:59Z")
	if status != 200 {
		t.Fatalf("trips: %d %s", status, body)
	}
	var res struct {
		Trips []struct {
			StartTS   int64   `json:"start_ts"`
			EndTS     int64   `json:"end_ts"`
			DistanceM float64 `json:"distance_m"`
			DurationS float64 `json:"duration_s"`
		} `json:"trips"`
		Stops []struct {
			DurationS float64 `json:"duration_s"`
		} `json:"stops"`
	}
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Trips) != 2 || len(res.Stops) != 3 {
		t.Fatalf("%d trips and %d stops, want 2 and 3: %s", len(res.Trips), len(res.Stops), body)
	}
	for i, want := range []float64{2000, 3000} {
		if d := res.Trips[i].DistanceM; math.Abs(d-want) > 0.02*want {
			t.Errorf("trip %d: %.0f m, want %.0f ± 2%%", i, d, want)
		}
	}
	for i, s := range res.Stops {
		if math.Abs(s.DurationS-600) > 10 {
			t.Errorf("stop %d: %.0f s, want 600 ± 10", i, s.DurationS)
		}
	}

	status, body = e.get(admin, "/api/v1/devices/car1/report?day=2026-11-30")
	if status != 200 {
		t.Fatalf("report: %d %s", status, body)
	}
	var rep struct {
		Days []struct {
			Day       string  `json:"day"`
			DistanceM float64 `json:"distance_m"`
			MovingS   float64 `json:"moving_s"`
			Trips     int     `json:"trips"`
			Stops     int     `json:"stops"`
		} `json:"days"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Days) != 1 || rep.Days[0].Day != "2026-11-30" || rep.Days[0].Trips != 2 || rep.Days[0].Stops != 3 {
		t.Fatalf("report %s", body)
	}
	if d := rep.Days[0].DistanceM; math.Abs(d-res.Trips[0].DistanceM-res.Trips[1].DistanceM) > 1e-6 {
		t.Errorf("day distance %.1f, trips %.1f + %.1f", d, res.Trips[0].DistanceM, res.Trips[1].DistanceM)
	}
	// Sydney's 2026-11-30 ends at 13:00 UTC: the same drive, the day before empty.
	status, body = e.get(admin, "/api/v1/devices/car1/report?from=2026-11-29&to=2026-11-30&tz=Australia/Sydney")
	if status != 200 || !strings.Contains(body, `"day":"2026-11-29","distance_m":0,`) || !strings.Contains(body, `"tz":"Australia/Sydney"`) || strings.Count(body, `"trips":2`) != 1 {
		t.Errorf("report in Sydney: %d %s", status, body)
	}
}

func TestTripsReportAndExportVisibility(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "group-a")
	e.addDevice("b1", "group-b")
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "group-a")
	e.saveTrack(knownTrack("b1", time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC), 5))
	for _, c := range []struct {
		name, tok, path string
		status          int
		has             string
	}{
		{"no token", "", "/api/v1/devices/a1/trips", 401, `"unauthorized"`},
		{"operator exports another group's device", opA, "/api/v1/devices/b1/locations/export?format=gpx", 403, `"forbidden"`},
		{"operator exports another group's csv", opA, "/api/v1/devices/b1/locations/export?format=csv", 403, `"forbidden"`},
		{"operator trips of another group", opA, "/api/v1/devices/b1/trips", 403, `"forbidden"`},
		{"operator report of another group", opA, "/api/v1/devices/b1/report", 403, `"forbidden"`},
		{"operator own device", opA, "/api/v1/devices/a1/locations/export?format=csv", 200, "device,id,ts"},
		{"operator own trips", opA, "/api/v1/devices/a1/trips", 200, `"trips":[]`},
		{"unknown device", admin, "/api/v1/devices/zz/locations/export", 404, `"not_found"`},
		{"bad format", admin, "/api/v1/devices/b1/locations/export?format=kml", 400, `"bad_request"`},
		{"bad time", admin, "/api/v1/devices/b1/trips?from=monday", 400, `"bad_request"`},
		{"bad day", admin, "/api/v1/devices/b1/report?day=30.11.2026", 400, `"bad_request"`},
		{"bad tz", admin, "/api/v1/devices/b1/report?tz=Mars/Olympus", 400, `"bad_request"`},
		{"days reversed", admin, "/api/v1/devices/b1/report?from=2026-11-30&to=2026-11-01", 400, `"bad_request"`},
		{"92 days", admin, "/api/v1/devices/b1/report?from=2026-09-01&to=2026-12-01", 200, `"day":"2026-12-01"`},
		{"too many days", admin, "/api/v1/devices/b1/report?from=2026-01-01&to=2026-11-30", 400, `"bad_request"`},
		{"default format is gpx", admin, "/api/v1/devices/b1/locations/export", 200, "<trkpt "},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.get(c.tok, c.path)
			if status != c.status || !strings.Contains(body, c.has) {
				t.Errorf("GET %s = %d %s, want %d with %s", c.path, status, body, c.status, c.has)
			}
			if status == 403 && strings.Contains(body, "trkpt") {
				t.Errorf("a refused export leaked points: %s", body)
			}
		})
	}
}

package main

// The web map's tile settings: the coordinate conversion module in node
// against the Go functions, and in the browser a GCJ-02 tile grid, the
// default tiles' attribution and unreachable tiles.

import (
	"bytes"
	"context"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
)

// needNode skips the test when node is missing, except in CI.
func needNode(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs node")
		}
		t.Skip("this test needs node")
	}
}

// TestCRSModuleMatchesGo runs web/static/js/crs.js in node on points in and
// around China (and outside it, where GCJ-02 is the identity) and compares
// every conversion with internal/protocol's within 1e-9 degrees.
func TestCRSModuleMatchesGo(t *testing.T) {
	needNode(t)
	var pts [][2]float64
	for lat := -10.0; lat <= 60; lat += 3.7 {
		for lng := 60.0; lng <= 150; lng += 4.3 {
			pts = append(pts, [2]float64{lat, lng})
		}
	}
	pts = append(pts,
		[2]float64{31.2304, 121.4737},  // Shanghai
		[2]float64{39.9087, 116.3975},  // Beijing
		[2]float64{22.5431, 114.0579},  // Shenzhen
		[2]float64{0.8294, 72.0041},    // just inside the box
		[2]float64{55.8270, 137.8346},  // just inside the other corner
		[2]float64{51.5007, -0.1246},   // London: outside
		[2]float64{-33.8568, 151.2153}, // Sydney: outside
	)
	in, _ := json.Marshal(pts)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("test", "crs-unit.mjs"))
	cmd.Dir = webDir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node test/crs-unit.mjs: %v\n%s", err, stderr.String())
	}
	var got []map[string][2]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output: %v\n%s", err, out)
	}
	if len(got) != len(pts) {
		t.Fatalf("node converted %d points, want %d", len(got), len(pts))
	}
	pair := func(lat, lng float64) [2]float64 { return [2]float64{lat, lng} }
	const tol = 1e-9
	for i, p := range pts {
		lat, lng := p[0], p[1]
		gLat, gLng := protocol.WGS84ToGCJ02(lat, lng)
		want := map[string][2]float64{
			"wgs84ToGcj02": {gLat, gLng},
			"gcj02ToWgs84": pair(protocol.GCJ02ToWGS84(lat, lng)),
			"gcj02ToBd09":  pair(protocol.GCJ02ToBD09(lat, lng)),
			"bd09ToGcj02":  pair(protocol.BD09ToGCJ02(lat, lng)),
			"wgs84ToBd09":  pair(protocol.WGS84ToBD09(lat, lng)),
			"bd09ToWgs84":  pair(protocol.BD09ToWGS84(lat, lng)),
			// The round trip the map's projection makes (project, unproject):
			// the identity but at the box's edge, where Go's is not either.
			"roundTripGcj02": pair(protocol.GCJ02ToWGS84(gLat, gLng)),
		}
		for fn, w := range want {
			g, ok := got[i][fn]
			if !ok {
				t.Fatalf("point %v: node gave no %s", p, fn)
			}
			if math.Abs(g[0]-w[0]) > tol || math.Abs(g[1]-w[1]) > tol {
				t.Errorf("%s(%v, %v): js %v, go %v (diff %.3g, %.3g)", fn, lat, lng, g, w, g[0]-w[0], g[1]-w[1])
			}
		}
	}
	t.Logf("%d points x %d conversions agree within %g", len(pts), len(got[0]), tol)
}

// tileServer serves one 256 x 256 PNG for every /{z}/{x}/{y}.png and counts
// the requests.
func tileServer(t *testing.T) (url string, requests *atomic.Int64) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 256, 256))
	for y := range 256 {
		for x := range 256 {
			c := color.RGBA{0xe8, 0xee, 0xf2, 0xff}
			if x == 0 || y == 0 { // the grid's lines, for the screenshot
				c = color.RGBA{0x94, 0xa3, 0xb8, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	tile := regexp.MustCompile(`^/\d+/-?\d+/-?\d+\.png$`)
	requests = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tile.MatchString(r.URL.Path) {
			http.NotFound(w, r)
			return
		}
		requests.Add(1)
		w.Header().Set("Content-Type", "image/png")
		_, _ = w.Write(buf.Bytes())
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/{z}/{x}/{y}.png", requests
}

// TestMapTilesInBrowser runs gateways with different tile settings on one
// system that holds one device at a known WGS-84 position in Shanghai.
func TestMapTilesInBrowser(t *testing.T) {
	needBrowser(t)
	c := newCluster(t)
	c.cli("migrate")
	c.start("worker1", "worker")
	tiles, tileRequests := tileServer(t)
	gw, base := c.startGateway("gw-gcj", "--tiles-crs", "gcj02", "--tiles", tiles)
	f := &browserFleet{c: c, gw: gw, base: base, addr: strings.TrimPrefix(base, "http://"),
		users: map[string]string{}, tokens: map[string]string{}, names: map[string]string{}}
	f.adminTok = f.addUser("admin", "admin", "")
	const dev, lat, lng = "cn-1", 31.2304, 121.4737
	f.tokens[dev] = lastLine(c.cli("device", "add", dev, "--group", "ga", "--name", "Shanghai"))
	f.names[dev] = "Shanghai"
	f.ingest(t, dev, map[string]any{"type": "location", "id": "p1", "ts": time.Now().UnixMilli(),
		"data": map[string]any{"lat": lat, "lng": lng}})
	checkFor(t, 20*time.Second, dev+" located", func() bool {
		for _, d := range f.devices(t) {
			if d.ID == dev && len(d.Location) > 0 && string(d.Location) != "null" {
				return true
			}
		}
		return false
	})

	// With --tiles-crs gcj02 the marker of the stored WGS-84 point sits where
	// the GCJ-02 tile grid (the tiles as the browser laid them out) puts the
	// point's GCJ-02 coordinate, as Go's protocol.WGS84ToGCJ02 computes it,
	// and the API still serves the WGS-84 position.
	t.Run("GCJ02MarkerOnTileGrid", func(t *testing.T) {
		cfg := f.config()
		cfg["scenario"] = "gcj02"
		cfg["device"] = dev
		cfg["wgs84"] = []float64{lat, lng}
		gLat, gLng := protocol.WGS84ToGCJ02(lat, lng)
		cfg["gcj02"] = []float64{gLat, gLng}
		cfg["tilePrefix"] = strings.TrimSuffix(tiles, "{z}/{x}/{y}.png")
		runNode(t, "maps.js", cfg, nil)
		if tileRequests.Load() == 0 {
			t.Error("the tile server got no request")
		}
	})

	// With the default tiles (the --tiles flag's default), the map credits
	// OpenStreetMap. The browser never reaches the real tile server: the
	// script aborts those requests.
	t.Run("DefaultTilesCreditOpenStreetMap", func(t *testing.T) {
		_, defBase := c.startGateway("gw-default")
		cfg := f.config()
		cfg["base"] = defBase
		cfg["scenario"] = "attribution"
		runNode(t, "maps.js", cfg, nil)
	})

	// With tiles that cannot be reached (nothing listens on port 1), the map
	// shows the embedded basemap and the notice, and the device on it.
	t.Run("UnreachableTilesShowBasemap", func(t *testing.T) {
		_, offBase := c.startGateway("gw-offline", "--tiles", "http://127.0.0.1:1/{z}/{x}/{y}.png")
		cfg := f.config()
		cfg["base"] = offBase
		cfg["scenario"] = "offline"
		cfg["device"] = dev
		runNode(t, "maps.js", cfg, nil)
	})
}

package protocol

import (
	"math"
	"testing"
)

// distance is the great-circle distance in metres between two points.
func distance(lat1, lng1, lat2, lng2 float64) float64 {
	const r = 6371008.8
	rad := math.Pi / 180
	dLat, dLng := (lat2-lat1)*rad, (lng2-lng1)*rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLng/2)*math.Sin(dLng/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(a)))
}

// Published pairs from the eviltransform test suite (wgsLat, wgsLng, gcjLat,
// gcjLng), which implements the same standard formulas.
var gcjPairs = []struct {
	name                           string
	wgsLat, wgsLng, gcjLat, gcjLng float64
}{
	{"shanghai", 31.1774276, 121.5272106, 31.17530398364597, 121.531541859215},
	{"shenzhen", 22.543847, 113.912316, 22.540796131694766, 113.9171764808363},
	{"beijing", 39.911954, 116.377817, 39.91334545536069, 116.38404722455657},
}

func TestWGS84ToGCJ02Published(t *testing.T) {
	for _, p := range gcjPairs {
		lat, lng := WGS84ToGCJ02(p.wgsLat, p.wgsLng)
		if math.Abs(lat-p.gcjLat) > 1e-9 || math.Abs(lng-p.gcjLng) > 1e-9 {
			t.Errorf("%s: WGS84ToGCJ02 = %.12f, %.12f; want %.12f, %.12f", p.name, lat, lng, p.gcjLat, p.gcjLng)
		}
		lat, lng = GCJ02ToWGS84(p.gcjLat, p.gcjLng)
		if d := distance(lat, lng, p.wgsLat, p.wgsLng); d > 0.01 {
			t.Errorf("%s: GCJ02ToWGS84 is %.3f m off", p.name, d)
		}
	}
}

func TestBD09Published(t *testing.T) {
	// The coordtransform README example: gcj02tobd09(116.404, 39.915) and
	// bd09togcj02(116.404, 39.915), both closed-form.
	lat, lng := GCJ02ToBD09(39.915, 116.404)
	if math.Abs(lat-39.92133699351021) > 1e-9 || math.Abs(lng-116.41036949371029) > 1e-9 {
		t.Errorf("GCJ02ToBD09 = %.14f, %.14f", lat, lng)
	}
	lat, lng = BD09ToGCJ02(39.915, 116.404)
	if math.Abs(lat-39.90865673957631) > 1e-9 || math.Abs(lng-116.39762729119315) > 1e-9 {
		t.Errorf("BD09ToGCJ02 = %.14f, %.14f", lat, lng)
	}
	// (eviltransform's BD-09 test pairs use sin(y*pi) instead of the
	// standard sin(y*x_pi), so they do not apply here.)
}

func TestCRSRoundTrip(t *testing.T) {
	regions := []struct {
		name                   string
		lat0, lng0, lat1, lng1 float64
	}{
		{"shanghai", 30.7, 120.9, 31.9, 122.0},
		{"beijing", 39.4, 115.7, 41.1, 117.5},
		{"china", 18, 73, 53.5, 135},
	}
	const steps = 40
	worstGCJ, worstBD := 0.0, 0.0
	for _, r := range regions {
		for i := 0; i <= steps; i++ {
			for j := 0; j <= steps; j++ {
				lat := r.lat0 + (r.lat1-r.lat0)*float64(i)/steps
				lng := r.lng0 + (r.lng1-r.lng0)*float64(j)/steps
				gLat, gLng := WGS84ToGCJ02(lat, lng)
				if d := distance(lat, lng, gLat, gLng); d < 1 {
					t.Fatalf("%s (%v, %v): GCJ-02 offset only %.2f m", r.name, lat, lng, d)
				}
				wLat, wLng := GCJ02ToWGS84(gLat, gLng)
				worstGCJ = math.Max(worstGCJ, distance(lat, lng, wLat, wLng))
				bLat, bLng := WGS84ToBD09(lat, lng)
				wLat, wLng = BD09ToWGS84(bLat, bLng)
				worstBD = math.Max(worstBD, distance(lat, lng, wLat, wLng))
			}
		}
	}
	if worstGCJ > 0.5 {
		t.Errorf("WGS84 -> GCJ02 -> WGS84 off by up to %.4f m", worstGCJ)
	}
	if worstBD > 0.5 {
		t.Errorf("WGS84 -> BD09 -> WGS84 off by up to %.4f m", worstBD)
	}
	t.Logf("worst round trip: gcj02 %.2g m, bd09 %.2g m", worstGCJ, worstBD)
}

func TestOutsideChinaIdentity(t *testing.T) {
	for _, p := range []struct {
		name     string
		lat, lng float64
	}{
		{"london", 51.5074, -0.1278},
		{"new york", 40.7128, -74.006},
		{"tokyo", 35.6762, 139.6503},
		{"sydney", -33.8688, 151.2093},
		{"null island", 0, 0},
		{"north pole", 90, 0},
		{"antimeridian", -45, 180},
	} {
		if lat, lng := WGS84ToGCJ02(p.lat, p.lng); lat != p.lat || lng != p.lng {
			t.Errorf("%s: WGS84ToGCJ02 moved the point to %v, %v", p.name, lat, lng)
		}
		if lat, lng := GCJ02ToWGS84(p.lat, p.lng); lat != p.lat || lng != p.lng {
			t.Errorf("%s: GCJ02ToWGS84 moved the point to %v, %v", p.name, lat, lng)
		}
		// BD-09 keeps its own offset everywhere, but still round-trips.
		bLat, bLng := WGS84ToBD09(p.lat, p.lng)
		if lat, lng := BD09ToWGS84(bLat, bLng); distance(lat, lng, p.lat, p.lng) > 0.5 {
			t.Errorf("%s: BD-09 round trip gives %v, %v", p.name, lat, lng)
		}
	}
}

func TestToWGS84(t *testing.T) {
	if _, _, ok := ToWGS84("utm", 1, 2); ok {
		t.Error("unknown crs accepted")
	}
	for _, crs := range []string{"", CRSWGS84} {
		if lat, lng, ok := ToWGS84(crs, 31, 121); !ok || lat != 31 || lng != 121 {
			t.Errorf("ToWGS84(%q) = %v, %v, %v", crs, lat, lng, ok)
		}
	}
}

func BenchmarkGCJ02ToWGS84(b *testing.B) {
	for b.Loop() {
		GCJ02ToWGS84(31.2284, 121.4781)
	}
}

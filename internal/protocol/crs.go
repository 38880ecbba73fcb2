package protocol

import "math"

// Coordinate reference systems used by Chinese map providers.
//
// GCJ-02 ("Mars coordinates") is WGS-84 plus a published, deliberately
// obfuscating offset computed on the Krasovsky 1940 ellipsoid; it applies
// inside China only, approximated by the usual bounding box, and is the
// identity outside it. BD-09 (Baidu) adds a further rotation and scaling on
// top of GCJ-02, everywhere. The forward formulas are the standard published
// ones; GCJ-02 -> WGS-84 has no closed form and is solved by fixed-point
// iteration, which converges to far better than a centimetre in a few steps
// because the offset changes slowly with position.

const (
	krasovskyA  = 6378245.0              // semi-major axis, metres
	krasovskyEE = 0.00669342162296594323 // first eccentricity squared
	bdXPi       = math.Pi * 3000.0 / 180.0
)

// outOfChina reports whether a point lies outside the bounding box in which
// GCJ-02 differs from WGS-84.
func outOfChina(lat, lng float64) bool {
	return lng < 72.004 || lng > 137.8347 || lat < 0.8293 || lat > 55.8271
}

// gcjOffset returns the GCJ-02 offset in degrees at a WGS-84 point, without
// the out-of-China test.
func gcjOffset(lat, lng float64) (dLat, dLng float64) {
	x, y := lng-105.0, lat-35.0
	common := (20.0*math.Sin(6.0*x*math.Pi) + 20.0*math.Sin(2.0*x*math.Pi)) * 2.0 / 3.0

	dLat = -100.0 + 2.0*x + 3.0*y + 0.2*y*y + 0.1*x*y + 0.2*math.Sqrt(math.Abs(x)) + common
	dLat += (20.0*math.Sin(y*math.Pi) + 40.0*math.Sin(y/3.0*math.Pi)) * 2.0 / 3.0
	dLat += (160.0*math.Sin(y/12.0*math.Pi) + 320.0*math.Sin(y*math.Pi/30.0)) * 2.0 / 3.0

	dLng = 300.0 + x + 2.0*y + 0.1*x*x + 0.1*x*y + 0.1*math.Sqrt(math.Abs(x)) + common
	dLng += (20.0*math.Sin(x*math.Pi) + 40.0*math.Sin(x/3.0*math.Pi)) * 2.0 / 3.0
	dLng += (150.0*math.Sin(x/12.0*math.Pi) + 300.0*math.Sin(x/30.0*math.Pi)) * 2.0 / 3.0

	radLat := lat / 180.0 * math.Pi
	magic := math.Sin(radLat)
	magic = 1 - krasovskyEE*magic*magic
	sqrtMagic := math.Sqrt(magic)
	dLat = (dLat * 180.0) / ((krasovskyA * (1 - krasovskyEE)) / (magic * sqrtMagic) * math.Pi)
	dLng = (dLng * 180.0) / (krasovskyA / sqrtMagic * math.Cos(radLat) * math.Pi)
	return dLat, dLng
}

// WGS84ToGCJ02 converts a WGS-84 position to GCJ-02.
func WGS84ToGCJ02(lat, lng float64) (float64, float64) {
	if outOfChina(lat, lng) {
		return lat, lng
	}
	dLat, dLng := gcjOffset(lat, lng)
	return lat + dLat, lng + dLng
}

// GCJ02ToWGS84 converts a GCJ-02 position to WGS-84, to within a few
// millimetres of the exact inverse of WGS84ToGCJ02.
func GCJ02ToWGS84(lat, lng float64) (float64, float64) {
	if outOfChina(lat, lng) {
		return lat, lng
	}
	// Solve w + offset(w) = g for w, starting from w = g. Each step shrinks
	// the error by about the offset's derivative (~1e-2), so 1e-10 degrees
	// (0.01 mm) is reached in 3-5 steps; the bound only matters for NaN.
	wLat, wLng := lat, lng
	for range 20 {
		dLat, dLng := gcjOffset(wLat, wLng)
		eLat, eLng := lat-(wLat+dLat), lng-(wLng+dLng)
		wLat, wLng = wLat+eLat, wLng+eLng
		if math.Abs(eLat) < 1e-10 && math.Abs(eLng) < 1e-10 {
			break
		}
	}
	return wLat, wLng
}

// GCJ02ToBD09 converts a GCJ-02 position to BD-09.
func GCJ02ToBD09(lat, lng float64) (float64, float64) {
	z := math.Sqrt(lng*lng+lat*lat) + 0.00002*math.Sin(lat*bdXPi)
	theta := math.Atan2(lat, lng) + 0.000003*math.Cos(lng*bdXPi)
	return z*math.Sin(theta) + 0.006, z*math.Cos(theta) + 0.0065
}

// BD09ToGCJ02 converts a BD-09 position to GCJ-02 with the standard published
// formula (an approximate inverse of GCJ02ToBD09, good to well under a metre).
func BD09ToGCJ02(lat, lng float64) (float64, float64) {
	x, y := lng-0.0065, lat-0.006
	z := math.Sqrt(x*x+y*y) - 0.00002*math.Sin(y*bdXPi)
	theta := math.Atan2(y, x) - 0.000003*math.Cos(x*bdXPi)
	return z * math.Sin(theta), z * math.Cos(theta)
}

// WGS84ToBD09 converts a WGS-84 position to BD-09 (through GCJ-02).
func WGS84ToBD09(lat, lng float64) (float64, float64) {
	return GCJ02ToBD09(WGS84ToGCJ02(lat, lng))
}

// BD09ToWGS84 converts a BD-09 position to WGS-84 (through GCJ-02).
func BD09ToWGS84(lat, lng float64) (float64, float64) {
	return GCJ02ToWGS84(BD09ToGCJ02(lat, lng))
}

// ToWGS84 converts a position reported in crs to WGS-84. ok is false for an
// unknown crs; "" means WGS-84.
func ToWGS84(crs string, lat, lng float64) (wLat, wLng float64, ok bool) {
	switch crs {
	case "", CRSWGS84:
		return lat, lng, true
	case CRSGCJ02:
		wLat, wLng = GCJ02ToWGS84(lat, lng)
		return wLat, wLng, true
	case CRSBD09:
		wLat, wLng = BD09ToWGS84(lat, lng)
		return wLat, wLng, true
	}
	return 0, 0, false
}

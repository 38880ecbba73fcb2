// Coordinate conversions for drawing on Chinese tile sources: the same
// formulas as internal/protocol/crs.go (checked against it within 1e-9 by
// TestCRSModuleMatchesGo). Positions stay WGS-84 everywhere in the UI and
// the API; only the map's projection (basemap.js) converts them, so that
// they line up with GCJ-02 or BD-09 tiles.
//
// GCJ-02 is WGS-84 plus an obfuscating offset inside China's bounding box
// (the identity outside it); BD-09 adds a rotation and scaling on top of
// GCJ-02. The inverses are the ones crs.go uses: fixed-point iteration for
// GCJ-02 -> WGS-84, the published approximate formula for BD-09 -> GCJ-02.
// No DOM or Leaflet here, so node can import the module.

const KRASOVSKY_A = 6378245.0; // semi-major axis, metres
const KRASOVSKY_EE = 0.00669342162296594323; // first eccentricity squared
const BD_X_PI = (Math.PI * 3000.0) / 180.0;

/** The tile coordinate systems the gateway's --tiles-crs names. */
export const CRS_NAMES = ['wgs84', 'gcj02', 'bd09'];

function outOfChina(lat, lng) {
  return lng < 72.004 || lng > 137.8347 || lat < 0.8293 || lat > 55.8271;
}

// gcjOffset is the GCJ-02 offset in degrees at a WGS-84 point, without the
// out-of-China test (crs.go's gcjOffset, term for term).
function gcjOffset(lat, lng) {
  const x = lng - 105.0;
  const y = lat - 35.0;
  const common = ((20.0 * Math.sin(6.0 * x * Math.PI) + 20.0 * Math.sin(2.0 * x * Math.PI)) * 2.0) / 3.0;

  let dLat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + common;
  dLat += ((20.0 * Math.sin(y * Math.PI) + 40.0 * Math.sin((y / 3.0) * Math.PI)) * 2.0) / 3.0;
  dLat += ((160.0 * Math.sin((y / 12.0) * Math.PI) + 320.0 * Math.sin((y * Math.PI) / 30.0)) * 2.0) / 3.0;

  let dLng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + common;
  dLng += ((20.0 * Math.sin(x * Math.PI) + 40.0 * Math.sin((x / 3.0) * Math.PI)) * 2.0) / 3.0;
  dLng += ((150.0 * Math.sin((x / 12.0) * Math.PI) + 300.0 * Math.sin((x / 30.0) * Math.PI)) * 2.0) / 3.0;

  const radLat = (lat / 180.0) * Math.PI;
  let magic = Math.sin(radLat);
  magic = 1 - KRASOVSKY_EE * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180.0) / (((KRASOVSKY_A * (1 - KRASOVSKY_EE)) / (magic * sqrtMagic)) * Math.PI);
  dLng = (dLng * 180.0) / ((KRASOVSKY_A / sqrtMagic) * Math.cos(radLat) * Math.PI);
  return [dLat, dLng];
}

/** wgs84ToGcj02 converts a WGS-84 position to GCJ-02: [lat, lng]. */
export function wgs84ToGcj02(lat, lng) {
  if (outOfChina(lat, lng)) return [lat, lng];
  const [dLat, dLng] = gcjOffset(lat, lng);
  return [lat + dLat, lng + dLng];
}

/** gcj02ToWgs84 inverts wgs84ToGcj02 to within a few millimetres. */
export function gcj02ToWgs84(lat, lng) {
  if (outOfChina(lat, lng)) return [lat, lng];
  // Solve w + offset(w) = g from w = g; 3-5 steps reach 1e-10 degrees.
  let wLat = lat;
  let wLng = lng;
  for (let i = 0; i < 20; i++) {
    const [dLat, dLng] = gcjOffset(wLat, wLng);
    const eLat = lat - (wLat + dLat);
    const eLng = lng - (wLng + dLng);
    wLat += eLat;
    wLng += eLng;
    if (Math.abs(eLat) < 1e-10 && Math.abs(eLng) < 1e-10) break;
  }
  return [wLat, wLng];
}

/** gcj02ToBd09 converts a GCJ-02 position to BD-09. */
export function gcj02ToBd09(lat, lng) {
  const z = Math.sqrt(lng * lng + lat * lat) + 0.00002 * Math.sin(lat * BD_X_PI);
  const theta = Math.atan2(lat, lng) + 0.000003 * Math.cos(lng * BD_X_PI);
  return [z * Math.sin(theta) + 0.006, z * Math.cos(theta) + 0.0065];
}

/** bd09ToGcj02 is the published approximate inverse of gcj02ToBd09. */
export function bd09ToGcj02(lat, lng) {
  const x = lng - 0.0065;
  const y = lat - 0.006;
  const z = Math.sqrt(x * x + y * y) - 0.00002 * Math.sin(y * BD_X_PI);
  const theta = Math.atan2(y, x) - 0.000003 * Math.cos(x * BD_X_PI);
  return [z * Math.sin(theta), z * Math.cos(theta)];
}

/** wgs84ToBd09 converts a WGS-84 position to BD-09 (through GCJ-02). */
export function wgs84ToBd09(lat, lng) {
  return gcj02ToBd09(...wgs84ToGcj02(lat, lng));
}

/** bd09ToWgs84 converts a BD-09 position to WGS-84 (through GCJ-02). */
export function bd09ToWgs84(lat, lng) {
  return gcj02ToWgs84(...bd09ToGcj02(lat, lng));
}

/**
 * converter returns the pair of functions between WGS-84 and the tiles'
 * coordinate system name: toTiles for drawing, fromTiles for anything read
 * back from the map. Unknown names and "wgs84" are the identity.
 */
export function converter(name) {
  switch (name) {
    case 'gcj02':
      return { toTiles: wgs84ToGcj02, fromTiles: gcj02ToWgs84 };
    case 'bd09':
      return { toTiles: wgs84ToBd09, fromTiles: bd09ToWgs84 };
    default:
      return { toTiles: (lat, lng) => [lat, lng], fromTiles: (lat, lng) => [lat, lng] };
  }
}

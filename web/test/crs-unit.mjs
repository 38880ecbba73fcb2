// Reads a JSON array of [lat, lng] points on stdin and prints, for each, the
// conversions of web/static/js/crs.js as {name: [lat, lng]}; the Go test
// TestCRSModuleMatchesGo compares them with internal/protocol's.
import { readFileSync } from 'node:fs';
import {
  bd09ToGcj02, bd09ToWgs84, converter, gcj02ToBd09, gcj02ToWgs84, wgs84ToBd09, wgs84ToGcj02,
} from '../static/js/crs.js';

const points = JSON.parse(readFileSync(0, 'utf8'));
const gcj = converter('gcj02');
const out = points.map(([lat, lng]) => ({
  wgs84ToGcj02: wgs84ToGcj02(lat, lng),
  gcj02ToWgs84: gcj02ToWgs84(lat, lng),
  gcj02ToBd09: gcj02ToBd09(lat, lng),
  bd09ToGcj02: bd09ToGcj02(lat, lng),
  wgs84ToBd09: wgs84ToBd09(lat, lng),
  bd09ToWgs84: bd09ToWgs84(lat, lng),
  roundTripGcj02: gcj.fromTiles(...gcj.toTiles(lat, lng)),
}));
process.stdout.write(JSON.stringify(out));

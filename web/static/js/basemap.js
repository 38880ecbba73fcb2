// Leaflet map creation shared by the map page and the device page. Leaflet
// (window.L) and Leaflet.markercluster are loaded as classic scripts from
// vendor/ before the modules run.

import { converter } from './crs.js';

const L = window.L;

const MAX_ZOOM = 19;

/** The view when there is nothing to show yet. */
export const WORLD = { center: [20, 0], zoom: 2 };

/**
 * tilesCRS is Web Mercator for tiles drawn in crsName ("gcj02", "bd09"):
 * its projection converts each WGS-84 position before projecting it, and
 * back when unprojecting. So every layer (markers, clusters, trails,
 * tracks, popups) takes and returns WGS-84, as the API serves it, and is
 * drawn where such tiles show the place; fitBounds, setView, panTo and
 * anything read back from the map (getCenter, click positions) go through
 * the same conversion. This is one place instead of a conversion at every
 * drawing call, which a new layer could forget. "wgs84" is Leaflet's own.
 *
 * BD-09 here means BD-09 coordinates on a standard Web Mercator grid; Baidu's
 * own tiles use a Mercator variant and tile numbering of their own, which
 * this does not implement (README, Maps in China).
 */
export function tilesCRS(crsName) {
  if (crsName !== 'gcj02' && crsName !== 'bd09') return L.CRS.EPSG3857;
  const { toTiles, fromTiles } = converter(crsName);
  const merc = L.Projection.SphericalMercator;
  const projection = {
    bounds: merc.bounds,
    project(ll) {
      const [lat, lng] = toTiles(ll.lat, ll.lng);
      return merc.project(L.latLng(lat, lng));
    },
    unproject(point) {
      const ll = merc.unproject(point);
      const [lat, lng] = fromTiles(ll.lat, ll.lng);
      return L.latLng(lat, lng);
    },
  };
  return L.extend({}, L.CRS.EPSG3857, { code: `EPSG:3857+${crsName}`, projection });
}

/**
 * createMap makes a map in container. me is /api/v1/me: its "tiles" URL
 * template gives a tile layer, drawn in its "tiles_crs" (tilesCRS); ""
 * means none, and the map works on its grey background (markers, clusters,
 * popups, tracks), also without internet.
 */
export function createMap(container, me) {
  const map = L.map(container, {
    crs: tilesCRS(me && me.tiles ? me.tiles_crs : 'wgs84'),
    center: WORLD.center, zoom: WORLD.zoom, worldCopyJump: true,
    // Without a tile layer nothing else bounds the zoom, and the marker
    // cluster group needs a finite maximum to build its grids.
    minZoom: 1, maxZoom: MAX_ZOOM,
  });
  if (me && me.tiles) {
    const tiles = L.tileLayer(me.tiles, {
      // The attribution is the operator's configuration, not device data.
      attribution: me.tiles_attribution || '', maxZoom: MAX_ZOOM,
    });
    // A tile that fails to load (no internet, server down) only leaves a
    // gap in the grey background: markers and popups keep working.
    tiles.addTo(map);
  } else {
    container.classList.add('no-tiles');
  }
  L.control.scale({ imperial: false }).addTo(map);
  return map;
}

/** boundsOf returns Leaflet bounds of [lat, lng] points, or null if empty. */
export function boundsOf(points) {
  return points.length ? L.latLngBounds(points) : null;
}

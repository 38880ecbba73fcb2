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
 * means none. Without tiles, or while they cannot be reached, the embedded
 * low-detail basemap (offlineBasemap) shows instead of a grey void, and
 * markers, clusters, popups and tracks work as ever.
 */
export function createMap(container, me) {
  const map = L.map(container, {
    crs: tilesCRS(me && me.tiles ? me.tiles_crs : 'wgs84'),
    center: WORLD.center, zoom: WORLD.zoom, worldCopyJump: true,
    // Without a tile layer nothing else bounds the zoom, and the marker
    // cluster group needs a finite maximum to build its grids.
    minZoom: 1, maxZoom: MAX_ZOOM,
  });
  const offline = offlineBasemap(map);
  if (me && me.tiles) {
    const tiles = L.tileLayer(me.tiles, {
      // The attribution is the operator's configuration, not device data.
      attribution: me.tiles_attribution || '', maxZoom: MAX_ZOOM,
    });
    // Tiles that fail (no internet, server down) while none of the same
    // round of loading succeeded: the basemap goes under the tile pane, so
    // it fills every gap from then on and tiles that load cover it, and the
    // notice shows until a tile loads again.
    let loaded = 0; // tiles loaded since the layer last started loading
    tiles.on('loading', () => { loaded = 0; });
    tiles.on('tileload', () => {
      loaded++;
      offline.notice(false);
    });
    tiles.on('tileerror', () => {
      if (loaded) return;
      offline.show();
      offline.notice(true);
    });
    tiles.addTo(map);
  } else {
    // No tiles by configuration (an offline site): the basemap, no notice.
    container.classList.add('no-tiles');
    offline.show();
  }
  L.control.scale({ imperial: false }).addTo(map);
  return map;
}

/** The notice shown while the tiles cannot be reached. */
export const TILES_NOTICE = 'Map tiles unreachable: showing a low-detail basemap';

// The embedded basemap: Natural Earth's 1:110m countries and land (the
// world-atlas package, vendor/countries-110m.json, TopoJSON) decoded with
// topojson-client's ES modules. Both load only when a map first needs them,
// once per page.
const ATLAS_URL = new URL('../vendor/countries-110m.json', import.meta.url);
const TOPOJSON_URL = new URL('../vendor/topojson-client/index.js', import.meta.url);
let atlas = null; // Promise of { land, borders } GeoJSON

function loadAtlas() {
  if (!atlas) {
    atlas = Promise.all([
      import(TOPOJSON_URL.href),
      fetch(ATLAS_URL).then((r) => {
        if (!r.ok) throw new Error(`${ATLAS_URL.pathname}: HTTP ${r.status}`);
        return r.json();
      }),
    ]).then(([topojson, topo]) => ({
      land: topojson.feature(topo, topo.objects.land),
      // Borders between two countries only: coastlines are the land's edge.
      borders: topojson.mesh(topo, topo.objects.countries, (a, b) => a !== b),
    }));
    atlas.catch(() => { atlas = null; }); // a later map tries again
  }
  return atlas;
}

/**
 * offlineBasemap returns show(), which draws the basemap on map (once), and
 * notice(on), which shows or hides the "tiles unreachable" notice. The
 * basemap has a pane of its own under the tiles (the tile pane's z-index is
 * 200) and is not interactive; it is drawn through the map's CRS like
 * every other layer, so it lines up with the markers.
 */
function offlineBasemap(map) {
  let shown = false;
  let box = null;
  return {
    show() {
      if (shown) return;
      shown = true;
      const pane = map.createPane('dt-basemap');
      pane.style.zIndex = '150';
      // The sea; the land is drawn over it.
      map.getContainer().style.background = '#d4e4f1';
      loadAtlas().then(({ land, borders }) => {
        L.geoJSON(land, {
          pane: 'dt-basemap', interactive: false, attribution: 'Basemap: Natural Earth',
          style: { className: 'dt-basemap-land', color: '#7b8ea3', weight: 1, fillColor: '#f4f1ea', fillOpacity: 1 },
        }).addTo(map);
        L.geoJSON(borders, {
          pane: 'dt-basemap', interactive: false,
          style: { className: 'dt-basemap-border', color: '#9aa7b5', weight: 1, dashArray: '4 3', fill: false },
        }).addTo(map);
      }).catch((err) => console.warn('basemap:', err.message));
    },
    notice(on) {
      if (!on && !box) return;
      if (!box) {
        box = L.DomUtil.create('div', 'leaflet-control dt-tiles-notice');
        box.setAttribute('role', 'status');
        box.textContent = TILES_NOTICE;
        // Styled here (CSSOM, allowed by the CSP) so that every page with a
        // map has it without a stylesheet of its own.
        Object.assign(box.style, {
          background: '#fff7ed', color: '#9a3412', border: '1px solid #fdba74', borderRadius: '4px',
          padding: '4px 8px', font: '12px/1.4 system-ui, sans-serif', boxShadow: '0 1px 4px rgba(0, 0, 0, 0.2)',
        });
        const Notice = L.Control.extend({ options: { position: 'topright' }, onAdd: () => box });
        new Notice().addTo(map);
      }
      box.style.display = on ? '' : 'none';
    },
  };
}

/** boundsOf returns Leaflet bounds of [lat, lng] points, or null if empty. */
export function boundsOf(points) {
  return points.length ? L.latLngBounds(points) : null;
}

// Leaflet map creation shared by the map page and the device page. Leaflet
// (window.L) and Leaflet.markercluster are loaded as classic scripts from
// vendor/ before the modules run.

const L = window.L;

const MAX_ZOOM = 19;

/** The view when there is nothing to show yet. */
export const WORLD = { center: [20, 0], zoom: 2 };

/**
 * createMap makes a map in container. me is /api/v1/me: its "tiles" URL
 * template gives a tile layer; "" means none, and the map works on its grey
 * background (markers, clusters, popups, tracks), also without internet.
 */
export function createMap(container, me) {
  const map = L.map(container, {
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

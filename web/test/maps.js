// The map's tile settings (TestMapTilesInBrowser), one scenario per run,
// named by cfg.scenario:
//   gcj02: with --tiles-crs gcj02 and a local tile server, the marker of a
//     stored WGS-84 point is drawn where the GCJ-02 tile grid has the
//     point's GCJ-02 coordinate (cfg.gcj02, computed by Go), not where it
//     has the unconverted one; the API still serves WGS-84.
//   attribution: with the default tiles the map credits OpenStreetMap.
//   offline: with tiles that cannot be reached, the embedded basemap
//     (land and borders) shows under a visible notice, and the device's
//     marker is on it.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

// tileGrid returns, for the tiles the browser shows, where a coordinate
// falls on screen: the Web Mercator pixel of [lat, lng] at the tiles' zoom,
// placed by the on-screen box of the tile image that holds it. It reads
// the tiles' z/x/y from their URLs, so it measures the grid the tile server
// was asked for, not the map's own projection.
async function tileGrid(page, prefix, points) {
  return page.evaluate(({ prefix, points }) => {
    const tiles = [...document.querySelectorAll('#map img.leaflet-tile')].map((img) => {
      const m = img.src.startsWith(prefix) && /(\d+)\/(-?\d+)\/(-?\d+)\.png$/.exec(img.src.slice(prefix.length));
      if (!m) return null;
      const r = img.getBoundingClientRect();
      return { z: +m[1], x: +m[2], y: +m[3], left: r.left, top: r.top, width: r.width };
    }).filter(Boolean);
    if (!tiles.length) return null;
    const z = tiles[0].z;
    return points.map(([lat, lng]) => {
      // EPSG:3857 as every Web Mercator tile server numbers its tiles.
      const p = window.L.CRS.EPSG3857.latLngToPoint(window.L.latLng(lat, lng), z);
      const tx = Math.floor(p.x / 256);
      const ty = Math.floor(p.y / 256);
      const t = tiles.find((t) => t.z === z && t.x === tx && t.y === ty);
      if (!t) return null;
      const scale = t.width / 256;
      return { x: t.left + (p.x - tx * 256) * scale, y: t.top + (p.y - ty * 256) * scale, tile: `${z}/${tx}/${ty}` };
    });
  }, { prefix, points });
}

// markerAnchor is the screen point a device's marker stands for: the
// centre of Leaflet's icon box (iconAnchor is half its size).
async function markerAnchor(page, id) {
  return page.evaluate((id) => {
    const el = document.querySelector(`#map .dt-marker[data-device="${CSS.escape(id)}"]`);
    const icon = el && el.closest('.leaflet-marker-icon');
    if (!icon) return null;
    const r = icon.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  }, id);
}

const NOTICE = 'Map tiles unreachable: showing a low-detail basemap';

// basemapShown waits until the basemap's land (and, with borders, the
// borders between countries: none may be in a city's view) is drawn on
// #map and returns how many non-empty paths each has.
async function basemapShown(page, { borders = false } = {}) {
  return h.waitFor(`the basemap's land${borders ? ' and borders' : ''} drawn`, () => page.evaluate((borders) => {
    const drawn = (cls) => [...document.querySelectorAll(`#map .leaflet-dt-basemap-pane path.${cls}`)]
      .filter((p) => /^M-?\d.*L/.test(p.getAttribute('d') || '')).length;
    const got = { land: drawn('dt-basemap-land'), borders: drawn('dt-basemap-border') };
    if (got.land > 0 && (!borders || got.borders > 0)) return got;
    throw new Error(`drawn: ${JSON.stringify(got)}`);
  }, borders));
}

// noticeShown waits until the notice is visible and returns its text.
async function noticeShown(page) {
  const notice = page.locator('#map .dt-tiles-notice');
  await notice.waitFor({ state: 'visible', timeout: 15000 });
  return notice.textContent();
}

async function gcj02({ page }) {
  await h.login(page, 'admin', cfg.users.admin);
  const me = await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()));
  assert.equal(me.tiles_crs, 'gcj02', '/api/v1/me tiles_crs');
  const id = cfg.device;
  // The marker still, and the tiles around it loaded.
  let prev = null;
  await h.waitFor(`marker of ${id} still, tiles loaded`, async () => {
    const a = await markerAnchor(page, id);
    const loading = await page.locator('#map img.leaflet-tile:not(.leaflet-tile-loaded)').count();
    const still = a && prev && a.x === prev.x && a.y === prev.y && loading === 0;
    prev = a;
    return still;
  }, { interval: 250 });
  const [want, raw] = await h.waitFor('the tiles under both coordinates', () =>
    tileGrid(page, cfg.tilePrefix, [cfg.gcj02, cfg.wgs84]).then((g) => g && g[0] && g[1] && g));
  const got = await markerAnchor(page, id);
  h.log(`marker at ${got.x.toFixed(1)},${got.y.toFixed(1)}; GCJ-02 grid point ${want.x.toFixed(1)},${want.y.toFixed(1)} (tile ${want.tile}); unconverted ${raw.x.toFixed(1)},${raw.y.toFixed(1)}`);
  assert.ok(Math.abs(got.x - want.x) <= 1 && Math.abs(got.y - want.y) <= 1,
    `marker at ${JSON.stringify(got)}, want the GCJ-02 point ${JSON.stringify(want)} within 1 px`);
  // The unconverted point is where the marker would be without the
  // conversion: a few hundred metres away, so tens of pixels or more.
  const off = { x: got.x - raw.x, y: got.y - raw.y };
  const expected = { x: want.x - raw.x, y: want.y - raw.y };
  assert.ok(Math.hypot(expected.x, expected.y) > 20, `GCJ-02 offset ${JSON.stringify(expected)} px too small to tell`);
  assert.ok(Math.abs(off.x - expected.x) <= 1 && Math.abs(off.y - expected.y) <= 1,
    `marker is ${JSON.stringify(off)} px from the unconverted point, want the GCJ-02 offset ${JSON.stringify(expected)}`);
  // Positions stay WGS-84: in the marker (the map converts only to draw) and
  // in the API.
  const ll = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  assert.ok(Math.abs(ll[0] - cfg.wgs84[0]) < 1e-9 && Math.abs(ll[1] - cfg.wgs84[1]) < 1e-9, `marker latlng ${ll}`);
  const { items } = await h.api(`/api/v1/devices/${id}/locations`);
  assert.deepEqual([items[0].lat, items[0].lng], cfg.wgs84, 'the API serves the stored WGS-84 position');
  // The tiles load: no notice, no basemap.
  assert.equal(await page.locator('#map .dt-tiles-notice:visible').count(), 0, 'no notice while the tiles load');
  assert.equal(await page.locator('#map .dt-basemap-land').count(), 0, 'no basemap while the tiles load');
  await h.screenshot(page, 'gcj02');
}

async function attribution({ page }) {
  // The real tile server is never asked: this runs offline too.
  await page.route(/^https:\/\/tile\.openstreetmap\.org\//, (route) => route.abort());
  await h.login(page, 'admin', cfg.users.admin);
  const me = await page.evaluate(() => fetch('/api/v1/me').then((r) => r.json()));
  assert.match(me.tiles, /tile\.openstreetmap\.org/, '/api/v1/me tiles');
  assert.equal(me.tiles_crs, 'wgs84', '/api/v1/me tiles_crs');
  const credit = page.locator('#map .leaflet-control-attribution');
  await credit.waitFor({ timeout: 15000 });
  assert.match(await credit.textContent(), /OpenStreetMap/, 'attribution control');
  // The aborted tiles are unreachable tiles too.
  await basemapShown(page);
  assert.equal(await noticeShown(page), NOTICE);
}

async function offline({ page }) {
  await h.login(page, 'admin', cfg.users.admin);
  await basemapShown(page);
  assert.equal(await noticeShown(page), NOTICE);
  // The basemap is under the markers, which still show.
  await page.locator(`#map .dt-marker[data-device="${cfg.device}"]`).waitFor({ timeout: 15000 });
  assert.match(await page.locator('#map .leaflet-control-attribution').textContent(), /Natural Earth/);
  // Zoomed out from the device (Shanghai, zoom 15) to East Asia: the
  // borders show, and the land is a large filled shape.
  for (let i = 0; i < 11; i++) {
    await page.locator('#map .leaflet-control-zoom-out').click();
    await page.waitForTimeout(300);
  }
  const drawn = await basemapShown(page, { borders: true });
  const land = await h.waitFor('a large land shape', () => page.evaluate(() => {
    for (const path of document.querySelectorAll('#map path.dt-basemap-land')) {
      const r = path.getBoundingClientRect();
      if (r.width > 300 && r.height > 200) return { width: Math.round(r.width), height: Math.round(r.height) };
    }
    return false;
  }));
  h.log(`basemap: ${drawn.land} land and ${drawn.borders} border paths; land box ${JSON.stringify(land)}`);
  assert.equal(await noticeShown(page), NOTICE, 'the notice stays while no tile loads');
  await h.screenshot(page, 'offline');
}

const scenarios = { gcj02, attribution, offline };
const scenario = scenarios[cfg.scenario];
if (!scenario) throw new Error(`unknown scenario ${cfg.scenario}`);
h.run(scenario);

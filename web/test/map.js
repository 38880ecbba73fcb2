// The map shows the fleet, and a location sent by a device moves its marker
// on screen within a second. The search and the status and group filters
// decide what the list, the markers and the counters show; names show on
// the markers when zoomed in; an unnamed device shows its id once (list,
// popup, follow bar, device page); the follow bar fits a 390 px phone.
// README screenshots: login, map.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

// shownOnMap waits until the map shows exactly the devices of want (ids),
// standalone or in clusters, and the list exactly those too.
async function shownOnMap(page, what, want) {
  const ids = [...want].sort();
  return h.waitFor(`${what}: ${ids.length} devices on the map and in the list`, async () => {
    const m = await h.fleetOnMap(page);
    const listed = await page.$$eval('#device-list li.device-item:not([hidden])', (li) => li.map((e) => e.dataset.device).sort());
    return m.total === ids.length && m.ids.every((id) => want.has(id)) && JSON.stringify(listed) === JSON.stringify(ids) && m;
  });
}

// countsText is what #device-counts should say for these devices.
function countsText(items, total) {
  const online = items.filter((d) => d.online).length;
  const of = total === undefined ? '' : ` (of ${total})`;
  return `${online} online / ${items.length} device${items.length === 1 ? '' : 's'}${of}`;
}

// occurrences counts the times a word appears in a text.
const occurrences = (text, word) => text.split(word).length - 1;

h.run(async ({ page }) => {
  await page.goto(cfg.base + '/');
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: 15000 });
  await h.screenshot(page, 'readme-login');
  await h.login(page, 'admin', cfg.users.admin);
  const fleet = [...cfg.groupA, ...cfg.groupB];

  // Every located device is on the map, standalone or in a cluster.
  const { items } = await page.evaluate(() => fetch('/api/v1/devices').then((r) => r.json()));
  const located = items.filter((d) => d.location).map((d) => d.id).sort();
  assert.deepEqual(located, [...fleet].sort(), 'every device of the fleet has a position');
  const shown = await h.waitFor(`map showing ${fleet.length} devices`, async () => {
    const m = await h.fleetOnMap(page);
    return m.total === fleet.length && m;
  });
  h.log(`map: ${shown.ids.length} markers + clusters ${JSON.stringify(shown.clusters)} = ${shown.total}`);
  assert.equal(await page.locator('#device-list li.device-item').count(), fleet.length, 'device list');
  await h.screenshot(page, 'fleet');
  await h.screenshot(page, 'readme-map');

  // The search, the status filter and the group filter narrow the list, the
  // markers and the counters alike; the counters say of how many.
  const total = items.length;
  const byId = new Map(items.map((d) => [d.id, d]));
  await h.waitFor('counters of the whole fleet', async () => (await page.textContent('#device-counts')) === countsText(items));
  const groups = await page.$$eval('#device-group-filter option', (o) => o.map((e) => e.textContent));
  assert.deepEqual(groups, ['All groups', 'ga', 'gb'], 'group filter options: the groups of the visible devices');
  const check = async (what, filter) => {
    const want = items.filter(filter);
    assert.ok(want.length > 0 && want.length < total, `${what}: ${want.length} of ${total} devices, want some but not all`);
    await shownOnMap(page, what, new Set(want.map((d) => d.id)));
    await h.waitFor(`${what}: counters "${countsText(want, total)}"`, async () =>
      (await page.textContent('#device-counts')) === countsText(want, total));
    h.log(`${what}: ${want.length} devices shown, counters "${countsText(want, total)}"`);
  };
  await page.fill('#device-search', 'gb-');
  await check('search "gb-"', (d) => d.id.startsWith('gb-'));
  await page.fill('#device-search', '');
  await page.selectOption('#device-status-filter', 'offline');
  await check('offline', (d) => !d.online);
  await page.selectOption('#device-status-filter', 'online');
  await check('online', (d) => d.online);
  await page.selectOption('#device-group-filter', { label: 'ga' });
  await check('online in group ga', (d) => d.online && d.group === 'ga');
  await page.selectOption('#device-status-filter', '');
  await check('group ga', (d) => d.group === 'ga');
  await page.fill('#device-search', 'mover');
  await check('search "mover" in group ga', (d) => d.id === 'mover');
  await page.fill('#device-search', '');
  await page.selectOption('#device-group-filter', { label: 'All groups' });
  await shownOnMap(page, 'no filter', new Set(fleet));
  await h.waitFor('counters of the whole fleet again', async () => (await page.textContent('#device-counts')) === countsText(items));

  // An unnamed device shows its id once: in the list, its popup, the follow
  // bar and its page's header.
  const plain = cfg.groupA.find((d) => cfg.names[d] === '');
  assert.ok(plain, 'the fleet has an unnamed device');
  assert.equal(byId.get(plain).name, '', `${plain} has a name`);
  const plainItem = page.locator(`#device-list li.device-item[data-device="${plain}"]`);
  assert.equal(occurrences(await plainItem.innerText(), plain), 1, `list item of ${plain}: ${await plainItem.innerText()}`);
  await h.focusDevice(page, plain);
  await page.click(`#map .dt-marker[data-device="${plain}"]`);
  await page.locator(`.leaflet-popup:has(a.popup-link[href="#/device/${plain}"])`).waitFor();
  const popupText = await page.locator('.leaflet-popup .popup').innerText();
  assert.equal(occurrences(popupText, plain), 1, `popup of ${plain}: ${popupText}`);
  await page.click('.leaflet-popup .popup-follow');
  await page.locator('#follow-indicator').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#follow-name'), plain);
  assert.equal(occurrences(await page.locator('#follow-indicator').innerText(), plain), 1, 'follow bar');
  await page.click('#follow-stop');
  await page.goto(`${cfg.base}/#/device/${plain}`);
  await h.waitFor(`device page of ${plain}`, async () => (await page.textContent('#device-title .title-name')) === plain);
  const title = await page.locator('#device-title').innerText();
  assert.equal(occurrences(title, plain), 1, `device page header: ${title}`);
  assert.equal(await page.locator('#device-title .title-id').count(), 0, 'an id beside the id');
  await page.goto(`${cfg.base}/#/map`);
  await page.locator('#map .dt-marker').first().waitFor();

  // Zoomed in on the mover, a new position moves its marker within 1 s.
  const id = 'mover';
  await h.focusDevice(page, id);
  const popup = page.locator('.leaflet-popup');
  assert.equal(await popup.locator('.popup-name').textContent(), cfg.names[id]);
  assert.match(await popup.locator('.popup-group').textContent(), /\bga\b/);
  assert.equal(await popup.locator('a.popup-link').getAttribute('href'), `#/device/${id}`);
  const start = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  const dLat = 0.0003, dLng = 0.0008; // about 80 m east, 30 m north: tens of pixels at zoom 16
  const lat = start[0] + dLat, lng = start[1] + dLng;
  const { took, from } = await h.moveAndMeasure(page, id, lat, lng);
  assert.ok(took <= 1000, `marker moved ${took} ms after the send, want within 1 s`);
  // It moved the right way and far enough to tell the map was zoomed in
  // to 16 or more (where it cannot be clustered).
  const to = await h.waitFor('marker settled', async () => {
    const a = await h.markerBox(page, id);
    await new Promise((r) => setTimeout(r, 100));
    const b = await h.markerBox(page, id);
    return a && b && a.x === b.x && a.y === b.y && b;
  });
  assert.ok(to.x > from.x && to.y < from.y, `marker went from ${JSON.stringify(from)} to ${JSON.stringify(to)}, want east and north`);
  const zoom = h.zoomOf(to.x - from.x, dLng);
  h.log(`zoom after clicking the device: ${zoom.toFixed(2)}`);
  assert.ok(zoom >= 15.9, `zoom ${zoom.toFixed(2)} after clicking the device, want >= 16`);
  const now = await page.evaluate((id) => window.devtrack.markerLatLng(id), id);
  assert.ok(Math.abs(now[0] - lat) < 1e-9 && Math.abs(now[1] - lng) < 1e-9, `marker at ${now}, sent ${lat},${lng}`);
  // The open popup follows the new position (the ingest frames say 4.2 m/s).
  await h.waitFor('popup speed', async () => /4[.,]2|15[.,]1/.test(await popup.locator('.popup-speed').textContent()));
  await h.screenshot(page, 'moved');

  // Zoomed in (15 and more), standalone markers show their names; further
  // out they do not (the selected one keeps its own), and clustered devices
  // have no marker to label.
  const labels = () => page.$$eval('#map .dt-marker[data-device]', (els) => els.map((e) => {
    const l = e.querySelector('.dt-marker-label');
    return { id: e.dataset.device, selected: e.classList.contains('selected'), text: l.textContent, shown: l.getBoundingClientRect().width > 0 };
  }));
  // zoomTo zooms with the keyboard ("-" and "+" on the focused map) until
  // the map is at zoom z. A key pressed the moment a zoom step ends is
  // sometimes lost (Leaflet, with the buttons too): it is pressed again.
  const zoomTo = async (z) => {
    const zoom = () => page.evaluate(() => window.devtrack.zoom());
    await page.focus('#map');
    for (let i = 0; i < 12 && (await zoom()) !== z; i++) {
      const now = await zoom();
      await page.keyboard.press(now > z ? 'Minus' : 'Equal');
      await h.waitFor(`zoom ${now} changed`, async () => (await zoom()) !== now &&
        !(await page.evaluate(() => document.querySelector('#map .leaflet-map-pane').classList.contains('leaflet-zoom-anim'))),
      { timeout: 2000 }).catch((e) => h.log(`${e.message}; pressing again`));
    }
    assert.equal(await zoom(), z);
  };
  await zoomTo(15);
  const near = await h.waitFor('named markers at zoom 15', async () => {
    const l = await labels();
    return l.length > 0 && l.every((m) => m.shown) && l;
  });
  for (const m of near) assert.equal(m.text, cfg.names[m.id] || (byId.get(m.id).name || m.id), `label of ${m.id}`);
  assert.ok(near.some((m) => m.id === id && m.text === cfg.names[id]), `no label "${cfg.names[id]}" at zoom 15: ${JSON.stringify(near)}`);
  h.log(`zoom 15: ${near.length} markers labelled`);
  await zoomTo(13);
  const far = await h.waitFor('no names at zoom 13', async () => {
    const l = await labels();
    return l.length > 1 && l.filter((m) => !m.selected).every((m) => !m.shown) && l;
  });
  h.log(`zoom 13: ${far.length} markers, labelled only the selected one`);

  // The follow bar fits a 390 px wide phone, also for a long name: nothing
  // wider than the screen, the bar within it.
  await page.setViewportSize({ width: 1280, height: 800 });
  await h.focusDevice(page, 'xss');
  await page.click('#map .dt-marker[data-device="xss"]');
  await page.click('.leaflet-popup:has(a.popup-link[href="#/device/xss"]) .popup-follow');
  await page.locator('#follow-indicator').waitFor({ state: 'visible' });
  await page.setViewportSize({ width: 390, height: 844 });
  let last = null;
  const fit = await h.waitFor('follow bar inside a 390 px screen', async () => {
    const r = await page.evaluate(() => {
      const b = document.querySelector('#follow-indicator').getBoundingClientRect();
      // What sticks out, for the failure message: the outermost elements.
      const wide = [...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5 &&
        !(e.parentElement && e.parentElement.getBoundingClientRect().right > innerWidth + 0.5));
      return { scrollWidth: document.documentElement.scrollWidth, bodyWidth: document.body.scrollWidth,
        left: b.left, right: b.right, top: b.top, bottom: b.bottom, width: innerWidth,
        wide: wide.slice(0, 6).map((e) => `${e.tagName.toLowerCase()}#${e.id}.${e.className} right ${Math.round(e.getBoundingClientRect().right)}`) };
    });
    last = r;
    return r.width === 390 && r.scrollWidth <= 390 && r.bodyWidth <= 390 && r.left >= 0 && r.right <= 390 && r.top >= 0 && r;
  }, { timeout: 5000 }).catch((e) => {
    throw new Error(`${e.message}: ${JSON.stringify(last)}`);
  });
  h.log(`follow bar at 390 px: ${JSON.stringify(fit)}`);
  assert.ok(await page.locator('#follow-stop').isVisible(), 'Stop button of the follow bar');
  const stop = await page.locator('#follow-stop').boundingBox();
  assert.ok(stop.x >= 0 && stop.x + stop.width <= 390, `Stop button at ${JSON.stringify(stop)}`);
  const zoomBox = await page.locator('#map .leaflet-control-zoom').boundingBox();
  const overlap = !(fit.left >= zoomBox.x + zoomBox.width || fit.right <= zoomBox.x || fit.top >= zoomBox.y + zoomBox.height || fit.bottom <= zoomBox.y);
  assert.ok(!overlap, `follow bar ${JSON.stringify(fit)} covers the zoom buttons ${JSON.stringify(zoomBox)}`);
  await h.screenshot(page, 'phone-follow');
  await page.click('#follow-stop');
  await page.setViewportSize({ width: 1280, height: 800 });
});

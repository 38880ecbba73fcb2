// The device page (#/device/<id>) of a device with a known stored track:
// #track-load loads it, the slider moves the playback marker along it, and
// the command form sends a command to the connected device and shows its
// answer. Invalid arguments are refused in the page; a command to a device
// that is not connected shows "offline". The GPX export link downloads the
// track's points; the trips list matches the API's trips and stops. The
// range's date inputs hold "YYYY-MM-DD HH:MM" (24 h) and say what is wrong
// with anything else; the legend names the track's colours; the speed
// select changes the playback's pace while it plays. Command results go to
// a list of their own; the status line says only whether the device is
// connected and when it was last seen. README screenshot: device.
'use strict';
const fs = require('fs');
const h = require('./helpers');
const { assert, cfg } = h;

// trackOnMap reads what #device-map shows of the track: the centres of the
// playback marker and of the start and end markers, and the polyline's box.
async function trackOnMap(page) {
  return page.evaluate(() => {
    const centre = (sel) => {
      const el = document.querySelector(`#device-map ${sel}`);
      if (!el) return null;
      const r = el.getBoundingClientRect();
      return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
    };
    const line = document.querySelector('#device-map path.dt-track');
    const box = line && line.getBoundingClientRect();
    const map = document.querySelector('#device-map').getBoundingClientRect();
    return {
      // Leaflet draws a path out of view as "M0 0" and marks the map
      // container while it animates a zoom.
      drawn: ['dt-track', 'dt-track-start', 'dt-track-end', 'dt-playhead'].every((c) => {
        const d = document.querySelector(`#device-map path.${c}`)?.getAttribute('d');
        return d && d !== 'M0 0';
      }),
      animating: document.querySelector('#device-map').classList.contains('leaflet-zoom-anim'),
      map: { left: map.left, top: map.top, right: map.right, bottom: map.bottom },
      playhead: centre('path.dt-playhead'),
      start: centre('path.dt-track-start'),
      end: centre('path.dt-track-end'),
      line: line && { d: line.getAttribute('d') || '', left: box.left, top: box.top, right: box.right, bottom: box.bottom },
      time: document.querySelector('#track-time').textContent,
    };
  });
}

// settledTrack waits until the map shows the whole track, still: every
// part drawn, no zoom animation, the same on-screen positions twice in a row.
async function settledTrack(page, what, cond) {
  let prev = null;
  return h.waitFor(what, async () => {
    const m = await trackOnMap(page);
    const same = prev && JSON.stringify(prev) === JSON.stringify(m);
    prev = m;
    return m.drawn && !m.animating && same && cond(m) && m;
  }, { interval: 100 });
}

const near = (a, b) => a && b && Math.abs(a.x - b.x) < 1 && Math.abs(a.y - b.y) < 1;
const inside = (p, box) => p.x >= box.left - 1 && p.x <= box.right + 1 && p.y >= box.top - 1 && p.y <= box.bottom + 1;

// fmtTime is how the page shows a point's time and speed, computed in the
// browser (its time zone): "YYYY-MM-DD HH:MM:SS · 12.3 km/h".
async function fmtTime(page, ts, speed) {
  return page.evaluate(({ ts, speed }) => {
    const d = new Date(ts);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}` +
      ` · ${(speed * 3.6).toFixed(1)} km/h`;
  }, { ts, speed });
}

// sendCommand fills the command form and clicks #command-send.
async function sendCommand(page, name, args) {
  await page.fill('#command-name', name);
  await page.fill('#command-args', args);
  await page.click('#command-send');
}

// commandCard reads the command card: the status line, the error shown
// for a command not sent, and the results list (newest first).
async function commandCard(page) {
  return page.evaluate(() => {
    const err = document.querySelector('#command-error');
    return {
      status: document.querySelector('#command-status').textContent,
      error: err.hidden ? '' : err.textContent,
      results: [...document.querySelectorAll('#command-results li.command-item')].map((li) => ({
        id: li.querySelector('.command-id').textContent,
        state: li.dataset.state,
        result: li.querySelector('.command-outcome')?.textContent ?? null,
        data: li.querySelector('.command-data')?.textContent ?? null,
      })),
    };
  });
}

// localInput is how a date input shows ms in the browser's time zone:
// "YYYY-MM-DD HH:MM", 24 h.
async function localInput(page, ms) {
  return page.evaluate((ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  }, ms);
}

// perPoint waits for the slider's next step (a sync point), then measures
// how many ms each of the next n steps takes while the track plays.
async function perPoint(page, n) {
  return page.evaluate((n) => new Promise((resolve, reject) => {
    const slider = document.querySelector('#track-slider');
    const start = Number(slider.value);
    let t0 = 0, v0 = 0;
    const deadline = performance.now() + 20000;
    const tick = () => {
      const v = Number(slider.value);
      const now = performance.now();
      if (!t0 && v !== start) {
        t0 = now;
        v0 = v;
      } else if (t0 && v >= v0 + n) {
        return resolve((now - t0) / (v - v0));
      }
      if (now > deadline) return reject(new Error(`slider stuck at ${v}`));
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }), n);
}

h.run(async ({ page }) => {
  const id = cfg.trackDevice; // connected; answers every command ok
  const offline = cfg.offlineDevice; // only ever sent over HTTP ingest
  const n = cfg.seed;

  // Every POST of a command the page makes.
  const posts = [];
  page.on('request', (r) => {
    if (r.method() === 'POST' && /\/api\/v1\/devices\/[^/]+\/commands$/.test(new URL(r.url()).pathname)) posts.push(r.url());
  });

  await h.login(page, 'admin', cfg.users.admin);
  // The page's range ends a minute after it opened (to the minute): no
  // later than this, every seeded position is in it.
  const opened = Date.now();
  await page.goto(`${cfg.base}/#/device/${id}`);
  await h.waitFor('device title', async () => (await page.textContent('#device-title .title-name')) === cfg.names[id]);
  await page.locator('#device-title .title-state.online').waitFor({ timeout: 15000 });

  // What the page loaded on its own: the track of the last hour as it was
  // before the seeding (the position the fleet setup gave the device).
  const hourAgo = Date.now() - 3600_000;
  const before = (await h.api(`/api/v1/devices/${id}/locations?from=${new Date(hourAgo).toISOString()}&limit=1000`)).items;
  assert.ok(before.length >= 1, `${id} has no position from the fleet setup`);
  const word = (k) => `${k} point${k === 1 ? '' : 's'}`;
  await h.waitFor(`#track-count "${word(before.length)}" before the seeding`, async () =>
    (await page.textContent('#track-count')) === word(before.length));

  // The range's inputs hold local "YYYY-MM-DD HH:MM" (24 h), like every time
  // the UI shows: the last hour, to a minute after the page opened.
  const fromValue = await page.inputValue('#track-from');
  const toValue = await page.inputValue('#track-to');
  assert.equal(await page.getAttribute('#track-from', 'type'), 'text', 'a datetime-local input shows the locale\'s 12 h format');
  assert.match(fromValue, /^\d{4}-\d\d-\d\d \d\d:\d\d$/, '#track-from');
  assert.ok([await localInput(page, opened - 3600_000), await localInput(page, Date.now() - 3600_000)].includes(fromValue), `#track-from ${fromValue}`);
  assert.ok([await localInput(page, opened + 60_000), await localInput(page, Date.now() + 60_000)].includes(toValue), `#track-to ${toValue}`);
  // Anything else is refused with what is wrong, the input marked, and
  // nothing loaded.
  for (const [value, want] of [
    ['12/01/2026 07:40 PM', /^From: write it as YYYY-MM-DD HH:MM, 24 h \(e\.g\. \d{4}-\d\d-\d\d \d\d:\d\d\)\.$/],
    ['2026-02-30 10:00', /^From: 2026-02 has no day 30\.$/],
    ['2026-12-01 24:00', /^From: 24:00 is not a time of day/],
    ['2026-13-01 10:00', /^From: month 13 does not exist\.$/],
  ]) {
    await page.fill('#track-from', value);
    await page.click('#track-load');
    const shown = await h.waitFor(`error for "${value}"`, async () => {
      const t = await page.locator('#track-error').isVisible() && await page.textContent('#track-error');
      return t && want.test(t) && t;
    });
    assert.equal(await page.locator('#track-from.invalid').count(), 1, `"${value}" not marked invalid`);
    assert.equal(await page.locator('#track-to.invalid').count(), 0, '#track-to marked invalid');
    h.log(`"${value}": ${shown}`);
  }
  await page.fill('#track-from', fromValue);
  await page.click('#track-load');
  await h.waitFor('the error gone with a valid range', async () => !(await page.locator('#track-error').isVisible()) &&
    (await page.textContent('#track-count')) === word(before.length));
  assert.equal(await page.locator('#track-from.invalid').count(), 0, 'valid #track-from still marked invalid');

  // Seed n positions a minute apart, the newest when the page opened, each
  // at its own place (a line going north-east) and speed, and wait until
  // they are stored.
  const [lat0, lng0] = [before[0].lat - 0.01, before[0].lng - 0.01];
  const seeded = [];
  for (let i = 0; i < n; i++) {
    seeded.push({ type: 'location', id: `trk-${opened}-${i}`, ts: opened - (n - 1 - i) * 60_000,
      data: { lat: lat0 + i * 0.0004, lng: lng0 + i * 0.0006, speed: i } });
  }
  await h.ingest(id, seeded);
  const track = await h.waitFor(`${n} seeded positions stored`, async () => {
    const items = (await h.api(`/api/v1/devices/${id}/locations?from=${new Date(hourAgo).toISOString()}&limit=1000`)).items;
    return items.length === before.length + n && items;
  });
  const stored = new Set(track.map((p) => p.id));
  for (const f of seeded) assert.ok(stored.has(f.id), `${f.id} not stored`);
  const first = seeded[0], last = seeded[n - 1];
  // The seeded positions span the stored track: the oldest and newest of it.
  const byTime = [...track].sort((a, b) => a.ts - b.ts);
  assert.equal(byTime[0].id, first.id, 'oldest point of the track');
  assert.equal(byTime[byTime.length - 1].id, last.id, 'newest point of the track');
  h.log(`stored track: ${track.length} points (${before.length} before + ${n} seeded)`);

  // #track-load loads the whole track.
  await page.click('#track-load');
  await h.waitFor(`#track-count "${word(track.length)}"`, async () =>
    (await page.textContent('#track-count')) === word(track.length));
  const slider = page.locator('#track-slider');
  assert.equal(await slider.getAttribute('max'), String(track.length - 1), 'slider max');
  assert.equal(await slider.isDisabled(), false, 'slider disabled');
  assert.equal(await slider.inputValue(), '0');

  // At the start the playback marker sits on the start of the track and
  // #track-time shows the oldest point; the polyline spans the track.
  const atStart = await settledTrack(page, 'playback marker on the start of the track', (m) => near(m.playhead, m.start));
  assert.equal(atStart.time, await fmtTime(page, first.ts, first.data.speed), '#track-time at the start');
  assert.ok(atStart.line, 'no polyline drawn');
  assert.ok(atStart.line.d.length > 0, 'empty polyline');
  assert.ok(atStart.line.right - atStart.line.left > 20 && atStart.line.bottom - atStart.line.top > 20,
    `polyline of ${JSON.stringify(atStart.line)} px`);
  assert.ok(inside(atStart.start, atStart.line) && inside(atStart.end, atStart.line), `start and end on the polyline: ${JSON.stringify(atStart)}`);
  assert.ok(inside(atStart.start, atStart.map) && inside(atStart.end, atStart.map), `track out of the map: ${JSON.stringify(atStart)}`);
  // North-east: the end is right of and above the start.
  assert.ok(atStart.end.x - atStart.start.x > 20 && atStart.start.y - atStart.end.y > 20,
    `track from ${JSON.stringify(atStart.start)} to ${JSON.stringify(atStart.end)}`);
  await h.screenshot(page, 'track-start');

  // The slider moved to its end (value set, input dispatched) takes the
  // marker to the end of the track and #track-time to the newest point.
  await slider.evaluate((el) => {
    el.value = el.max;
    el.dispatchEvent(new Event('input', { bubbles: true }));
  });
  const atEnd = await settledTrack(page, 'playback marker on the end of the track', (m) => near(m.playhead, m.end));
  assert.ok(!near(atEnd.playhead, atStart.playhead), 'playback marker did not move');
  assert.equal(atEnd.time, await fmtTime(page, last.ts, last.data.speed), '#track-time at the end');
  assert.notEqual(atEnd.time, atStart.time);
  // The keyboard takes it back to the start.
  await slider.press('Home');
  await settledTrack(page, 'playback marker back on the start', (m) => near(m.playhead, atStart.start) && m.time === atStart.time);
  await slider.press('End');
  await settledTrack(page, 'playback marker on the end again', (m) => near(m.playhead, atEnd.end) && m.time === atEnd.time);
  h.log(`playback marker: ${JSON.stringify(atStart.playhead)} -> ${JSON.stringify(atEnd.playhead)}, ${atStart.time} -> ${atEnd.time}`);
  await h.screenshot(page, 'track-end');

  // The legend names each part of the track in the colour the map draws it.
  const legend = await page.evaluate(() => {
    const norm = (c) => {
      const e = document.createElement('span');
      e.style.color = c;
      document.body.append(e);
      const v = getComputedStyle(e).color;
      e.remove();
      return v;
    };
    const stroke = (sel) => norm(document.querySelector(`#device-map path.${sel}`).getAttribute('stroke'));
    const fill = (sel) => norm(document.querySelector(`#device-map path.${sel}`).getAttribute('fill'));
    const swatch = (kind) => getComputedStyle(document.querySelector(`#track-legend .legend-${kind}`)).backgroundColor;
    const box = document.querySelector('#track-legend').getBoundingClientRect();
    return {
      visible: box.width > 0 && box.height > 0,
      texts: [...document.querySelectorAll('#track-legend .legend-item')].map((e) => e.textContent),
      pairs: [[swatch('line'), stroke('dt-track')], [swatch('start'), stroke('dt-track-start')],
        [swatch('end'), stroke('dt-track-end')], [swatch('playhead'), fill('dt-playhead')]],
    };
  });
  assert.ok(legend.visible, 'no legend shown');
  assert.deepEqual(legend.texts, ['Track', 'Start (oldest position)', 'End (newest position)', 'Playback position', 'Stop']);
  for (const [i, [swatch, map]] of legend.pairs.entries()) assert.equal(swatch, map, `legend colour ${legend.texts[i]}`);

  // Playback speed: at 1× the range plays in 60 s (about 2 s a point here);
  // 10×, chosen while it plays, makes each point about 10 times quicker;
  // 50× runs to the end.
  assert.deepEqual(await page.$$eval('#track-speed option', (o) => o.map((e) => e.textContent)), ['1×', '2×', '5×', '10×', '50×']);
  await page.selectOption('#track-speed', '1');
  await slider.press('Home');
  await page.click('#track-play');
  const slow = await perPoint(page, 1);
  await page.selectOption('#track-speed', '10');
  assert.equal(await page.textContent('#track-play'), 'Pause', 'a new speed stopped the playback');
  const fast = await perPoint(page, 3);
  h.log(`playback: ${slow.toFixed(0)} ms a point at 1×, ${fast.toFixed(0)} ms at 10×`);
  assert.ok(slow > 1000 && slow < 4000, `${slow.toFixed(0)} ms a point at 1×, want about 2070`);
  assert.ok(slow / fast > 5 && slow / fast < 20, `10× is ${(slow / fast).toFixed(1)} times as fast as 1×`);
  await page.selectOption('#track-speed', '50');
  await h.waitFor('playback at the end at 50×', async () =>
    (await page.textContent('#track-play')) === 'Play' && (await slider.inputValue()) === String(track.length - 1), { timeout: 5000 });

  // The GPX export link of the range downloads the track's points, oldest
  // first, with their times; the trips and stops list shows what the API
  // derives for the same range.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#track-export-gpx')]);
  assert.match(download.suggestedFilename(), new RegExp(`^devtrack-${id}-\\d{8}-\\d{6}\\.gpx$`), 'GPX file name');
  const gpx = fs.readFileSync(await download.path(), 'utf8');
  const trkpts = [...gpx.matchAll(/<trkpt lat="([^"]+)" lon="([^"]+)">(?:<ele>[^<]*<\/ele>)?<time>([^<]+)<\/time><\/trkpt>/g)];
  assert.equal(trkpts.length, byTime.length, 'points in the GPX export');
  trkpts.forEach(([, lat, lon, time], i) => {
    const p = byTime[i];
    assert.ok(Math.abs(Number(lat) - p.lat) < 1e-7 && Math.abs(Number(lon) - p.lng) < 1e-7 && Date.parse(time) === p.ts,
      `GPX point ${i}: ${lat},${lon} at ${time}, want ${p.lat},${p.lng} at ${new Date(p.ts).toISOString()}`);
  });
  const range = new URL(await page.getAttribute('#track-export-gpx', 'href'), cfg.base).searchParams;
  for (const format of ['geojson', 'csv']) {
    const href = new URL(await page.getAttribute(`#track-export-${format}`, 'href'), cfg.base);
    assert.equal(href.searchParams.get('format'), format);
    assert.equal(href.searchParams.get('from'), range.get('from'));
  }
  const derived = await h.api(`/api/v1/devices/${id}/trips?from=${encodeURIComponent(range.get('from'))}&to=${encodeURIComponent(range.get('to'))}`);
  assert.ok(derived.trips.length >= 1, `no trip in the seeded drive: ${JSON.stringify(derived)}`);
  const rows = derived.trips.length + derived.stops.length;
  await h.waitFor(`${rows} rows in the trips list`, async () =>
    (await page.locator('#trips-list tr.trip-row').count()) === rows &&
    (await page.textContent('#trips-summary')).startsWith(`${derived.trips.length} trip`));
  h.log(`GPX export: ${trkpts.length} points; trips list: ${await page.textContent('#trips-summary')}`);
  await h.screenshot(page, 'trips', { fullPage: true });

  // Arguments that are not JSON, or not a JSON object, are refused in the
  // page with a clear error; nothing is sent.
  for (const [args, want] of [['{"n":', /^Arguments are not valid JSON/], ['[1]', /must be a JSON object/]]) {
    await sendCommand(page, 'ping', args);
    await h.waitFor(`error ${want} for arguments ${args}`, async () => want.test((await commandCard(page)).error));
    assert.equal(await page.locator('#command-args.invalid').count(), 1, 'arguments not marked invalid');
  }
  assert.deepEqual(posts, [], 'a command was sent with invalid arguments');
  const card = await commandCard(page);
  assert.deepEqual(card.results, [], 'results of commands not sent');
  assert.match(card.status, /^Connected · last seen \d+ s ago$/, 'status line');

  // A valid command: "sent, id c-…", then the device's answer.
  const answered = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/api/v1/devices/${id}/commands`));
  await sendCommand(page, 'ping', '{"n":1}');
  const resp = await answered;
  assert.equal(resp.status(), 202);
  const cmdId = (await resp.json()).id;
  assert.match(cmdId, /^c-/);
  assert.equal(await page.locator('#command-args.invalid').count(), 0, 'valid arguments still marked invalid');
  const done = await h.waitFor('the device\'s answer', async () => {
    const c = await commandCard(page);
    return c.results.length === 1 && c.results[0].state !== 'pending' && c;
  });
  assert.deepEqual(done.results, [{ id: cmdId, state: 'ok', result: 'ok', data: '{"pong":true,"args":{"n":1}}' }], 'command results');
  assert.equal(done.error, '', 'error shown for a command sent');
  // The status line stays about the connection: no command, no result.
  assert.match(done.status, /^Connected · last seen \d+ s ago$/, 'status line after the answer');
  assert.equal(posts.length, 1, `${posts.length} POSTs of a command`);
  // The device itself got exactly this command, with these arguments.
  await h.ask(`device-got ${cmdId}`);
  await h.screenshot(page, 'command');
  await page.evaluate(() => window.scrollTo(0, 0));
  await h.screenshot(page, 'readme-device');

  // A device that is not connected: the page says it is offline.
  await page.goto(`${cfg.base}/#/device/${offline}`);
  await h.waitFor('offline device title', async () => (await page.textContent('#device-title .title-name')) === cfg.names[offline]);
  await page.locator('#device-title .title-state.offline').waitFor({ timeout: 15000 });
  const offCard = await h.waitFor('status line of the offline device', async () => {
    const c = await commandCard(page);
    return /^Not connected/.test(c.status) && c;
  });
  assert.match(offCard.status, /^Not connected · last seen \d+ (s|min) ago; commands need a connected device$/);
  assert.deepEqual(offCard.results, [], 'results of the previous device kept');
  const refused = page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith(`/api/v1/devices/${offline}/commands`));
  await sendCommand(page, 'ping', '{"n":1}');
  assert.equal((await refused).status(), 409);
  const off = await h.waitFor('offline error', async () => {
    const c = await commandCard(page);
    return c.error && c;
  });
  assert.equal(off.error, 'Not sent: the device is offline.');
  assert.deepEqual(off.results, [], 'a result for a command not sent');
  await h.screenshot(page, 'offline');
});

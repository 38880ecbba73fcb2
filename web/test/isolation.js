// An operator of group ga sees no device of group gb: not on the map, not in
// the device list, not through the API, not on /ws/live.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

h.run(async ({ page }) => {
  const A = new Set(cfg.groupA), B = new Set(cfg.groupB);
  const b1 = cfg.groupB[0];
  await h.login(page, 'opa', cfg.users.opa);
  assert.equal(await page.locator('#nav-queue').isVisible(), false, 'queue page link shown to an operator');

  // Map and list: exactly the devices of group ga.
  const shown = await h.waitFor(`map showing the ${A.size} devices of group ga`, async () => {
    const m = await h.fleetOnMap(page);
    return m.total === A.size && m;
  });
  for (const id of shown.ids) assert.ok(A.has(id), `marker of ${id} on the map`);
  const listed = await page.$$eval('#device-list li.device-item', (li) => li.map((e) => e.dataset.device));
  assert.deepEqual([...listed].sort(), [...A].sort(), 'device list');
  await page.fill('#device-search', 'gb');
  await h.waitFor('no device matching gb', async () =>
    (await page.locator('#device-list li.device-item:visible').count()) === 0);
  await page.fill('#device-search', '');
  const text = await page.locator('body').innerText();
  for (const id of B) assert.ok(!text.includes(id), `${id} appears on the page`);
  await h.screenshot(page, 'operator-map');

  // The API, called from the page with its session.
  const r = await page.evaluate(async (b1) => {
    const get = async (p) => {
      const resp = await fetch(p);
      return { status: resp.status, body: await resp.text() };
    };
    return {
      devices: await get('/api/v1/devices'),
      device: await get(`/api/v1/devices/${encodeURIComponent(b1)}`),
      locations: await get(`/api/v1/devices/${encodeURIComponent(b1)}/locations`),
      logsOfB: await get(`/api/v1/logs?device=${encodeURIComponent(b1)}`),
      logs: await get('/api/v1/logs?limit=1000'),
      command: await fetch(`/api/v1/devices/${encodeURIComponent(b1)}/commands`, {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"name":"reboot"}',
      }).then((x) => x.status),
    };
  }, b1);
  assert.equal(r.devices.status, 200);
  const ids = JSON.parse(r.devices.body).items.map((d) => d.id);
  assert.deepEqual(ids.sort(), [...A].sort(), '/api/v1/devices');
  assert.equal(r.device.status, 403, `/api/v1/devices/${b1}: ${r.device.body}`);
  assert.equal(r.locations.status, 403, `/api/v1/devices/${b1}/locations: ${r.locations.body}`);
  assert.ok(!r.locations.body.includes('"lat"'));
  assert.equal(r.logsOfB.status, 403, `/api/v1/logs?device=${b1}: ${r.logsOfB.body}`);
  assert.equal(r.logs.status, 200);
  const logDevices = new Set(JSON.parse(r.logs.body).items.map((l) => l.device));
  assert.ok(logDevices.size > 0, 'the operator sees the logs of group ga');
  for (const d of logDevices) assert.ok(A.has(d), `/api/v1/logs shows a log of ${d}`);
  assert.equal(r.command, 403, `command to ${b1}`);

  // /ws/live: a device of gb is refused; subscribe-all never carries one,
  // while the gb devices keep sending.
  const since = Date.now();
  const live = await page.evaluate(async ({ b1, minMessages, minMs }) => {
    const ws = new WebSocket(`${location.origin.replace(/^http/, 'ws')}/ws/live`);
    const msgs = [];
    ws.onmessage = (e) => msgs.push(JSON.parse(e.data));
    await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = () => fail(new Error('ws error')); });
    ws.send(JSON.stringify({ type: 'subscribe', devices: [b1] }));
    ws.send(JSON.stringify({ type: 'subscribe', all: true }));
    const start = Date.now();
    await new Promise((ok) => {
      const check = () => {
        const located = msgs.filter((m) => m.type === 'location').length;
        if (located >= minMessages && Date.now() - start >= minMs) ok();
        else setTimeout(check, 50);
      };
      check();
    });
    ws.close();
    return msgs;
  }, { b1, minMessages: 10, minMs: 3000 });
  const forbidden = live.find((m) => m.type === 'error');
  assert.ok(forbidden, 'no error for a subscribe to a gb device');
  assert.equal(forbidden.code, 'forbidden');
  assert.deepEqual(forbidden.devices, [b1]);
  const snapshots = live.filter((m) => m.type === 'snapshot');
  assert.ok(snapshots.length >= 1, 'no snapshot');
  const seenA = new Set();
  for (const m of live) {
    for (const d of m.type === 'snapshot' ? m.devices.map((x) => x.device) : [m.device]) {
      if (!d) continue;
      assert.ok(!B.has(d), `/ws/live sent ${m.type} of ${d} (group gb)`);
      seenA.add(d);
    }
  }
  for (const id of A) assert.ok(seenA.has(id), `${id} (group ga) missing on /ws/live`);
  // The gb devices did send meanwhile: the admin sees them as recently seen.
  const all = await h.api('/api/v1/devices');
  for (const d of all.items.filter((x) => B.has(x.id))) {
    assert.ok(Date.parse(d.last_seen) >= since - 1000, `${d.id} silent during the check (last seen ${d.last_seen})`);
  }
  h.log(`/ws/live: ${live.length} messages, none of group gb`);

  // The page still shows nothing of gb after those seconds of live updates.
  const after = await h.fleetOnMap(page);
  for (const id of after.ids) assert.ok(A.has(id), `marker of ${id} on the map`);
  assert.equal(after.total, A.size);
});

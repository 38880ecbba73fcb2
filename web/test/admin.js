// The admin page: the admin creates an operator of group ga (password and
// groups) in the UI and is shown its token once; the operator signs in in a
// fresh browser and sees only ga's devices, and their token is refused gb's
// (403). The admin rotates the operator's token in the UI: the old token is
// refused at once (401), and the operator's open page is signed out, its
// live socket closed by the gateway as the rotation returns. Before that,
// the admin adds gb to the operator's groups, and the operator's open page
// starts again showing gb's devices too. Last, a device is enrolled,
// renamed, moved, given a new token, revoked and deleted on the page.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

const OP = 'courier-op';
const OP_PW = 'dispatch-pw-7';

async function withToken(tok, path) {
  const resp = await fetch(cfg.base + path, { headers: { Authorization: `Bearer ${tok}` } });
  return { status: resp.status, body: await resp.text() };
}

h.run(async ({ page, acceptConfirm }) => {
  const A = new Set(cfg.groupA);
  const b1 = cfg.groupB[0];
  await h.login(page, 'admin', cfg.users.admin);
  await page.click('#nav-admin');
  await page.locator('#page-admin').waitFor({ state: 'visible' });
  await page.locator('tr.admin-user[data-user="opa"]').waitFor();
  await page.locator(`tr.admin-device[data-device="${b1}"]`).waitFor();

  // Create the operator: its token is shown once, the row lists its group.
  await page.fill('#admin-user-name', OP);
  await page.selectOption('#admin-user-role', 'operator');
  await page.fill('#admin-user-groups', 'ga');
  await page.fill('#admin-user-password', OP_PW);
  await page.click('#admin-user-create');
  await page.locator('#admin-secret').waitFor({ state: 'visible' });
  const label = await page.locator('#admin-secret-label').innerText();
  assert.match(label, new RegExp(`API token of ${OP}, shown only now`));
  const token = (await page.locator('#admin-secret-value').innerText()).trim();
  assert.match(token, /^dtu_/, 'the new token shown');
  const row = page.locator(`tr.admin-user[data-user="${OP}"]`);
  await row.waitFor();
  assert.equal(await row.locator('.admin-groups').inputValue(), 'ga');
  assert.equal(await row.locator('.admin-role').inputValue(), 'operator');
  assert.match(await page.locator('#admin-status').innerText(), new RegExp(`User ${OP} created`));
  await h.screenshot(page, 'readme-admin');
  // The copy button puts the token on the clipboard.
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: cfg.base });
  await page.click('#admin-secret-copy');
  await page.locator('#admin-secret-copy').filter({ hasText: 'Copied' }).waitFor({ timeout: 5000 });
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token, 'the token on the clipboard');
  await page.click('#admin-secret-done');
  assert.equal(await page.locator('#admin-secret').isVisible(), false, 'the token stays hidden once done');

  // Its token sees ga and is refused gb.
  const devs = await withToken(token, '/api/v1/devices');
  assert.equal(devs.status, 200, devs.body);
  assert.deepEqual(JSON.parse(devs.body).items.map((d) => d.id).sort(), [...A].sort(), "the operator's /api/v1/devices");
  const other = await withToken(token, `/api/v1/devices/${encodeURIComponent(b1)}`);
  assert.equal(other.status, 403, `the operator's token on ${b1}: ${other.body}`);

  // The operator signs in, in a fresh browser: map and list show ga only.
  const adminDir = cfg.userDataDir;
  cfg.userDataDir = cfg.operatorDataDir;
  const op = await h.launch();
  cfg.userDataDir = adminDir;
  try {
    await h.login(op.page, OP, OP_PW);
    assert.equal(await op.page.locator('#nav-admin').isVisible(), false, 'the Admin link shown to an operator');
    const shown = await h.waitFor(`the operator's map showing the ${A.size} devices of group ga`, async () => {
      const m = await h.fleetOnMap(op.page);
      return m.total === A.size && m;
    });
    for (const id of shown.ids) assert.ok(A.has(id), `marker of ${id} on the operator's map`);
    const listed = await op.page.$$eval('#device-list li.device-item', (li) => li.map((e) => e.dataset.device));
    assert.deepEqual(listed.sort(), [...A].sort(), "the operator's device list");
    await op.page.goto(cfg.base + '/#/admin');
    await h.waitFor('an operator sent from #/admin to the map', async () => op.page.url().endsWith('#/map'));
    await h.waitLive(op.page);

    // The admin adds gb to the operator's groups: their open page starts
    // again (its socket closed with 4003) and shows gb's devices too.
    await row.locator('.admin-groups').fill('ga, gb');
    await row.locator('.admin-save').click();
    await h.waitFor(`${OP} saved`, async () => /User courier-op saved/.test(await page.locator('#admin-status').innerText()));
    assert.equal((await withToken(token, `/api/v1/devices/${encodeURIComponent(b1)}`)).status, 200, `${OP}'s token on ${b1} once in gb`);
    const all = new Set([...cfg.groupA, ...cfg.groupB]);
    await h.waitFor(`the operator's open page showing the ${all.size} devices of ga and gb`, async () => {
      const m = await h.fleetOnMap(op.page);
      return m.total === all.size;
    }, { timeout: 10000 });
    await h.waitLive(op.page);
    const listedAll = await op.page.$$eval('#device-list li.device-item', (li) => li.map((e) => e.dataset.device));
    assert.deepEqual(listedAll.sort(), [...all].sort(), "the operator's device list after the change");

    // The admin rotates the operator's token.
    const confirmed = acceptConfirm(new RegExp(`Replace the API token of ${OP}`));
    await row.locator('.admin-rotate').click();
    await confirmed;
    await h.waitFor('the new token shown', async () =>
      /New API token of courier-op/.test(await page.locator('#admin-secret-label').innerText()));
    const rotatedAt = Date.now();
    const fresh = (await page.locator('#admin-secret-value').innerText()).trim();
    assert.match(fresh, /^dtu_/);
    assert.notEqual(fresh, token);
    // At once: no waiting for a poll.
    const old = await withToken(token, '/api/v1/me');
    assert.equal(old.status, 401, `the old token right after the rotation: ${old.body}`);
    assert.equal((await withToken(fresh, '/api/v1/me')).status, 200, 'the new token');
    // The operator's page: its socket was closed as the rotation returned,
    // and the session has ended, so the login form is back.
    await op.page.locator('#whoami').waitFor({ state: 'hidden', timeout: 2000 });
    await op.page.locator('#login-form').waitFor({ state: 'visible', timeout: 1000 });
    h.log(`operator page signed out ${Date.now() - rotatedAt} ms after the rotation was shown`);
    assert.equal(await op.page.locator('#live-status').getAttribute('data-state'), 'off', "the operator's live socket");
    assert.deepEqual(op.problems, [], "the operator's page had problems");
  } finally {
    await op.context.close().catch(() => {});
  }


  // A device enrolled on the page (token shown once), renamed, moved,
  // given a new token, revoked and deleted.
  const id = 'van-admin-1';
  await page.fill('#admin-device-id', id);
  await page.fill('#admin-device-name', 'Van');
  await page.fill('#admin-device-group', 'ga');
  await page.click('#admin-device-form button[type=submit]');
  await h.waitFor('the device token shown', async () =>
    new RegExp(`Token of device ${id}, shown only now`).test(await page.locator('#admin-secret-label').innerText()));
  const devTok = (await page.locator('#admin-secret-value').innerText()).trim();
  assert.match(devTok, /^dtd_/);
  const dev = page.locator(`tr.admin-device[data-device="${id}"]`);
  await dev.waitFor();
  await dev.locator('.admin-device-name').fill('Van 9');
  await dev.locator('.admin-device-group').fill('gb');
  await dev.locator('.admin-save').click();
  const stored = await h.waitFor(`${id} renamed and moved`, async () => {
    const d = await h.api(`/api/v1/devices/${id}`);
    return d.name === 'Van 9' && d.group === 'gb' && d;
  });
  assert.equal(stored.revoked, undefined);
  let confirmed = acceptConfirm(new RegExp(`Replace the token of ${id}`));
  await dev.locator('.admin-rotate').click();
  await confirmed;
  await h.waitFor('the new device token shown', async () =>
    new RegExp(`New token of device ${id}`).test(await page.locator('#admin-secret-label').innerText()));
  assert.notEqual((await page.locator('#admin-secret-value').innerText()).trim(), devTok);
  confirmed = acceptConfirm(new RegExp(`Revoke ${id}`));
  await dev.locator('.admin-revoke').click();
  await confirmed;
  await h.waitFor(`${id} shown revoked`, async () =>
    (await page.locator(`tr.admin-device[data-device="${id}"] .admin-revoked`).count()) === 1);
  confirmed = acceptConfirm(new RegExp(`Delete ${id} with all its locations and logs`));
  await page.locator(`tr.admin-device[data-device="${id}"] .admin-delete`).click();
  await confirmed;
  await h.waitFor(`${id} gone from the table`, async () =>
    (await page.locator(`tr.admin-device[data-device="${id}"]`).count()) === 0);
  assert.equal((await withToken(cfg.adminToken, `/api/v1/devices/${id}`)).status, 404, `${id} after delete`);
});

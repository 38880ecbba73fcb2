// The queue page (#/queue) as an admin: items the worker refused (pushed
// onto the ingest list by the Go test) show as dead letters with their error
// and the item as text; "Requeue all" puts them back through the worker,
// which refuses them again; one letter can be deleted, or requeued alone. An operator has no queue page and no access to
// the dead letters.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

// deadRows reads the dead-letter table as text.
async function deadRows(page) {
  return page.$$eval('#dead-body tr.dead-row', (rows) => rows.map((r) => ({
    time: r.querySelector('.dead-time').textContent,
    error: r.querySelector('.dead-error').textContent,
    attempts: r.querySelector('.dead-attempts').textContent,
    worker: r.querySelector('.dead-worker').textContent,
    summary: r.querySelector('.dead-item summary').textContent,
    item: r.querySelector('.dead-item pre').textContent,
  })));
}

// sameItem tells whether a row's item (pretty-printed if it is JSON) is raw.
function sameItem(shown, raw) {
  try {
    return JSON.stringify(JSON.parse(shown)) === JSON.stringify(JSON.parse(raw));
  } catch {
    return shown === raw;
  }
}

// deadOf waits until the API lists exactly the bad items as dead letters,
// all failed after since; it returns them by item.
async function deadOf(what, bad, since) {
  return h.waitFor(what, async () => {
    const st = await h.api('/api/v1/queue');
    if (st.dead !== bad.length) return false;
    const { items } = await h.api('/api/v1/queue/dead');
    if (items.length !== bad.length || !bad.every((b) => items.some((d) => d.item === b))) return false;
    if (!items.every((d) => d.failed_at >= since)) return false;
    return new Map(items.map((d) => [d.item, d]));
  }, { timeout: 30000, interval: 200 });
}

h.run(async ({ page, acceptConfirm }) => {
  const bad = cfg.badItems;
  const N = bad.length;
  const deletedItems = [];

  // The worker has refused every pushed item: they are the dead letters.
  const first = await deadOf(`the ${N} pushed items dead`, bad, 0);
  for (const [item, d] of first) h.log(`dead: ${JSON.stringify(d.error)} for ${item}`);
  for (const [i, want] of cfg.badErrors.entries()) {
    assert.match(first.get(bad[i]).error, new RegExp(want), `error of ${bad[i]}`);
  }

  await h.login(page, 'admin', cfg.users.admin);
  assert.equal(await page.locator('#nav-queue').isVisible(), true, 'queue page link hidden from an admin');
  await page.click('#nav-queue');
  await h.waitFor(`#queue-dead showing ${N}`, async () => (await page.textContent('#queue-dead')) === String(N));
  assert.equal(await page.locator('#queue-dead').evaluate((e) => e.closest('.stat').classList.contains('alarm')), true, 'dead letters not shown as an alarm');
  const rows = await h.waitFor(`${N} dead-letter rows`, async () => {
    const r = await deadRows(page);
    return r.length === N && r;
  });
  for (const b of bad) {
    const d = first.get(b);
    const row = rows.find((r) => sameItem(r.item, b));
    assert.ok(row, `no row shows the item ${b}`);
    assert.equal(row.error, d.error, `error shown for ${b}`);
    assert.ok(row.error.length > 0);
    assert.equal(row.attempts, String(d.attempts));
    assert.equal(row.worker, d.worker);
    assert.ok(b.startsWith(row.summary.replace(/…$/, '')), `summary ${row.summary} of ${b}`);
  }
  assert.equal(await page.locator('#dead-empty').isVisible(), false);
  // Device-provided text stays text: an item that looks like HTML made no element.
  assert.equal(await page.locator('#dead-body b, #dead-body img, #dead-body script').count(), 0, 'markup from a dead letter');
  await h.screenshot(page, 'dead', { fullPage: true });
  await h.screenshot(page, 'readme-queue');

  // "Requeue all", confirmed: every item goes back through the worker.
  const requeuedAt = Date.now();
  const confirmed = acceptConfirm(/^Put all dead letters/);
  await page.click('#dead-requeue');
  const question = await confirmed;
  assert.equal(question, `Put all dead letters (${N}) back on the ingest list?`);
  await h.waitFor('#dead-status', async () =>
    (await page.getAttribute('#dead-status', 'data-state')) === 'ok' &&
    (await page.textContent('#dead-status')) === `Requeued ${N} items.`);
  h.log(await page.textContent('#dead-status'));

  // Being bad, they are dead again: the same items with the same errors,
  // failed after the requeue.
  const again = await deadOf(`the ${N} requeued items dead again`, bad, requeuedAt);
  for (const b of bad) assert.equal(again.get(b).error, first.get(b).error, `error of ${b} after the requeue`);
  await h.waitFor(`#queue-dead showing ${N} again`, async () => (await page.textContent('#queue-dead')) === String(N));
  const times = new Map();
  for (const b of bad) times.set(b, await fmtOf(page, again.get(b).failed_at));
  await page.click('#dead-refresh');
  await h.waitFor(`${N} rows with the new failures`, async () => {
    const r = await deadRows(page);
    return r.length === N && bad.every((b) => r.some((x) => sameItem(x.item, b) && x.time === times.get(b)));
  });
  h.log(`requeued ${N}: all dead again`);
  await h.screenshot(page, 'requeued', { fullPage: true });

  // One letter: "Delete" on the first row drops it alone, confirmed;
  // "Requeue" on another puts it alone back through the worker.
  const asked = acceptConfirm(/^Delete this dead letter/);
  await page.locator('#dead-body tr.dead-row').nth(0).locator('.dead-delete-one').click();
  await asked;
  const left = await h.waitFor(`${N - 1} dead letters after one delete`, async () => {
    const { items } = await h.api('/api/v1/queue/dead');
    return items.length === N - 1 && items;
  }, { timeout: 10000, interval: 200 });
  const deleted = bad.filter((b) => !left.some((d) => d.item === b));
  deletedItems.push(...deleted);
  assert.equal(deleted.length, 1, `one item deleted, got ${deleted}`);
  await h.waitFor(`${N - 1} rows`, async () => (await deadRows(page)).length === N - 1);
  const requeueOneAt = Date.now();
  await page.locator('#dead-body tr.dead-row').nth(0).locator('.dead-requeue-one').click();
  await h.waitFor('#dead-status after one requeue', async () => (await page.textContent('#dead-status')) === 'Requeued 1 item.');
  const remaining = bad.filter((b) => b !== deleted[0]);
  await h.waitFor(`the requeued letter dead again, ${N - 1} in all`, async () => {
    const { items } = await h.api('/api/v1/queue/dead');
    return items.length === N - 1 && remaining.every((b) => items.some((d) => d.item === b)) &&
      items.filter((d) => d.failed_at >= requeueOneAt).length === 1;
  }, { timeout: 30000, interval: 200 });
  h.log(`one deleted (${deleted[0]}), one requeued and dead again`);

  // An operator: no queue link, #/queue goes to the map, and the dead
  // letters are refused.
  await page.click('#logout');
  await h.login(page, 'opa', cfg.users.opa);
  assert.equal(await page.locator('#nav-queue').isVisible(), false, 'queue page link shown to an operator');
  await page.goto(`${cfg.base}/#/queue`);
  await h.waitFor('#/queue sent to the map', async () =>
    (await page.evaluate(() => location.hash)) === '#/map' && (await page.locator('#page-map').isVisible()));
  assert.equal(await page.locator('#page-queue').isVisible(), false, 'queue page shown to an operator');
  const r = await page.evaluate(async () => {
    const dead = await fetch('/api/v1/queue/dead');
    const requeue = await fetch('/api/v1/queue/dead/requeue', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' });
    return { dead: dead.status, deadBody: await dead.text(), requeue: requeue.status };
  });
  assert.equal(r.dead, 403, `GET /api/v1/queue/dead as an operator: ${r.dead} ${r.deadBody}`);
  for (const b of bad) assert.ok(!r.deadBody.includes(b), 'the 403 holds a dead letter');
  assert.equal(r.requeue, 403, 'POST /api/v1/queue/dead/requeue as an operator');
  const text = await page.locator('body').innerText();
  for (const d of again.values()) assert.ok(!text.includes(d.error), `an operator's page shows ${d.error}`);
  // The refused requeue moved nothing.
  await deadOf(`still ${N - 1} dead`, bad.filter((b) => !deletedItems.includes(b)), requeuedAt);
});

// fmtOf is how the page shows a Unix ms time: local "YYYY-MM-DD HH:MM:SS",
// computed in the browser (its time zone).
async function fmtOf(page, ms) {
  return page.evaluate((ms) => {
    const d = new Date(ms);
    const p = (n) => String(n).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }, ms);
}

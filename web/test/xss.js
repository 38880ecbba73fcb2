// Device-provided text that looks like HTML shows as text on every page; no
// script runs (no dialog, no flag set by an injected handler, no CSP report).
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

const id = 'xss';
const payloads = [
  '<img src=x onerror=alert(1)>',
  '<script>alert(1)</script>',
  '<img src=x onerror="window.__xss=1">',
  '<svg onload="window.__xss=2"></svg>',
  '"><b id=injected>bold</b>',
];

// noMarkup checks that nothing of the payloads became an element and that
// no injected code ran.
async function noMarkup(page, where) {
  const r = await page.evaluate(() => ({
    imgs: document.querySelectorAll('img[src="x"]').length,
    handlers: document.querySelectorAll('[onerror], [onload]').length,
    inlineScripts: [...document.querySelectorAll('script')].filter((s) => !s.src).length,
    injected: document.querySelectorAll('#injected, svg[onload]').length,
    flag: window.__xss,
    csp: window.__cspViolations,
  }));
  assert.deepEqual(r, { imgs: 0, handlers: 0, inlineScripts: 0, injected: 0, flag: undefined, csp: [] }, `markup from device text on ${where}`);
}

h.run(async ({ page }) => {
  const name = cfg.names[id];
  await h.ingest(id, payloads.map((p) => h.logFrame(p, 'warn')));
  await h.waitFor('payload logs stored', async () =>
    (await h.api(`/api/v1/logs?device=${id}`)).items.length === payloads.length);

  await h.login(page, 'admin', cfg.users.admin);

  // Sidebar list and popup.
  const item = page.locator(`#device-list li.device-item[data-device="${id}"]`);
  assert.equal(await item.locator('.device-name').textContent(), name);
  await h.focusDevice(page, id);
  const label = page.locator(`#map .dt-marker[data-device="${id}"] .dt-marker-label`);
  if (await label.count()) assert.equal(await label.textContent(), name);
  const popupName = page.locator('.leaflet-popup .popup-name');
  await popupName.waitFor();
  assert.equal(await popupName.textContent(), name);
  await noMarkup(page, 'the map');
  await h.screenshot(page, 'popup');

  // Logs page.
  await page.click('#nav-logs');
  await page.waitForSelector('#logs-q');
  const logMessages = async () => page.$$eval('#logs-table tr.log-row', (rows) =>
    rows.filter((r) => r.querySelector('.log-device').textContent.trim() === 'xss')
      .map((r) => r.querySelector('.log-message').textContent));
  await page.fill('#logs-q', '');
  await page.fill('#logs-device', id);
  await page.click('#logs-search');
  await h.waitFor('payloads in the logs table', async () => {
    const m = await logMessages();
    return payloads.every((p) => m.includes(p));
  });
  await noMarkup(page, 'the logs page');
  await h.screenshot(page, 'logs', { fullPage: true });

  // Device page, then a payload arriving live while it is open.
  await page.goto(`${cfg.base}/#/device/${id}`);
  await page.waitForSelector('#device-title');
  await h.waitFor('device title', async () => (await page.textContent('#device-title')).includes(name));
  const titleName = page.locator('#device-title .title-name');
  if (await titleName.count()) assert.equal(await titleName.textContent(), name);
  const deviceLogs = async () => page.$$eval('#device-logs .log-row', (rows) => rows.map((r) => r.textContent));
  await h.waitFor('payloads in the device logs', async () => {
    const rows = await deviceLogs();
    return payloads.every((p) => rows.some((r) => r.includes(p)));
  });
  await h.waitLive(page);
  const late = '<img src=x onerror=alert("live")>';
  await h.ingest(id, h.logFrame(late, 'error'));
  await h.waitFor('live payload in the device logs', async () => (await deviceLogs()).some((r) => r.includes(late)));
  await noMarkup(page, 'the device page');
  await h.screenshot(page, 'device', { fullPage: true });
});

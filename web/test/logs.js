// Log search finds a message by a word in it, and lives in the URL (a
// reload or the link keeps it); the matches page through #logs-older; both
// exports hold every match. Dates are "YYYY-MM-DD HH:MM" (24 h) in the
// form and RFC 3339 in the URL. README screenshot: logs.
'use strict';
const h = require('./helpers');
const { assert, cfg } = h;

// rowsOf reads the log table's rows as text.
async function rowsOf(page) {
  return page.$$eval('#logs-table tr.log-row', (rows) => rows.map((r) => ({
    device: r.querySelector('.log-device').textContent.trim(),
    level: r.querySelector('.log-level').textContent.trim(),
    message: r.querySelector('.log-message').textContent.trim(),
  })));
}

async function search(page, q) {
  await page.fill('#logs-q', q);
  await page.click('#logs-search');
}

h.run(async ({ page }) => {
  const device = 'logger';
  const n = cfg.seed;
  // Seed n messages holding the word, and one holding the needle, then wait
  // until the archive has them all.
  const frames = [];
  for (let i = 1; i <= n; i++) frames.push(h.logFrame(`calibration ${cfg.word} step ${String(i).padStart(3, '0')}`));
  await h.ingest(device, frames);
  await h.ingest(device, h.logFrame(`door 2 opened ${cfg.needle} by courier`, 'warn'));
  await h.waitFor(`${n} seeded logs stored`, async () =>
    (await h.api(`/api/v1/logs?q=${cfg.word}&limit=1000`)).items.length === n);
  await h.waitFor('needle stored', async () => (await h.api(`/api/v1/logs?q=${cfg.needle}`)).items.length === 1);
  h.log(`seeded ${n + 1} logs`);

  await h.login(page, 'admin', cfg.users.admin);
  await page.click('#nav-logs');
  await page.waitForSelector('#logs-q');

  // A word of a message finds exactly that message.
  await search(page, cfg.needle);
  await h.waitFor('needle found', async () => {
    const rows = await rowsOf(page);
    return rows.length === 1 && rows[0].message === `door 2 opened ${cfg.needle} by courier` && rows;
  });
  const [row] = await rowsOf(page);
  assert.equal(row.device, device);
  assert.equal(row.level, 'warn');
  await h.screenshot(page, 'search');

  // The search lives in the URL: a reload, or the link opened afresh,
  // shows the same search and its match.
  await page.selectOption('#logs-level', 'warn');
  await page.click('#logs-search');
  await h.waitFor('the search in the URL', async () => {
    const hash = await page.evaluate(() => location.hash);
    const p = new URLSearchParams(hash.replace(/^#\/logs\?/, ''));
    return hash.startsWith('#/logs?') && p.get('q') === cfg.needle && p.get('level') === 'warn';
  });
  const link = page.url();
  await page.reload();
  await h.waitFor('the search after a reload', async () => {
    const rows = await rowsOf(page);
    return (await page.inputValue('#logs-q')) === cfg.needle && (await page.inputValue('#logs-level')) === 'warn' &&
      rows.length === 1 && rows[0].message.includes(cfg.needle);
  });
  await page.goto(cfg.base + '/');
  await page.goto(link);
  await h.waitFor('the search from its link', async () => {
    const rows = await rowsOf(page);
    return (await page.inputValue('#logs-q')) === cfg.needle && rows.length === 1;
  });
  await page.selectOption('#logs-level', '');

  // Dates are typed and shown as "YYYY-MM-DD HH:MM", 24 h, local time (an
  // afternoon hour, which a 12 h locale format would show as PM), and go to
  // the URL as RFC 3339; a reload shows them the same.
  const range = await page.evaluate(() => {
    const p = (n) => String(n).padStart(2, '0');
    const fmt = (d) => `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
    const from = new Date();
    if (from.getHours() < 13 || (from.getHours() === 13 && from.getMinutes() < 5)) from.setDate(from.getDate() - 1);
    from.setHours(13, 5, 0, 0);
    const to = new Date(Date.now() + 3600_000);
    return { from: fmt(from), to: fmt(to), fromISO: from.toISOString(), toISO: new Date(to.getFullYear(), to.getMonth(), to.getDate(), to.getHours(), to.getMinutes()).toISOString() };
  });
  assert.equal(await page.getAttribute('#logs-from', 'type'), 'text', 'a datetime-local input shows the locale\'s format');
  assert.equal(await page.getAttribute('#logs-from', 'placeholder'), 'YYYY-MM-DD HH:MM');
  await page.fill('#logs-from', range.from);
  await page.fill('#logs-to', range.to);
  await page.click('#logs-search');
  await h.waitFor(`the range ${range.from} to ${range.to} in the URL`, async () => {
    const p = new URLSearchParams((await page.evaluate(() => location.hash)).replace(/^#\/logs\?/, ''));
    return p.get('from') === range.fromISO && p.get('to') === range.toISO && p.get('q') === cfg.needle;
  });
  await h.waitFor('the needle within the range', async () => (await rowsOf(page)).length === 1);
  await page.reload();
  await h.waitFor('the range after a reload', async () =>
    (await page.inputValue('#logs-from')) === range.from && (await page.inputValue('#logs-to')) === range.to &&
    (await rowsOf(page)).length === 1);
  h.log(`range ${range.from} to ${range.to}: kept in the URL and shown the same after a reload`);
  // Anything else is refused, saying what is wrong; the URL keeps the search.
  const before = await page.evaluate(() => location.hash);
  for (const [value, want] of [
    [range.from.replace(/ 13:05$/, ' 1:05 PM'), /^From: write it as YYYY-MM-DD HH:MM, 24 h \(e\.g\. \d{4}-\d\d-\d\d \d\d:\d\d\)\.$/],
    [range.from.replace(/ 13:05$/, ' 25:05'), /^From: 25:05 is not a time of day/],
  ]) {
    await page.fill('#logs-from', value);
    await page.click('#logs-search');
    await h.waitFor(`error for "${value}"`, async () => (await page.locator('#logs-error').isVisible()) && want.test(await page.textContent('#logs-error')));
    assert.equal(await page.locator('#logs-from.invalid').count(), 1, `"${value}" not marked invalid`);
    assert.equal(await page.evaluate(() => location.hash), before, 'an invalid date changed the URL');
  }
  await page.fill('#logs-from', '');
  await page.fill('#logs-to', '');

  // The n matches span more than one page; #logs-older walks through them all.
  await search(page, cfg.word);
  const seen = new Set();
  let pages = 0;
  let first = await h.waitFor('first page of matches', async () => {
    const rows = await rowsOf(page);
    return rows.length > 0 && rows.every((r) => r.message.includes(cfg.word)) && rows;
  });
  await h.screenshot(page, 'readme-logs');
  for (let rows = first; ; ) {
    pages++;
    for (const r of rows) {
      assert.ok(r.message.includes(cfg.word), `row ${r.message} does not match`);
      assert.ok(!seen.has(r.message), `row ${r.message} shown twice`);
      seen.add(r.message);
    }
    const older = page.locator('#logs-older');
    if (seen.size >= n || !(await older.isVisible()) || (await older.isDisabled())) break;
    const before = rows[rows.length - 1].message;
    await older.click();
    rows = await h.waitFor(`page ${pages + 1}`, async () => {
      const r = await rowsOf(page);
      return r.length > 0 && r[r.length - 1].message !== before && r;
    });
  }
  assert.ok(first.length < n, `first page shows ${first.length} rows, want fewer than ${n} (paging)`);
  assert.ok(pages >= 2, `${pages} pages`);
  assert.equal(seen.size, n, `paging showed ${seen.size} distinct matches, want ${n}`);
  h.log(`${n} matches over ${pages} pages, first page ${first.length}`);
  // The newest page comes back with #logs-newer.
  if (await page.locator('#logs-newer').isEnabled()) {
    await page.click('#logs-newer');
    await h.waitFor('newer page', async () => {
      const r = await rowsOf(page);
      return r.length > 0 && !r.some((x) => x.message.endsWith('step 001'));
    });
  }

  // Exports hold every match, in both formats.
  for (const [sel, format] of [['#logs-export-jsonl', 'jsonl'], ['#logs-export-csv', 'csv']]) {
    const href = await page.getAttribute(sel, 'href');
    assert.ok(href.includes(`format=${format}`) && href.includes(cfg.word), `${sel} href ${href}`);
    const res = await page.evaluate(async (href) => {
      const r = await fetch(href);
      return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
    }, href);
    assert.equal(res.status, 200, `${format} export: ${res.status} ${res.text}`);
    const lines = res.text.split('\n').filter((l) => l !== '');
    if (format === 'jsonl') {
      const items = lines.map((l) => JSON.parse(l));
      assert.equal(items.length, n, `JSONL export has ${items.length} lines, want ${n}`);
      assert.ok(items.every((it) => it.device === device && it.message.includes(cfg.word)));
      assert.equal(new Set(items.map((it) => it.message)).size, n);
    } else {
      assert.equal(lines[0].split(',')[0], 'device', 'CSV header');
      const rows = lines.slice(1);
      assert.equal(rows.length, n, `CSV export has ${rows.length} rows, want ${n}`);
      assert.ok(rows.every((r) => r.startsWith(device + ',') && r.includes(cfg.word)));
    }
    h.log(`${format} export: ${n} matches`);
  }
});

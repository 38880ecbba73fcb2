// The logs page (#/logs): filters, a page of 100 rows with older/newer
// pagination over the API's cursors, a live tail, and export links.

import { api, errorText, queryString } from './api.js';
import { $, setText, showAlert } from './dom.js';
import { dateInputsError, fmtNumber, fromLocalInput, parseTime, toLocalInput } from './format.js';
import { live } from './live.js';
import { fromLive, logRow } from './logrow.js';

const PAGE_SIZE = 100;
const MAX_LIVE_ROWS = 500;

let filters = null; // the applied filters {device, level, q, from, to}
let cursor = ''; // the cursor of the page shown ('' = newest)
let previous = []; // cursors of the newer pages, for "Newer"
let nextCursor = '';
let visible = false;
let loadSeq = 0;

export function initLogsPage() {
  $('logs-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    search();
  });
  $('logs-older').addEventListener('click', () => {
    previous.push(cursor);
    cursor = nextCursor;
    load();
  });
  $('logs-newer').addEventListener('click', () => {
    cursor = previous.pop() || '';
    load();
  });
  $('logs-live').addEventListener('change', updatePager);
  live.on('log', onLiveLog);
}

/**
 * showLogsPage applies the filters of #/logs?device=&level=&q=&from=&to=
 * (from and to in RFC 3339), or keeps the last view. Every search writes its
 * filters there, so a reload or a shared link shows the same search.
 */
export function showLogsPage(route) {
  visible = true;
  const p = route.params;
  const fromURL = ['device', 'level', 'q', 'from', 'to'].some((k) => p.has(k));
  if (fromURL) {
    $('logs-device').value = p.get('device') || '';
    $('logs-level').value = p.get('level') || '';
    $('logs-q').value = p.get('q') || '';
    $('logs-from').value = inputOf(p.get('from'));
    $('logs-to').value = inputOf(p.get('to'));
  }
  if (fromURL || !filters) search();
  else writeURL(queryString(filters));
}

/** writeURL puts the applied filters (a query string) in the page's URL. */
function writeURL(qs) {
  if (!visible || !location.hash.startsWith('#/logs')) return;
  // replaceState fires no hashchange: the router does not search again.
  history.replaceState(null, '', qs ? `#/logs?${qs}` : '#/logs');
}

/** inputOf is the date input's "YYYY-MM-DD HH:MM" of an RFC 3339 time ("" if none). */
function inputOf(v) {
  const ms = parseTime(v || '');
  return ms ? toLocalInput(new Date(ms)) : '';
}

export function hideLogsPage() {
  visible = false;
}

export function resetLogsPage() {
  filters = null;
  $('logs-body').replaceChildren();
}

/** readFilters takes the form's values; null (with a message) if invalid. */
function readFilters() {
  const bad = dateInputsError({ From: $('logs-from'), To: $('logs-to') });
  if (bad) {
    showAlert($('logs-error'), bad);
    return null;
  }
  const from = fromLocalInput($('logs-from').value);
  const to = fromLocalInput($('logs-to').value);
  if (from && to && from > to) {
    showAlert($('logs-error'), '"From" is after "To".');
    return null;
  }
  return {
    device: $('logs-device').value.trim(), level: $('logs-level').value,
    q: $('logs-q').value.trim(), from, to,
  };
}

function search() {
  const f = readFilters();
  if (!f) return;
  filters = f;
  cursor = '';
  previous = [];
  const qs = queryString(f);
  writeURL(qs);
  $('logs-export-jsonl').href = `/api/v1/logs/export?${queryString({ format: 'jsonl' })}${qs ? `&${qs}` : ''}`;
  $('logs-export-csv').href = `/api/v1/logs/export?${queryString({ format: 'csv' })}${qs ? `&${qs}` : ''}`;
  load();
}

async function load() {
  const seq = ++loadSeq;
  showAlert($('logs-error'), '');
  $('logs-table').setAttribute('aria-busy', 'true');
  $('logs-older').disabled = $('logs-newer').disabled = true;
  try {
    const data = await api('/api/v1/logs', { query: { ...filters, limit: PAGE_SIZE, cursor } });
    if (seq !== loadSeq) return;
    nextCursor = data.next_cursor || '';
    $('logs-body').replaceChildren(...(data.items || []).map((e) => logRow(e)));
  } catch (err) {
    if (seq !== loadSeq) return;
    nextCursor = '';
    $('logs-body').replaceChildren();
    showAlert($('logs-error'), errorText(err));
  } finally {
    if (seq === loadSeq) $('logs-table').removeAttribute('aria-busy');
  }
  updatePager();
}

function updatePager() {
  const rows = $('logs-body').childElementCount;
  $('logs-older').disabled = !nextCursor;
  $('logs-newer').disabled = previous.length === 0;
  $('logs-empty').hidden = rows > 0 || !$('logs-error').hidden;
  const page = previous.length + 1;
  const tail = $('logs-live').checked && cursor === '' ? ' · live' : '';
  const paused = $('logs-live').checked && cursor !== '' ? ' · live tail pauses on older pages' : '';
  setText($('logs-info'), rows ? `Page ${fmtNumber(page)} · ${fmtNumber(rows)} rows, newest first${tail}${paused}` : '');
}

/** matches applies the current filters to a live log, as the API would. */
function matches(e) {
  if (!filters) return false;
  if (filters.device && e.device !== filters.device) return false;
  if (filters.level && e.level !== filters.level) return false;
  if (filters.from && e.ts < parseTime(filters.from)) return false;
  if (filters.to && e.ts > parseTime(filters.to)) return false;
  if (filters.q) {
    const text = `${e.message ?? ''} ${e.fields ? JSON.stringify(e.fields) : ''}`.toLowerCase();
    return filters.q.toLowerCase().split(/\s+/).every((w) => text.includes(w));
  }
  return true;
}

function onLiveLog(msg) {
  // Only the newest page takes live rows: older pages are history.
  if (!visible || !$('logs-live').checked || cursor !== '') return;
  const e = fromLive(msg);
  if (!matches(e)) return;
  const body = $('logs-body');
  const row = logRow(e);
  row.classList.add('live-new');
  body.prepend(row);
  while (body.childElementCount > MAX_LIVE_ROWS) body.lastElementChild.remove();
  updatePager();
}

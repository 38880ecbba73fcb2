// The queue page (#/queue, admins): ingest counters refreshed every 2 s
// while shown, the dead letters (each can be requeued or deleted), and
// "Requeue all".

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { fmtDateTime, fmtNumber, truncate } from './format.js';

const REFRESH_MS = 2000;
const DEAD_LIMIT = 100;
const ITEM_PREVIEW = 120;

let timer = null;
let deadSeq = 0;

export function initQueuePage() {
  $('dead-requeue').addEventListener('click', requeueAll);
  $('dead-refresh').addEventListener('click', () => {
    loadStats();
    loadDead();
  });
}

export function showQueuePage(route, ctx) {
  const admin = ctx.user.role === 'admin';
  $('queue-forbidden').hidden = admin;
  $('queue-content').hidden = !admin;
  if (!admin) return;
  loadStats();
  loadDead();
  clearInterval(timer);
  timer = setInterval(loadStats, REFRESH_MS);
}

export function hideQueuePage() {
  clearInterval(timer);
  timer = null;
}

/** resetQueuePage clears what the previous user saw (logout). */
export function resetQueuePage() {
  for (const id of ['queue-pending', 'queue-inflight', 'queue-dead', 'queue-workers']) setText($(id), '—');
  setText($('queue-updated'), '');
  setDeadStatus('', '');
  $('dead-body').replaceChildren();
}

async function loadStats() {
  try {
    const s = await api('/api/v1/queue');
    setText($('queue-pending'), fmtNumber(s.pending));
    setText($('queue-inflight'), fmtNumber(s.in_flight));
    setText($('queue-dead'), fmtNumber(s.dead));
    $('queue-dead').closest('.stat').classList.toggle('alarm', s.dead > 0);
    setText($('queue-workers'), Number.isFinite(s.workers) ? fmtNumber(s.workers) : '—');
    setText($('queue-updated'), `Updated ${fmtDateTime(Date.now())}`);
    showAlert($('queue-error'), '');
  } catch (err) {
    showAlert($('queue-error'), errorText(err));
  }
}

async function loadDead() {
  const seq = ++deadSeq;
  try {
    const data = await api('/api/v1/queue/dead', { query: { limit: DEAD_LIMIT } });
    if (seq !== deadSeq) return;
    const items = data.items || [];
    $('dead-body').replaceChildren(...items.map(deadRow));
    $('dead-empty').hidden = items.length > 0;
    $('dead-requeue').disabled = items.length === 0;
  } catch (err) {
    if (seq === deadSeq) setDeadStatus('error', errorText(err));
  }
}

/** deadRow shows one dead letter; item and error come from devices. */
function deadRow(d) {
  const item = String(d.item ?? '');
  return el('tr', { class: 'dead-row' },
    el('td', { class: 'dead-time', text: fmtDateTime(d.failed_at) }),
    el('td', { class: 'dead-error', text: d.error ?? '' }),
    el('td', { class: 'dead-attempts num', text: fmtNumber(d.attempts) }),
    el('td', { class: 'dead-worker', text: d.worker ?? '' }),
    el('td', { class: 'dead-item' },
      el('details', {},
        el('summary', { text: truncate(item, ITEM_PREVIEW) }),
        el('pre', { text: pretty(item) }))),
    el('td', { class: 'dead-actions' },
      el('button', { type: 'button', class: 'btn btn-small dead-requeue-one', text: 'Requeue',
        onclick: () => oneLetter(d.id, 'requeue') }),
      el('button', { type: 'button', class: 'btn btn-small btn-danger dead-delete-one', text: 'Delete',
        onclick: () => oneLetter(d.id, 'delete') })));
}

/** oneLetter requeues or deletes one dead letter. */
async function oneLetter(id, action) {
  if (action === 'delete' && !confirm('Delete this dead letter for good? Its item is not stored.')) return;
  try {
    if (action === 'requeue') {
      await api(`/api/v1/queue/dead/${encodeURIComponent(id)}/requeue`, { method: 'POST', body: {} });
      setDeadStatus('ok', 'Requeued 1 item.');
    } else {
      await api(`/api/v1/queue/dead/${encodeURIComponent(id)}`, { method: 'DELETE' });
      setDeadStatus('ok', 'Deleted 1 dead letter.');
    }
  } catch (err) {
    setDeadStatus('error', errorText(err));
  }
  loadStats();
  loadDead();
}

/** pretty indents a JSON item, or returns it as it is. */
function pretty(s) {
  try {
    return JSON.stringify(JSON.parse(s), null, 2);
  } catch {
    return s;
  }
}

async function requeueAll() {
  const n = $('dead-body').childElementCount;
  if (!confirm(`Put all dead letters${n ? ` (${n}${n >= DEAD_LIMIT ? '+' : ''})` : ''} back on the ingest list?`)) return;
  $('dead-requeue').disabled = true;
  try {
    const res = await api('/api/v1/queue/dead/requeue', { method: 'POST', body: {} });
    setDeadStatus('ok', `Requeued ${fmtNumber(res.requeued)} item${res.requeued === 1 ? '' : 's'}.`);
  } catch (err) {
    setDeadStatus('error', errorText(err));
  }
  loadStats();
  loadDead();
}

function setDeadStatus(state, text) {
  const s = $('dead-status');
  s.dataset.state = state;
  setText(s, text);
}

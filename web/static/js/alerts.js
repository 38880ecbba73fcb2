// The alerts page (#/alerts): the geofence map (geofences.js), the alert
// rules, the webhooks (admins), and a feed of alerts and geofence events:
// the archived ones (GET /api/v1/alerts, /api/v1/geofence-events) and the
// new ones as the worker publishes them on the devices' live channels
// (the page's viewer socket, live.js, is subscribed to every visible
// device). A live alert also counts in the header's badge while the page is
// not shown, so that an operator on the map sees it.

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { fmtDateTime } from './format.js';
import { live } from './live.js';
import { allDevices, getDevice, onDevicesChanged } from './store.js';
import { initGeofences, showGeofences, setGeofenceGroups, resetGeofences, geofences, geofenceName } from './geofences.js';

const FEED_LIMIT = 100; // archived items of each kind, and live items kept
const KINDS = {
  geofence_enter: 'Enters a geofence',
  geofence_exit: 'Leaves a geofence',
  offline: 'Offline for',
  speed: 'Speed over',
  log: 'Log',
};

let user = null;
let visible = false;
let unseen = 0; // live alerts since the page was last shown
// The feed: key ("alert:ID" or "geofence:ID") -> item, archived and live.
const feed = new Map();
let feedSeq = 0;
let rulesSeq = 0;

export function initAlertsPage() {
  fillSelect($('rule-kind'), Object.entries(KINDS));
  initGeofences(onGeofencesChanged);
  $('rule-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    createRule();
  });
  $('rule-kind').addEventListener('change', ruleKindChanged);
  $('webhook-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    createWebhook();
  });
  $('feed-refresh').addEventListener('click', loadFeed);
  $('alert-badge').addEventListener('click', () => clearBadge());
  live.on('geofence', (msg) => onLive('geofence', msg));
  live.on('alert', (msg) => onLive('alert', msg));
  // Names and groups that arrive after the page showed (a page opened
  // straight at #/alerts): the selects and the feed's device names.
  onDevicesChanged((ids, structural) => {
    if (!visible || !structural) return;
    fillGroups();
    renderFeed();
  });
  ruleKindChanged();
}

export function showAlertsPage(route, ctx) {
  user = ctx.user;
  visible = true;
  clearBadge();
  const admin = user.role === 'admin';
  $('webhook-card').hidden = !admin;
  showGeofences(user, userGroups()).then(() => {
    fillGroups(); // with the geofences' groups
    loadRules();
  });
  if (admin) loadWebhooks();
  loadFeed();
}

export function hideAlertsPage() {
  visible = false;
}

/** resetAlertsPage clears what the previous user saw (logout). */
export function resetAlertsPage() {
  resetGeofences();
  feed.clear();
  clearBadge();
  for (const id of ['rule-body', 'webhook-body', 'feed-list']) $(id).replaceChildren();
  for (const id of ['rule-error', 'webhook-error', 'feed-error']) showAlert($(id), '');
  $('webhook-secret').hidden = true;
  setText($('webhook-secret-value'), '');
  user = null;
}

/**
 * userGroups are the groups the user may draw geofences and rules in: an
 * operator's own; for an admin, those of the devices and of the geofences.
 */
function userGroups() {
  if (user.role !== 'admin') return [...(user.groups || [])].sort();
  const set = new Set(allDevices().map((d) => d.group).filter(Boolean));
  for (const gf of geofences()) set.add(gf.group);
  return [...set].sort();
}

/** fillGroups fills the group selects of the page's forms. */
function fillGroups() {
  const groups = userGroups();
  fillSelect($('rule-group'), groups.map((g) => [g, g]));
  fillSelect($('webhook-group'), [['', 'All groups'], ...groups.map((g) => [g, g])]);
  setGeofenceGroups(groups);
}

function fillSelect(sel, options) {
  const prev = sel.value;
  sel.replaceChildren(...options.map(([value, text]) => el('option', { value, text })));
  if (options.some(([v]) => v === prev)) sel.value = prev;
}

function deviceLabel(id) {
  const d = getDevice(id);
  return d && d.name && d.name !== id ? `${d.name} (${id})` : id;
}

// ---------- rules ----------

function onGeofencesChanged(list) {
  const sel = $('rule-geofence');
  fillSelect(sel, list.map((gf) => [gf.id, `${gf.name || gf.id} (${gf.group})`]));
  $('rule-geofence-none').hidden = list.length > 0;
  renderRules(lastRules);
}

function ruleKindChanged() {
  const kind = $('rule-kind').value;
  const geo = kind === 'geofence_enter' || kind === 'geofence_exit';
  $('rule-geofence-field').hidden = !geo;
  $('rule-group-field').hidden = geo;
  $('rule-minutes-field').hidden = kind !== 'offline';
  $('rule-speed-field').hidden = kind !== 'speed';
  $('rule-level-field').hidden = kind !== 'log';
  $('rule-text-field').hidden = kind !== 'log';
}

let lastRules = [];

async function loadRules() {
  const seq = ++rulesSeq;
  try {
    const data = await api('/api/v1/alert-rules');
    if (seq !== rulesSeq) return;
    lastRules = data.items || [];
    renderRules(lastRules);
    showAlert($('rule-error'), '');
  } catch (err) {
    if (seq === rulesSeq) showAlert($('rule-error'), `Cannot load the rules: ${errorText(err)}`);
  }
}

/** ruleText says what a rule watches for. */
function ruleText(r) {
  switch (r.kind) {
    case 'geofence_enter': return `enters ${geofenceName(r.geofence)}`;
    case 'geofence_exit': return `leaves ${geofenceName(r.geofence)}`;
    case 'offline': return `offline for ${r.offline_minutes} min`;
    case 'speed': return `faster than ${r.speed_kmh} km/h`;
    case 'log': return [r.level && `log at ${r.level} or above`, r.text && `log containing “${r.text}”`].filter(Boolean).join(', ');
    default: return r.kind;
  }
}

function renderRules(rules) {
  $('rule-body').replaceChildren(...rules.map((r) => el('tr', { class: 'rule-row', dataset: { id: r.id, kind: r.kind } },
    el('td', { text: r.name || '—' }),
    el('td', { class: 'rule-what', text: ruleText(r) }),
    el('td', { text: r.group }),
    el('td', {}, el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Delete',
      onclick: () => deleteRule(r) })))));
  $('rule-empty').hidden = rules.length > 0;
}

async function createRule() {
  const kind = $('rule-kind').value;
  const body = { kind, name: $('rule-name').value.trim() };
  if (kind === 'geofence_enter' || kind === 'geofence_exit') body.geofence = $('rule-geofence').value;
  else body.group = $('rule-group').value;
  if (kind === 'offline') body.offline_minutes = Number($('rule-minutes').value);
  if (kind === 'speed') body.speed_kmh = Number($('rule-speed').value);
  if (kind === 'log') {
    body.level = $('rule-level').value;
    body.text = $('rule-text').value.trim();
  }
  try {
    await api('/api/v1/alert-rules', { method: 'POST', body });
    showAlert($('rule-error'), '');
    $('rule-name').value = '';
  } catch (err) {
    showAlert($('rule-error'), errorText(err));
  }
  loadRules();
}

async function deleteRule(r) {
  if (!confirm(`Delete the rule “${r.name || ruleText(r)}”?`)) return;
  try {
    await api(`/api/v1/alert-rules/${encodeURIComponent(r.id)}`, { method: 'DELETE' });
  } catch (err) {
    showAlert($('rule-error'), errorText(err));
  }
  loadRules();
}

// ---------- webhooks (admins) ----------

async function loadWebhooks() {
  try {
    const data = await api('/api/v1/webhooks');
    const hooks = data.items || [];
    $('webhook-body').replaceChildren(...hooks.map((w) => el('tr', { class: 'webhook-row', dataset: { id: w.id } },
      el('td', { class: 'webhook-url', text: w.url }),
      el('td', { text: w.group || 'all groups' }),
      el('td', { text: fmtDateTime(w.created_at) }),
      el('td', {}, el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Delete',
        onclick: () => deleteWebhook(w) })))));
    $('webhook-empty').hidden = hooks.length > 0;
  } catch (err) {
    showAlert($('webhook-error'), `Cannot load the webhooks: ${errorText(err)}`);
  }
}

async function createWebhook() {
  const body = { url: $('webhook-url').value.trim(), group: $('webhook-group').value };
  const secret = $('webhook-secret-input').value;
  if (secret) body.secret = secret;
  try {
    const w = await api('/api/v1/webhooks', { method: 'POST', body });
    showAlert($('webhook-error'), '');
    $('webhook-url').value = '';
    $('webhook-secret-input').value = '';
    setText($('webhook-secret-value'), w.secret);
    setText($('webhook-secret-url'), w.url);
    $('webhook-secret').hidden = false;
  } catch (err) {
    showAlert($('webhook-error'), errorText(err));
  }
  loadWebhooks();
}

async function deleteWebhook(w) {
  if (!confirm(`Delete the webhook to ${w.url}?`)) return;
  try {
    await api(`/api/v1/webhooks/${encodeURIComponent(w.id)}`, { method: 'DELETE' });
  } catch (err) {
    showAlert($('webhook-error'), errorText(err));
  }
  loadWebhooks();
}

// ---------- the feed ----------

/** feedItem is an archived or live alert or event in one shape. */
function feedItem(type, m, isLive) {
  if (type === 'geofence') {
    const event = m.event || m.type; // live: "event"; archived: "type"
    return { key: `geofence:${m.id}`, type, id: m.id, device: m.device, ts: m.ts, event, live: isLive,
      geofence: m.geofence, name: m.name };
  }
  return { key: `alert:${m.id}`, type, id: m.id, device: m.device, ts: m.ts, kind: m.kind, live: isLive,
    message: m.message };
}

function onLive(type, msg) {
  if (!msg || !msg.id) return;
  const it = feedItem(type, msg, true);
  if (feed.has(it.key)) return; // a message delivered twice shows once
  feed.set(it.key, it);
  trimFeed();
  if (type === 'alert' && !visible) bumpBadge(it);
  if (visible) renderFeed();
}

async function loadFeed() {
  const seq = ++feedSeq;
  try {
    const [alerts, events] = await Promise.all([
      api('/api/v1/alerts', { query: { limit: FEED_LIMIT } }),
      api('/api/v1/geofence-events', { query: { limit: FEED_LIMIT } }),
    ]);
    if (seq !== feedSeq) return;
    for (const a of alerts.items || []) {
      const it = feedItem('alert', a, false);
      if (!feed.has(it.key)) feed.set(it.key, it);
    }
    for (const e of events.items || []) {
      const it = feedItem('geofence', e, false);
      if (!feed.has(it.key)) feed.set(it.key, it);
    }
    trimFeed();
    showAlert($('feed-error'), '');
  } catch (err) {
    if (seq === feedSeq) showAlert($('feed-error'), `Cannot load alerts: ${errorText(err)}`);
  }
  renderFeed();
}

function sortedFeed() {
  return [...feed.values()].sort((a, b) => b.ts - a.ts || (a.key < b.key ? 1 : -1));
}

function trimFeed() {
  const all = sortedFeed();
  for (const it of all.slice(2 * FEED_LIMIT)) feed.delete(it.key);
}

function renderFeed() {
  const items = sortedFeed();
  $('feed-list').replaceChildren(...items.map(feedRow));
  $('feed-empty').hidden = items.length > 0;
}

function feedRow(it) {
  const attrs = { class: `feed-item feed-${it.type}`, dataset: { type: it.type, id: it.id, device: it.device } };
  if (it.live) attrs.dataset.live = 'true';
  let badge;
  let text;
  if (it.type === 'geofence') {
    attrs.dataset.event = it.event;
    badge = el('span', { class: `feed-badge feed-${it.event}`, text: it.event === 'enter' ? 'Entered' : 'Left' });
    text = `${deviceLabel(it.device)} ${it.event === 'enter' ? 'entered' : 'left'} ${it.name || geofenceName(it.geofence)}`;
  } else {
    attrs.dataset.kind = it.kind;
    badge = el('span', { class: 'feed-badge feed-alert', text: 'Alert' });
    text = it.message || `${deviceLabel(it.device)}: ${it.kind}`;
  }
  return el('li', attrs,
    el('span', { class: 'feed-time', text: fmtDateTime(it.ts) }),
    badge,
    el('span', { class: 'feed-text', text }),
    it.live ? el('span', { class: 'feed-live', text: 'live' }) : null);
}

// ---------- the header badge ----------

function bumpBadge(it) {
  unseen++;
  const b = $('alert-badge');
  setText($('alert-badge-count'), unseen === 1 ? '1 new alert' : `${unseen} new alerts`);
  setText($('alert-badge-text'), it.message || `${deviceLabel(it.device)}: ${it.kind}`);
  b.title = 'Open the alerts page';
  b.hidden = false;
}

function clearBadge() {
  unseen = 0;
  $('alert-badge').hidden = true;
  setText($('alert-badge-count'), '');
  setText($('alert-badge-text'), '');
}

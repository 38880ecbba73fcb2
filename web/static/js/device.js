// The device page (#/device/<id>): who the device is, its track, its latest
// logs (live ones prepended) and a form to send it a command. The command
// card keeps two things apart: a status line (is the device connected, when
// was it last seen) and the list of the commands sent from this page, each
// with its id and its result as it comes. The share card (sharecard.js)
// makes and revokes links to the device's live position.

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { fmtAgo, fmtDateTime, fmtJSON } from './format.js';
import { live } from './live.js';
import { fromLive, logRow } from './logrow.js';
import { hideShareCard, showShareCard } from './sharecard.js';
import { getDevice, onDevicesChanged } from './store.js';
import { Track } from './track.js';

const LOG_LIMIT = 50;
const MAX_LOG_ROWS = 200;
const RESULT_WAIT_MS = 30_000;
const MAX_RESULTS = 20;

let track = null;
let deviceId = null;
let info = null; // GET /api/v1/devices/{id}, kept current from the store
let visible = false;
let logSeq = 0;
const pendingCommands = new Map(); // command id -> timeout handle
const earlyResults = new Map(); // results that beat the POST's answer
const results = new Map(); // command id -> its row in #command-results
let ticker = null;

export function initDevicePage() {
  track = new Track();
  $('command-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    sendCommand();
  });
  live.on('log', (msg) => {
    if (visible && msg.device === deviceId) prependLog(fromLive(msg));
  });
  live.on('command_result', onCommandResult);
  onDevicesChanged((ids) => {
    if (visible && ids.has(deviceId)) {
      renderTitle();
      renderConnection();
    }
  });
}

export function showDevicePage(route, ctx) {
  visible = true;
  const id = route.id;
  track.show(ctx.user, id);
  clearInterval(ticker);
  ticker = setInterval(renderConnection, 1000);
  showShareCard(id);
  if (id === deviceId) return renderConnection();
  deviceId = id;
  info = null;
  showAlert($('device-error'), '');
  clearCommands();
  $('device-all-logs').href = `#/logs?device=${encodeURIComponent(id)}`;
  renderTitle();
  renderConnection();
  loadInfo(id);
  loadLogs(id);
}

export function hideDevicePage() {
  visible = false;
  clearInterval(ticker);
  track.hide();
  hideShareCard();
}

export function resetDevicePage() {
  deviceId = null;
  info = null;
  track.reset();
  clearCommands();
  $('device-logs').replaceChildren();
}

/** clearCommands forgets the commands of the device shown before. */
function clearCommands() {
  for (const t of pendingCommands.values()) clearTimeout(t);
  pendingCommands.clear();
  results.clear();
  $('command-results').replaceChildren();
  $('command-results-empty').hidden = false;
  commandError('');
}

async function loadInfo(id) {
  try {
    const d = await api(`/api/v1/devices/${encodeURIComponent(id)}`);
    if (id !== deviceId) return;
    info = d;
    renderTitle();
    renderConnection();
  } catch (err) {
    if (id === deviceId) showAlert($('device-error'), errorText(err));
  }
}

/** state is the device's record, online state and last seen (ms, 0 never). */
function state() {
  const rec = getDevice(deviceId);
  const d = rec || info || { id: deviceId };
  const online = rec ? rec.online : !!(info && info.online);
  const lastSeen = rec ? rec.lastSeen : info && info.last_seen ? Date.parse(info.last_seen) : 0;
  return { d, online, lastSeen };
}

/**
 * renderTitle shows name, group and online state (live from the store); the
 * id comes after the name only when they differ: an unnamed device shows it
 * once, as its name.
 */
function renderTitle() {
  const { d, online, lastSeen } = state();
  const named = d.name && d.name !== deviceId;
  const seen = el('span', { class: 'title-lastseen', text: lastSeen ? `seen ${fmtAgo(lastSeen)}` : 'never seen' });
  if (lastSeen) seen.title = fmtDateTime(lastSeen);
  $('device-title').replaceChildren(
    el('span', { class: 'title-name', text: named ? d.name : deviceId }),
    ...(named ? [el('span', { class: 'title-id', text: deviceId })] : []),
    el('span', { class: 'title-group', text: d.group ? `group ${d.group}` : 'no group' }),
    el('span', { class: `title-state ${online ? 'online' : 'offline'}`, text: online ? 'online' : 'offline' }),
    seen);
  document.title = `${named ? d.name : deviceId} · devtrack`;
}

/**
 * renderConnection is the command card's status line: whether the device is
 * connected (commands reach only a connected device) and when it was last
 * seen. Command results never go here.
 */
function renderConnection() {
  if (!deviceId) return;
  const { online, lastSeen } = state();
  const line = $('command-status');
  line.dataset.state = online ? 'online' : 'offline';
  const seen = lastSeen ? `last seen ${fmtAgo(lastSeen)}` : 'never seen';
  setText(line, online ? `Connected · ${seen}` : `Not connected · ${seen}; commands need a connected device`);
  line.title = lastSeen ? `Last seen ${fmtDateTime(lastSeen)}` : '';
}

async function loadLogs(id) {
  const seq = ++logSeq;
  const body = $('device-logs');
  body.replaceChildren();
  $('device-logs-empty').hidden = true;
  showAlert($('device-logs-error'), '');
  try {
    const data = await api('/api/v1/logs', { query: { device: id, limit: LOG_LIMIT } });
    if (seq !== logSeq) return;
    // Live rows may have arrived meanwhile; keep them on top.
    body.append(...(data.items || []).map((e) => logRow(e, { showDevice: false })));
  } catch (err) {
    if (seq === logSeq) showAlert($('device-logs-error'), errorText(err));
  }
  $('device-logs-empty').hidden = body.childElementCount > 0;
}

function prependLog(entry) {
  const body = $('device-logs');
  body.prepend(logRow(entry, { showDevice: false }));
  while (body.childElementCount > MAX_LOG_ROWS) body.lastElementChild.remove();
  $('device-logs-empty').hidden = true;
}

/** parseArgs reads the args textarea: empty is {}, else a JSON object. */
function parseArgs(text) {
  if (!text.trim()) return { args: {} };
  let v;
  try {
    v = JSON.parse(text);
  } catch (err) {
    return { error: `Arguments are not valid JSON: ${err.message}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    return { error: 'Arguments must be a JSON object, like {"interval": 10}.' };
  }
  return { args: v };
}

async function sendCommand() {
  const name = $('command-name').value.trim();
  const { args, error } = parseArgs($('command-args').value);
  $('command-args').classList.toggle('invalid', !!error);
  if (!name) return commandError('Enter a command name.');
  if (error) return commandError(error);
  commandError('');
  const id = deviceId;
  $('command-send').disabled = true;
  try {
    const res = await api(`/api/v1/devices/${encodeURIComponent(id)}/commands`, { method: 'POST', body: { name, args } });
    if (id !== deviceId) return;
    addResult(res.id, name, args);
    const early = earlyResults.get(res.id);
    if (early) return showResult(early);
    pendingCommands.set(res.id, setTimeout(() => {
      pendingCommands.delete(res.id);
      const row = results.get(res.id);
      if (row && row.dataset.state === 'pending') {
        setResult(row, 'pending', `no answer after ${RESULT_WAIT_MS / 1000} s; it may still come`);
      }
    }, RESULT_WAIT_MS));
  } catch (err) {
    if (id !== deviceId) return;
    if (err.status === 409) commandError('Not sent: the device is offline.');
    else commandError(`Not sent: ${errorText(err)}`);
  } finally {
    $('command-send').disabled = false;
  }
}

/** commandError shows why a command was not sent (or clears it). */
function commandError(message) {
  showAlert($('command-error'), message);
}

/**
 * addResult puts a sent command at the top of #command-results: its id,
 * name and arguments, then its result once the device answers.
 */
function addResult(id, name, args) {
  const row = el('li', { class: 'command-item', dataset: { command: id, state: 'pending' } },
    el('div', { class: 'command-head' },
      el('span', { class: 'command-id', text: id }),
      el('span', { class: 'command-name', text: `${name} ${fmtJSON(args)}` })),
    el('div', { class: 'command-result' }));
  results.set(id, row);
  setResult(row, 'pending', 'waiting for the device\'s answer…');
  $('command-results').prepend(row);
  $('command-results-empty').hidden = true;
  while ($('command-results').childElementCount > MAX_RESULTS) {
    const last = $('command-results').lastElementChild;
    results.delete(last.dataset.command);
    last.remove();
  }
}

/** setResult shows a state (pending, ok, error), its text and any data. */
function setResult(row, state, text, data) {
  row.dataset.state = state;
  const box = row.querySelector('.command-result');
  box.replaceChildren(el('span', { class: 'command-outcome', text }));
  if (data) box.append(el('pre', { class: 'command-data', text: data }));
}

function onCommandResult(msg) {
  if (typeof msg.id !== 'string') return;
  earlyResults.set(msg.id, msg);
  if (earlyResults.size > 50) earlyResults.delete(earlyResults.keys().next().value);
  if (results.has(msg.id)) showResult(msg);
}

function showResult(msg) {
  clearTimeout(pendingCommands.get(msg.id));
  pendingCommands.delete(msg.id);
  const row = results.get(msg.id);
  if (!row) return;
  const result = msg.ok ? 'ok' : `error${msg.error ? `: ${msg.error}` : ''}`;
  setResult(row, msg.ok ? 'ok' : 'error', result, fmtJSON(msg.data));
}

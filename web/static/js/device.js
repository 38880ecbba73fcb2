// The device page (#/device/<id>): who the device is, its track, its latest
// logs (live ones prepended) and a form to send it a command.

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { fmtAgo, fmtDateTime, fmtJSON } from './format.js';
import { live } from './live.js';
import { fromLive, logRow } from './logrow.js';
import { getDevice, onDevicesChanged } from './store.js';
import { Track } from './track.js';

const LOG_LIMIT = 50;
const MAX_LOG_ROWS = 200;
const RESULT_WAIT_MS = 30_000;

let track = null;
let deviceId = null;
let info = null; // GET /api/v1/devices/{id}, kept current from the store
let visible = false;
let logSeq = 0;
const pendingCommands = new Map(); // command id -> timeout handle
const earlyResults = new Map(); // results that beat the POST's answer

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
    if (visible && ids.has(deviceId)) renderTitle();
  });
}

export function showDevicePage(route, ctx) {
  visible = true;
  const id = route.id;
  track.show(ctx.user, id);
  if (id === deviceId) return;
  deviceId = id;
  info = null;
  showAlert($('device-error'), '');
  setText($('command-status'), '');
  $('device-all-logs').href = `#/logs?device=${encodeURIComponent(id)}`;
  renderTitle();
  loadInfo(id);
  loadLogs(id);
}

export function hideDevicePage() {
  visible = false;
  track.hide();
}

export function resetDevicePage() {
  deviceId = null;
  info = null;
  track.reset();
  $('device-logs').replaceChildren();
}

async function loadInfo(id) {
  try {
    const d = await api(`/api/v1/devices/${encodeURIComponent(id)}`);
    if (id !== deviceId) return;
    info = d;
    renderTitle();
  } catch (err) {
    if (id === deviceId) showAlert($('device-error'), errorText(err));
  }
}

/** renderTitle shows name, id, group and online state (live from the store). */
function renderTitle() {
  const rec = getDevice(deviceId);
  const d = rec || info || { id: deviceId };
  const online = rec ? rec.online : !!(info && info.online);
  const lastSeen = rec ? rec.lastSeen : info && info.last_seen ? Date.parse(info.last_seen) : 0;
  const seen = el('span', { class: 'title-lastseen', text: lastSeen ? `seen ${fmtAgo(lastSeen)}` : 'never seen' });
  if (lastSeen) seen.title = fmtDateTime(lastSeen);
  $('device-title').replaceChildren(
    el('span', { class: 'title-name', text: d.name || deviceId }),
    el('span', { class: 'title-id', text: deviceId }),
    el('span', { class: 'title-group', text: d.group ? `group ${d.group}` : 'no group' }),
    el('span', { class: `title-state ${online ? 'online' : 'offline'}`, text: online ? 'online' : 'offline' }),
    seen);
  document.title = `${d.name || deviceId} · devtrack`;
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
  const status = $('command-status');
  const name = $('command-name').value.trim();
  const { args, error } = parseArgs($('command-args').value);
  $('command-args').classList.toggle('invalid', !!error);
  if (!name) return commandStatus('error', 'Enter a command name.');
  if (error) return commandStatus('error', error);
  const id = deviceId;
  $('command-send').disabled = true;
  commandStatus('pending', 'Sending…');
  try {
    const res = await api(`/api/v1/devices/${encodeURIComponent(id)}/commands`, { method: 'POST', body: { name, args } });
    if (id !== deviceId) return;
    commandStatus('pending', `sent, id ${res.id}`, 'waiting for the device\'s answer…');
    status.dataset.command = res.id;
    const early = earlyResults.get(res.id);
    if (early) return showResult(early);
    pendingCommands.set(res.id, setTimeout(() => {
      pendingCommands.delete(res.id);
      if (status.dataset.command === res.id) {
        commandStatus('pending', `sent, id ${res.id}`, `no answer after ${RESULT_WAIT_MS / 1000} s; it may still come`);
      }
    }, RESULT_WAIT_MS));
  } catch (err) {
    if (err.status === 409) commandStatus('error', 'device is offline');
    else commandStatus('error', errorText(err));
  } finally {
    $('command-send').disabled = false;
  }
}

function onCommandResult(msg) {
  if (typeof msg.id !== 'string') return;
  earlyResults.set(msg.id, msg);
  if (earlyResults.size > 50) earlyResults.delete(earlyResults.keys().next().value);
  if ($('command-status').dataset.command === msg.id) showResult(msg);
}

function showResult(msg) {
  clearTimeout(pendingCommands.get(msg.id));
  pendingCommands.delete(msg.id);
  const result = msg.ok ? 'ok' : `error${msg.error ? `: ${msg.error}` : ''}`;
  commandStatus(msg.ok ? 'ok' : 'error', `sent, id ${msg.id}`, result, fmtJSON(msg.data));
}

/**
 * commandStatus shows a state (pending, ok, error), a headline, an optional
 * detail line and optional result data (device-provided: set as text).
 */
function commandStatus(state, text, detail, data) {
  const status = $('command-status');
  status.dataset.state = state;
  if (!text.startsWith('sent')) delete status.dataset.command;
  status.replaceChildren(el('div', { class: 'command-line', text }));
  if (detail) status.append(el('div', { class: 'command-result', text: detail }));
  if (data) status.append(el('pre', { class: 'command-data', text: data }));
}

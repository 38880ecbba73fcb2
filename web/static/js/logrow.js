// Log rows shared by the logs page and the device page. Every field of a
// log comes from a device and is set as text.

import { el } from './dom.js';
import { fmtDateTime, fmtJSON } from './format.js';

const LEVELS = ['debug', 'info', 'warn', 'error', 'fatal'];

/** fromLive turns a live "log" message into the shape of an API log item. */
export function fromLive(msg) {
  const data = msg.data || {};
  return {
    device: msg.device, id: msg.id, ts: msg.ts, received_at: msg.received_at,
    level: data.level, message: data.message, fields: data.fields,
  };
}

/** logRow is a tr.log-row; showDevice adds the device column. */
export function logRow(entry, { showDevice = true } = {}) {
  const level = LEVELS.includes(entry.level) ? entry.level : 'unknown';
  const fields = fmtJSON(entry.fields);
  const ts = el('td', { class: 'log-ts', text: fmtDateTime(entry.ts, true) });
  ts.title = `device time; received ${fmtDateTime(entry.received_at, true)}`;
  return el('tr', { class: `log-row lvl-${level}` },
    ts,
    showDevice
      ? el('td', { class: 'log-device' },
        el('a', { href: `#/device/${encodeURIComponent(entry.device || '')}`, text: entry.device || '' }))
      : null,
    el('td', { class: 'log-level' }, el('span', { class: `level level-${level}`, text: entry.level || '?' })),
    el('td', { class: 'log-message', text: entry.message ?? '' }),
    el('td', { class: 'log-fields', text: fields === '{}' ? '' : fields }));
}

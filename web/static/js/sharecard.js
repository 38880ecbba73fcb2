// The device page's "Share live position" card: creates an expiring share
// link of the device (POST /api/v1/devices/{id}/shares), shows its URL once
// with a copy button, and lists the device's active links with a Revoke
// button each (GET .../shares, DELETE /api/v1/shares/{id}). Whoever opens a
// link sees only this device's live position, until it expires or is
// revoked. The server decides who may share: an admin, or an operator of
// the device's group.

import { api, errorText } from './api.js';
import { $, el, showAlert } from './dom.js';
import { fmtDateTime } from './format.js';

const DURATIONS = [
  ['1 hour', 3600],
  ['4 hours', 4 * 3600],
  ['24 hours', 24 * 3600],
  ['7 days', 7 * 24 * 3600],
];

let card = null;
let device = null; // id shown, null when the page is hidden
let loadSeq = 0; // a reply for a device no longer shown is dropped

function build() {
  const select = el('select', { id: 'share-ttl', 'aria-label': 'Link valid for' },
    DURATIONS.map(([label, s]) => el('option', { value: String(s), text: label })));
  card = el('section', { id: 'share-card', class: 'card share-card' },
    el('h2', { text: 'Share live position' }),
    el('p', { class: 'muted', text: 'Anyone with the link sees this device on a map until the link expires or is revoked; nothing else.' }),
    el('form', { id: 'share-form', class: 'toolbar', onsubmit: (e) => { e.preventDefault(); create(); } },
      el('label', {}, 'Valid for ', select),
      el('button', { id: 'share-create', type: 'submit', class: 'btn btn-primary', text: 'Create link' })),
    el('div', { id: 'share-error', class: 'alert', role: 'alert', hidden: true }),
    el('div', { id: 'share-new', class: 'share-new', hidden: true },
      el('input', { id: 'share-url', type: 'text', readonly: true, 'aria-label': 'New share link', spellcheck: 'false' }),
      el('button', { id: 'share-copy', type: 'button', class: 'btn btn-small', text: 'Copy', onclick: copy })),
    el('h3', { text: 'Active links' }),
    el('p', { id: 'share-empty', class: 'muted', text: 'No active link.' }),
    el('ul', { id: 'share-list', class: 'share-list' }));
  document.querySelector('#page-device .device-grid').append(card);
}

/** showShareCard shows the card for device id and loads its active links. */
export function showShareCard(id) {
  if (!card) build();
  device = id;
  card.hidden = false;
  $('share-new').hidden = true;
  $('share-url').value = '';
  showAlert($('share-error'), '');
  load();
}

/** hideShareCard forgets the device (the page is left). */
export function hideShareCard() {
  device = null;
  loadSeq++;
  if (card) $('share-list').replaceChildren();
}

async function load() {
  const seq = ++loadSeq;
  const id = device;
  try {
    const res = await api(`/api/v1/devices/${encodeURIComponent(id)}/shares`);
    if (seq === loadSeq) render(res.items || []);
  } catch (err) {
    if (seq !== loadSeq) return;
    if (err.status === 403) {
      card.hidden = true; // not this user's to share
      return;
    }
    showAlert($('share-error'), `Could not list the links: ${errorText(err)}`);
  }
}

function render(items) {
  $('share-empty').hidden = items.length > 0;
  $('share-list').replaceChildren(...items.map((s) => el('li', { class: 'share-item', dataset: { id: s.id } },
    el('span', { class: 'share-item-text', text: `until ${fmtDateTime(Date.parse(s.expires_at))}, by ${s.created_by}` }),
    el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Revoke', onclick: () => revoke(s.id) }))));
}

async function create() {
  const id = device;
  const btn = $('share-create');
  btn.disabled = true;
  showAlert($('share-error'), '');
  try {
    const s = await api(`/api/v1/devices/${encodeURIComponent(id)}/shares`, {
      method: 'POST', body: { ttl_s: Number($('share-ttl').value) },
    });
    if (id !== device) return;
    $('share-url').value = s.url;
    $('share-new').hidden = false;
    $('share-url').select();
    load();
  } catch (err) {
    showAlert($('share-error'), `Could not create a link: ${errorText(err)}`);
  } finally {
    btn.disabled = false;
  }
}

async function revoke(shareID) {
  showAlert($('share-error'), '');
  try {
    await api(`/api/v1/shares/${encodeURIComponent(shareID)}`, { method: 'DELETE' });
  } catch (err) {
    showAlert($('share-error'), `Could not revoke the link: ${errorText(err)}`);
  }
  load();
}

async function copy() {
  const input = $('share-url');
  try {
    await navigator.clipboard.writeText(input.value);
    $('share-copy').textContent = 'Copied';
  } catch {
    input.select(); // no clipboard access (plain http): the user copies by hand
  }
  setTimeout(() => { $('share-copy').textContent = 'Copy'; }, 1500);
}

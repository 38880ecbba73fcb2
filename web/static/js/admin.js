// The admin page (#/admin, admins): users (create, edit role and groups,
// reset the password, rotate the token, delete) and devices (enrol, rename,
// move to another group, rotate the token, revoke, delete). A new token is
// shown once, in a banner with a copy button; the server keeps only its hash.

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { fmtDateTime } from './format.js';

let loadSeq = 0;
let me = null; // the signed-in admin's name: their own row cannot demote or delete them

export function initAdminPage() {
  $('admin-user-create').addEventListener('click', createUser);
  $('admin-user-form').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && ev.target.tagName === 'INPUT') createUser(ev);
  });
  $('admin-device-form').addEventListener('submit', enrolDevice);
  $('admin-secret-copy').addEventListener('click', copySecret);
  $('admin-secret-done').addEventListener('click', hideSecret);
}

export function showAdminPage(route, ctx) {
  const admin = ctx.user.role === 'admin';
  me = ctx.user.name;
  $('admin-forbidden').hidden = admin;
  $('admin-content').hidden = !admin;
  if (admin) load();
}

export function hideAdminPage() {
  hideSecret();
}

/** resetAdminPage clears what the previous user saw (logout). */
export function resetAdminPage() {
  hideSecret();
  $('admin-users-body').replaceChildren();
  $('admin-devices-body').replaceChildren();
  status('', '');
  me = null;
}

/** status tells the result of the last action. */
function status(kind, message) {
  if (kind === 'error') {
    showAlert($('admin-error'), message);
    setText($('admin-status'), '');
  } else {
    showAlert($('admin-error'), '');
    setText($('admin-status'), message);
  }
}

async function load() {
  const seq = ++loadSeq;
  try {
    const [users, devices] = await Promise.all([api('/api/v1/users'), api('/api/v1/devices')]);
    if (seq !== loadSeq) return;
    $('admin-users-body').replaceChildren(...(users.items || []).map(userRow));
    $('admin-devices-body').replaceChildren(...(devices.items || []).map(deviceRow));
    $('admin-users-empty').hidden = (users.items || []).length > 0;
    $('admin-devices-empty').hidden = (devices.items || []).length > 0;
  } catch (err) {
    if (seq === loadSeq) status('error', errorText(err));
  }
}

/** groupsOf reads a comma-separated list of groups. */
function groupsOf(text) {
  return text.split(',').map((g) => g.trim()).filter(Boolean);
}

/** run does one call, tells its result and reloads the tables. */
async function run(call, done) {
  try {
    const res = await call();
    status('ok', typeof done === 'function' ? done(res) : done);
  } catch (err) {
    status('error', errorText(err));
  }
  load();
}

function showSecret(label, secret) {
  setText($('admin-secret-label'), label);
  setText($('admin-secret-value'), secret);
  setText($('admin-secret-copy'), 'Copy');
  $('admin-secret').hidden = false;
}

function hideSecret() {
  $('admin-secret').hidden = true;
  setText($('admin-secret-value'), '');
}

async function copySecret() {
  const text = $('admin-secret-value').textContent;
  try {
    await navigator.clipboard.writeText(text);
    setText($('admin-secret-copy'), 'Copied');
  } catch {
    // No clipboard (plain http, or refused): select it for Ctrl+C.
    const range = document.createRange();
    range.selectNodeContents($('admin-secret-value'));
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    setText($('admin-secret-copy'), 'Press Ctrl+C');
  }
}

async function createUser(ev) {
  ev.preventDefault();
  const body = {
    name: $('admin-user-name').value.trim(),
    role: $('admin-user-role').value,
    groups: groupsOf($('admin-user-groups').value),
  };
  const password = $('admin-user-password').value;
  if (password) body.password = password;
  await run(async () => {
    const u = await api('/api/v1/users', { method: 'POST', body });
    showSecret(`API token of ${u.name}, shown only now:`, u.token);
    for (const id of ['admin-user-name', 'admin-user-groups', 'admin-user-password']) $(id).value = '';
    return u;
  }, (u) => `User ${u.name} created.`);
}

async function enrolDevice(ev) {
  ev.preventDefault();
  const body = {
    id: $('admin-device-id').value.trim(),
    name: $('admin-device-name').value,
    group: $('admin-device-group').value.trim(),
  };
  await run(async () => {
    const d = await api('/api/v1/devices', { method: 'POST', body });
    showSecret(`Token of device ${d.id}, shown only now:`, d.token);
    $('admin-device-form').reset();
    return d;
  }, (d) => `Device ${d.id} enrolled.`);
}

const userPath = (name) => `/api/v1/users/${encodeURIComponent(name)}`;
const devicePath = (id) => `/api/v1/devices/${encodeURIComponent(id)}`;

function button(text, cls, onclick, extra = {}) {
  return el('button', { type: 'button', class: `btn btn-small ${cls}`, text, onclick, ...extra });
}

/** userRow shows one user with its controls; names come from admins. */
function userRow(u) {
  const self = u.name === me;
  const role = el('select', { class: 'admin-role', 'aria-label': `Role of ${u.name}`, disabled: self },
    el('option', { value: 'operator', text: 'operator', selected: u.role === 'operator' }),
    el('option', { value: 'admin', text: 'admin', selected: u.role === 'admin' }));
  const groups = el('input', { class: 'admin-groups', type: 'text', value: (u.groups || []).join(','),
    'aria-label': `Groups of ${u.name}`, placeholder: u.role === 'admin' ? 'all (admin)' : 'g1,g2' });
  const password = el('input', { class: 'admin-password', type: 'password', autocomplete: 'new-password',
    'aria-label': `New password of ${u.name}`, placeholder: 'New password' });
  const token = u.token_replaced_at ? `replaced ${fmtDateTime(u.token_replaced_at)}` : `issued ${fmtDateTime(u.created_at)}`;
  return el('tr', { class: 'admin-user', dataset: { user: u.name } },
    el('td', { class: 'admin-name', text: u.name }),
    el('td', {}, role),
    el('td', {}, groups),
    el('td', { class: 'muted', text: token }),
    el('td', { class: 'admin-actions' },
      button('Save', 'admin-save', () => run(() => api(userPath(u.name), { method: 'PATCH',
        body: self ? { groups: groupsOf(groups.value) } : { role: role.value, groups: groupsOf(groups.value) } }),
      `User ${u.name} saved.`)),
      password,
      button('Set password', 'admin-set-password', () => run(() => api(userPath(u.name), { method: 'PATCH',
        body: { password: password.value } }), `Password of ${u.name} set.`)),
      button('Rotate token', 'admin-rotate', () => {
        if (!confirm(`Replace the API token of ${u.name}? The old one stops working now, and their sessions end.`)) return;
        run(async () => {
          const r = await api(`${userPath(u.name)}/token`, { method: 'POST' });
          showSecret(`New API token of ${u.name}, shown only now:`, r.token);
        }, `Token of ${u.name} replaced.`);
      }),
      self ? null : button('Delete', 'btn-danger admin-delete', () => {
        if (!confirm(`Delete user ${u.name}? Their token and sessions stop working now.`)) return;
        run(() => api(userPath(u.name), { method: 'DELETE' }), `User ${u.name} deleted.`);
      })));
}

/** deviceRow shows one device with its controls; names come from devices' owners. */
function deviceRow(d) {
  const name = el('input', { class: 'admin-device-name', type: 'text', value: d.name || '', 'aria-label': `Name of ${d.id}` });
  const group = el('input', { class: 'admin-device-group', type: 'text', value: d.group || '', 'aria-label': `Group of ${d.id}` });
  return el('tr', { class: 'admin-device', dataset: { device: d.id } },
    el('td', { class: 'admin-name', text: d.id }),
    el('td', {}, name),
    el('td', {}, group),
    el('td', { class: d.revoked ? 'admin-revoked' : 'muted', text: d.revoked ? 'revoked' : 'active' }),
    el('td', { class: 'admin-actions' },
      button('Save', 'admin-save', () => run(() => api(devicePath(d.id), { method: 'PATCH',
        body: { name: name.value, group: group.value.trim() } }), `Device ${d.id} saved.`)),
      d.revoked ? null : button('Rotate token', 'admin-rotate', () => {
        if (!confirm(`Replace the token of ${d.id}? The device must get the new one.`)) return;
        run(async () => {
          const r = await api(`${devicePath(d.id)}/token`, { method: 'POST' });
          showSecret(`New token of device ${d.id}, shown only now:`, r.token);
        }, `Token of ${d.id} replaced.`);
      }),
      d.revoked ? null : button('Revoke', 'btn-danger admin-revoke', () => {
        if (!confirm(`Revoke ${d.id}? It is disconnected now; enrol it again to give it a new token.`)) return;
        run(() => api(`${devicePath(d.id)}/revoke`, { method: 'POST' }), `Device ${d.id} revoked.`);
      }),
      button('Delete', 'btn-danger admin-delete', () => {
        if (!confirm(`Delete ${d.id} with all its locations and logs? This cannot be undone.`)) return;
        run(() => api(devicePath(d.id), { method: 'DELETE' }),
          (r) => `Device ${d.id} deleted with ${r.deleted.locations} locations and ${r.deleted.logs} logs.`);
      })));
}

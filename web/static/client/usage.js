// The live example of the client's usage page: it uses the module exactly
// as an embedding page would. Device text is shown with textContent only.
import { DevtrackLive } from './devtrack-live.js';

const $ = (id) => document.getElementById(id);
for (const id of ['self-url', 'self-url-2']) $(id).textContent = location.origin;

let live = null;
const rows = new Map(); // device -> row

function setState(state) {
  $('try-state').dataset.state = state;
  $('try-state').textContent = state;
}

function event(text) {
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  const list = $('try-events');
  list.prepend(li);
  while (list.children.length > 200) list.lastChild.remove();
}

function row(device) {
  let tr = rows.get(device);
  if (!tr) {
    tr = document.createElement('tr');
    tr.dataset.device = device;
    for (let i = 0; i < 5; i++) tr.append(document.createElement('td'));
    tr.children[0].textContent = device;
    rows.set(device, tr);
    $('try-positions').append(tr);
  }
  return tr;
}

function place(device, loc, ts) {
  const tr = row(device);
  if (loc && typeof loc.lat === 'number') {
    tr.children[2].textContent = loc.lat.toFixed(6);
    tr.children[3].textContent = loc.lng.toFixed(6);
  }
  if (ts) tr.children[4].textContent = new Date(ts).toLocaleTimeString();
}

$('try-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  if (live) live.close();
  rows.clear();
  $('try-positions').replaceChildren();
  live = new DevtrackLive({ url: location.origin, token: $('try-token').value.trim() });
  live.on('open', () => { setState('open'); event('open'); });
  live.on('close', (m) => {
    setState(live.state);
    event(`close ${m.code}${m.reconnectIn != null ? `, reconnecting in ${m.reconnectIn} ms` : ''}`);
  });
  live.on('snapshot', (m) => {
    event(`snapshot of ${m.devices.length} device(s)`);
    for (const d of m.devices) {
      place(d.device, d.location, d.location && d.location.ts);
      row(d.device).children[1].textContent = d.online ? 'yes' : 'no';
    }
  });
  live.on('location', (m) => { place(m.device, m.data, m.ts); event(`location ${m.device}`); });
  live.on('log', (m) => event(`log ${m.device} ${m.data.level}: ${m.data.message}`));
  live.on('presence', (m) => {
    row(m.device).children[1].textContent = m.online ? 'yes' : 'no';
    event(`presence ${m.device} ${m.online ? 'online' : 'offline'}`);
  });
  live.on('error', (m) => event(`error ${m.code}${m.devices ? ': ' + m.devices.join(', ') : ''}${m.message ? ' ' + m.message : ''}`));
  const devices = $('try-devices').value.split(',').map((s) => s.trim()).filter(Boolean);
  live.subscribe(devices.length ? devices : { all: true });
  setState(live.state);
  $('try-close').disabled = false;
});

$('try-close').addEventListener('click', () => {
  if (live) live.close();
  setState('closed');
  $('try-close').disabled = true;
});

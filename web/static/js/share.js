// The public share page (/s/{secret}): one device's live position, fed by
// /ws/share?s=SECRET, which sends a "share" message (device, name, expiry,
// tiles), a snapshot, then the device's locations and presence. The secret
// in the path is the only credential; the page calls no other endpoint.
// A close with 4010 means the link expired or was revoked; so does a socket
// that never opens (the handshake answers 401 or 410, which a browser
// cannot read).
import { createMap } from './basemap.js';
import { $, setText } from './dom.js';
import { fmtDateTime } from './format.js';

const closeShareEnded = 4010;
const secret = decodeURIComponent(location.pathname.replace(/^\/s\//, '').replace(/\/$/, ''));

// The map is made when the share message names the tiles (and their crs):
// createMap draws WGS-84 positions where those tiles show them, and the
// embedded basemap when they cannot be reached, as on the operators' map.
let map = null;
const dot = document.createElement('div');
dot.className = 'share-marker offline';
const marker = L.marker([0, 0], {
  icon: L.divIcon({ html: dot, className: 'share-marker-icon', iconSize: [18, 18], iconAnchor: [9, 9] }),
  keyboard: false, interactive: false,
});
let placed = false;
let online = false;
let ended = false;
let expiresAt = null;

function status(state, text) {
  const s = $('share-status');
  s.dataset.state = state;
  setText(s, text);
}

function end(text) {
  if (ended) return;
  ended = true;
  document.body.classList.add('ended');
  status('ended', 'Link ended');
  setText($('share-expires'), '');
  const box = $('share-ended');
  setText(box, text);
  box.hidden = false;
}

function setOnline(on) {
  online = on;
  dot.classList.toggle('offline', !on);
  if (!ended) status('live', on ? 'Live' : 'Live · device offline');
}

// place moves the marker to a location's WGS-84 position.
function place(loc, ts) {
  if (!map || !loc || typeof loc.lat !== 'number' || typeof loc.lng !== 'number') return;
  marker.setLatLng([loc.lat, loc.lng]);
  if (!placed) {
    marker.addTo(map);
    map.setView([loc.lat, loc.lng], 15);
    placed = true;
  } else if (!map.getBounds().pad(-0.1).contains(marker.getLatLng())) {
    map.panTo([loc.lat, loc.lng]);
  }
  const pos = $('share-position');
  pos.dataset.lat = String(loc.lat);
  pos.dataset.lng = String(loc.lng);
  const when = ts ? ` at ${fmtDateTime(ts)}` : '';
  setText(pos, `Position ${loc.lat.toFixed(5)}, ${loc.lng.toFixed(5)}${when}`);
}

function onMessage(m) {
  switch (m.type) {
    case 'share':
      setText($('share-name'), m.name || m.device);
      document.title = `${m.name || m.device} · live location`;
      expiresAt = new Date(m.expires_at);
      setText($('share-expires'), `Link valid until ${fmtDateTime(expiresAt.getTime())}`);
      if (!map) {
        map = createMap($('share-map'), { tiles: m.tiles, tiles_crs: m.tiles_crs, tiles_attribution: m.tiles_attribution });
      }
      break;
    case 'snapshot':
      for (const d of m.devices || []) {
        setOnline(!!d.online);
        if (d.location) place(d.location, d.location.ts);
      }
      break;
    case 'location':
      place(m.data, m.ts);
      if (!online) setOnline(true);
      break;
    case 'presence':
      setOnline(!!m.online);
      break;
    default:
      break;
  }
}

function connect() {
  if (ended) return;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(`${proto}//${location.host}/ws/share?s=${encodeURIComponent(secret)}`);
  let opened = false;
  ws.addEventListener('open', () => { opened = true; status('live', 'Live'); });
  ws.addEventListener('message', (ev) => {
    try {
      onMessage(JSON.parse(ev.data));
    } catch (e) {
      console.warn('share: bad message', e);
    }
  });
  ws.addEventListener('close', (ev) => {
    if (ev.code === closeShareEnded || (expiresAt && Date.now() >= expiresAt.getTime())) {
      end('This link has expired or was revoked. Ask the sender for a new one.');
    } else if (!opened) {
      end('This link has expired, was revoked, or the server cannot be reached.');
    } else {
      status('connecting', 'Reconnecting…');
      setTimeout(connect, 2000);
    }
  });
}

if (!secret) end('This link is incomplete.');
else connect();

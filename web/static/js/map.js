// The map page (#/map): every visible device as a clustered marker that
// moves live, the sidebar list, selection with a recent trail, and follow.

import { api } from './api.js';
import { $, frame, setText } from './dom.js';
import { createMap, boundsOf, WORLD } from './basemap.js';
import { DeviceList } from './devicelist.js';
import { live } from './live.js';
import { Popup, clusterIcon, markerElement, patchMarkerElement } from './markers.js';
import { allDevices, deviceCount, getDevice, onDevicesChanged } from './store.js';

const L = window.L;
const TRAIL_POINTS = 100;
const SELECT_ZOOM = 16; // clustering stops here, so a selected device stands alone

let me = null;
let map = null;
let cluster = null;
let list = null;
let trail = null;
const markers = new Map(); // id -> { marker, node }
const popups = new Map(); // id -> Popup
let selected = null;
let following = null;
let trailDevice = null;
let trailPoints = []; // [{lat, lng, ts}] oldest first
let trailPending = false; // a redraw is scheduled
let visible = false;
let fitted = false; // the first view fits the devices once
let ticker = null;

/** init wires the page once; the map itself is made when first shown. */
export function initMapPage() {
  list = new DeviceList({
    listEl: $('device-list'), searchEl: $('device-search'), countsEl: $('device-counts'),
    emptyEl: $('device-list-empty'), onSelect: (id) => selectAndShow(id),
  });
  $('follow-stop').addEventListener('click', () => setFollow(null));
  onDevicesChanged(onChanged);
  live.on('location', onLiveLocation);
  window.devtrack = {
    markerLatLng(id) {
      const m = markers.get(id);
      if (!m) return null;
      const ll = m.marker.getLatLng();
      return [ll.lat, ll.lng];
    },
    deviceCount,
  };
}

export function showMapPage(route, ctx) {
  me = ctx.user;
  visible = true;
  if (!map) createMapOnce();
  map.invalidateSize();
  onChanged(new Set(allDevices().map((d) => d.id)), true);
  ticker = setInterval(tick, 1000);
}

export function hideMapPage() {
  visible = false;
  clearInterval(ticker);
}

/** resetMapPage forgets the previous user's devices (logout). */
export function resetMapPage() {
  setFollow(null);
  select(null);
  if (cluster) cluster.clearLayers();
  markers.clear();
  popups.clear();
  list.clear();
  fitted = false;
  if (map) map.setView(WORLD.center, WORLD.zoom);
}

function createMapOnce() {
  map = createMap($('map'), me);
  cluster = L.markerClusterGroup({
    chunkedLoading: true,
    disableClusteringAtZoom: SELECT_ZOOM,
    maxClusterRadius: 50,
    showCoverageOnHover: false,
    iconCreateFunction: clusterIcon,
  });
  map.addLayer(cluster);
  trail = L.polyline([], { className: 'dt-trail', color: '#2563eb', weight: 3, opacity: 0.75, interactive: false }).addTo(map);
  // Dragging the map means the user wants to look elsewhere: stop following.
  map.on('dragstart', () => following && setFollow(null));
}

/** onChanged applies store changes to markers, the list and the popup. */
function onChanged(ids, structural) {
  if (!list) return;
  list.update(ids, structural);
  if (!map) return;
  for (const id of ids) syncMarker(id);
  if (!fitted && visible) fitToDevices();
  if (following && ids.has(following)) keepFollowing();
}

function syncMarker(id) {
  const d = getDevice(id);
  let m = markers.get(id);
  if (!d || !d.loc) {
    if (m) {
      cluster.removeLayer(m.marker);
      markers.delete(id);
    }
    return;
  }
  if (!m) m = addMarker(d);
  const onlineChanged = m.marker.options.dtOnline !== d.online;
  m.marker.options.dtOnline = d.online;
  patchMarkerElement(m.node, d, id === selected);
  const ll = m.marker.getLatLng();
  if (ll.lat !== d.loc.lat || ll.lng !== d.loc.lng) moveMarker(m.marker, d.loc);
  else if (onlineChanged) cluster.refreshClusters(m.marker);
  const p = popups.get(id);
  if (p && m.marker.isPopupOpen()) p.update(d, following === id);
}

function addMarker(d) {
  const node = markerElement(d);
  const icon = L.divIcon({ html: node, className: 'dt-marker-icon', iconSize: [22, 22], iconAnchor: [11, 11], popupAnchor: [0, -12] });
  const marker = L.marker([d.loc.lat, d.loc.lng], { icon, keyboard: false, dtOnline: d.online });
  // The popup is a DOM element built (once) on first open and refreshed on
  // every open; Leaflet calls the function when it opens.
  marker.bindPopup(() => popupFor(d.id), { className: 'dt-popup', minWidth: 220, maxWidth: 320 });
  marker.on('click', () => select(d.id));
  const m = { marker, node };
  markers.set(d.id, m);
  cluster.addLayer(marker);
  return m;
}

/**
 * moveMarker moves a marker through setLatLng: the cluster group listens to
 * its markers' "move" and re-files them, so clusters update. An open popup
 * is re-opened by the group; auto-pan is held off so that a moving device
 * does not drag the map back while the user looks elsewhere.
 */
function moveMarker(marker, loc) {
  const popup = marker.getPopup();
  const autoPan = popup.options.autoPan;
  popup.options.autoPan = false;
  marker.setLatLng([loc.lat, loc.lng]);
  popup.options.autoPan = autoPan;
}

function popupFor(id) {
  let p = popups.get(id);
  if (!p) {
    p = new Popup(id, { onFollow: (devId) => setFollow(following === devId ? null : devId) });
    popups.set(id, p);
  }
  const d = getDevice(id);
  if (d) p.update(d, following === id);
  return p.root;
}

/** fitToDevices shows every positioned device, once, on the first load. */
function fitToDevices() {
  const points = allDevices().filter((d) => d.loc).map((d) => [d.loc.lat, d.loc.lng]);
  const b = boundsOf(points);
  if (!b) return;
  fitted = true;
  map.fitBounds(b, { padding: [40, 40], maxZoom: 15 });
}

/** select marks a device as selected and loads its recent trail. */
function select(id) {
  if (selected === id) return;
  const prev = selected;
  selected = id;
  for (const d of [prev, id]) {
    const m = d && markers.get(d);
    if (m) patchMarkerElement(m.node, getDevice(d), d === id);
  }
  list.setSelected(id);
  loadTrail(id);
}

/** selectAndShow flies to a device (unclustered) and opens its popup. */
function selectAndShow(id) {
  select(id);
  const d = getDevice(id);
  const m = markers.get(id);
  if (!map || !d || !d.loc || !m) {
    flashNote(d ? `${d.name || d.id} has not reported a position yet.` : '');
    return;
  }
  flashNote('');
  map.flyTo([d.loc.lat, d.loc.lng], Math.max(SELECT_ZOOM, map.getZoom()), { duration: 0.8 });
  map.once('moveend', () => {
    const cur = markers.get(id);
    if (cur && selected === id) cluster.zoomToShowLayer(cur.marker, () => cur.marker.openPopup());
  });
}

function flashNote(text) {
  const note = $('map-note');
  setText(note, text);
  note.hidden = !text;
}

/** setFollow keeps the map centred on a device (null stops). */
function setFollow(id) {
  following = id;
  const ind = $('follow-indicator');
  ind.hidden = !id;
  for (const [pid, p] of popups) {
    const d = getDevice(pid);
    if (d) p.update(d, following === pid);
  }
  if (!id) return;
  const d = getDevice(id);
  setText($('follow-name'), d ? d.name || d.id : id);
  select(id);
  if (d && d.loc) map.setView([d.loc.lat, d.loc.lng], Math.max(SELECT_ZOOM, map.getZoom()));
}

function keepFollowing() {
  const d = getDevice(following);
  if (!d) return setFollow(null);
  if (d.loc) map.panTo([d.loc.lat, d.loc.lng], { animate: true, duration: 0.25 });
}

/** loadTrail seeds the trail from the archive, then live positions extend it. */
async function loadTrail(id) {
  trailDevice = id;
  trailPoints = [];
  if (trail) trail.setLatLngs([]);
  if (!id) return;
  let items = [];
  try {
    const data = await api(`/api/v1/devices/${encodeURIComponent(id)}/locations`, { query: { limit: TRAIL_POINTS } });
    items = data.items || [];
  } catch (err) {
    console.warn('trail:', err.message);
  }
  if (trailDevice !== id) return; // another device was selected meanwhile
  const archived = items.map((l) => ({ lat: l.lat, lng: l.lng, ts: l.ts })).reverse();
  // Live points that came during the request are newer than the archive's.
  const lastTs = archived.length ? archived[archived.length - 1].ts : -Infinity;
  trailPoints = archived.concat(trailPoints.filter((p) => p.ts > lastTs)).slice(-TRAIL_POINTS);
  drawTrail();
}

function onLiveLocation(msg) {
  if (msg.device !== trailDevice || !msg.data) return;
  const { lat, lng } = msg.data;
  if (!Number.isFinite(lat) || !Number.isFinite(lng)) return;
  trailPoints.push({ lat, lng, ts: msg.ts || 0 });
  if (trailPoints.length > TRAIL_POINTS) trailPoints.splice(0, trailPoints.length - TRAIL_POINTS);
  if (!trailPending) {
    trailPending = true;
    frame(() => {
      trailPending = false;
      drawTrail();
    });
  }
}

function drawTrail() {
  if (trail) trail.setLatLngs(trailPoints.map((p) => [p.lat, p.lng]));
}

/** tick refreshes relative times once a second. */
function tick() {
  list.tick();
  for (const [id, p] of popups) {
    const m = markers.get(id);
    const d = getDevice(id);
    if (m && d && m.marker.isPopupOpen()) p.tick(d);
  }
}

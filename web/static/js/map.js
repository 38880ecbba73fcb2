// The map page (#/map): every visible device as a clustered marker that
// moves live, the sidebar list (its search and filters decide which markers
// show), selection with a recent trail, and follow. Zoomed in to LABEL_ZOOM
// or more, each standalone marker shows its device's name.

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
const LABEL_ZOOM = 15; // names on the markers from here on (clustered ones have none)

let me = null;
let map = null;
let cluster = null;
let list = null;
const markers = new Map(); // id -> { marker, node }
const popups = new Map(); // id -> Popup (DOM built once per device)
// One popup for the map, not bound to a marker: the cluster group removes
// and re-adds a marker whenever it moves, which would close and re-open (and
// fade) a bound popup on every live position.
let popup = null;
let popupDevice = null;
let selected = null;
let following = null;
let trail = null; // the selected device's recent positions
let trailDevice = null;
let trailPoints = []; // [{lat, lng, ts}] oldest first
let trailPending = false; // a redraw is scheduled
let visible = false;
let fitted = false; // the first view fits the devices, once
let ticker = null;

/** initMapPage wires the page once; the map itself is made when first shown. */
export function initMapPage() {
  list = new DeviceList({
    listEl: $('device-list'), searchEl: $('device-search'), countsEl: $('device-counts'),
    statusEl: $('device-status-filter'), groupEl: $('device-group-filter'),
    emptyEl: $('device-list-empty'), onSelect: (id) => selectAndShow(id),
    onFilter: () => {
      if (map) for (const d of allDevices()) syncMarker(d.id);
    },
  });
  $('follow-stop').addEventListener('click', () => setFollow(null));
  onDevicesChanged(onChanged);
  live.on('location', onLiveLocation);
  // For tests and debugging.
  window.devtrack = {
    markerLatLng(id) {
      const m = markers.get(id);
      if (!m) return null;
      const ll = m.marker.getLatLng();
      return [ll.lat, ll.lng];
    },
    deviceCount,
    zoom: () => (map ? map.getZoom() : null),
  };
}

export function showMapPage(route, ctx) {
  me = ctx.user;
  visible = true;
  if (!map) createMapOnce();
  map.invalidateSize();
  onChanged(new Set(allDevices().map((d) => d.id)), true);
  clearInterval(ticker);
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
  if (map) map.closePopup(popup);
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
  popup = L.popup({ className: 'dt-popup', minWidth: 220, maxWidth: 320, offset: [0, -4] });
  map.on('popupclose', (ev) => {
    if (ev.popup === popup) popupDevice = null;
  });
  // Dragging the map means the user wants to look elsewhere: stop following.
  map.on('dragstart', () => following && setFollow(null));
  // A popup whose device went into a cluster points at nothing: close it.
  map.on('zoomend', closeHiddenPopup);
  cluster.on('animationend', closeHiddenPopup);
  map.on('zoomend', showLabels);
  showLabels();
}

/** showLabels shows the names on the markers when zoomed in enough. */
function showLabels() {
  map.getContainer().classList.toggle('dt-labels', map.getZoom() >= LABEL_ZOOM);
}

/** onChanged applies store changes to the list, the markers and the popup. */
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
  if (!d || !d.loc || !list.shows(id)) {
    if (m) removeMarker(id, m);
    return;
  }
  if (!m) m = addMarker(d);
  const onlineChanged = m.marker.options.dtOnline !== d.online;
  m.marker.options.dtOnline = d.online; // read by clusterIcon
  patchMarkerElement(m.node, d, id === selected);
  const ll = m.marker.getLatLng();
  if (ll.lat !== d.loc.lat || ll.lng !== d.loc.lng) moveMarker(id, m.marker, d.loc);
  else if (onlineChanged) cluster.refreshClusters(m.marker);
  if (popupDevice === id) popups.get(id).update(d, following === id);
}

function addMarker(d) {
  const node = markerElement(d);
  const icon = L.divIcon({ html: node, className: 'dt-marker-icon', iconSize: [22, 22], iconAnchor: [11, 11] });
  const marker = L.marker([d.loc.lat, d.loc.lng], { icon, keyboard: false, dtOnline: d.online });
  marker.on('click', () => {
    select(d.id);
    openPopup(d.id);
  });
  const m = { marker, node };
  markers.set(d.id, m);
  cluster.addLayer(marker);
  return m;
}

function removeMarker(id, m) {
  cluster.removeLayer(m.marker);
  markers.delete(id);
  if (popupDevice === id) map.closePopup(popup);
}

/**
 * moveMarker moves a marker through setLatLng: the cluster group listens to
 * its markers' "move" and re-files them, so clusters update. The popup
 * follows without auto-pan, so that a moving device does not drag the map
 * back while the user looks elsewhere.
 */
function moveMarker(id, marker, loc) {
  marker.setLatLng([loc.lat, loc.lng]);
  if (popupDevice !== id) return;
  popup.options.autoPan = false;
  popup.setLatLng([loc.lat, loc.lng]);
  popup.options.autoPan = true;
}

/** openPopup shows the device's popup at its marker. */
function openPopup(id) {
  const m = markers.get(id);
  const d = getDevice(id);
  if (!m || !d) return;
  let p = popups.get(id);
  if (!p) {
    p = new Popup(id, { onFollow: (devId) => setFollow(following === devId ? null : devId) });
    popups.set(id, p);
  }
  p.update(d, following === id);
  popup.setLatLng(m.marker.getLatLng()).setContent(p.root);
  if (!map.hasLayer(popup)) popup.openOn(map);
  popupDevice = id; // after openOn: opening closes first, which clears it
}

function closeHiddenPopup() {
  if (!popupDevice) return;
  const m = markers.get(popupDevice);
  if (!m || cluster.getVisibleParent(m.marker) !== m.marker) map.closePopup(popup);
}

/** fitToDevices shows every positioned device, once, on the first load. */
function fitToDevices() {
  const b = boundsOf(allDevices().filter((d) => d.loc).map((d) => [d.loc.lat, d.loc.lng]));
  if (!b) return;
  fitted = true;
  map.fitBounds(b, { padding: [40, 40], maxZoom: 15 });
}

/** select marks a device as selected (list, marker) and loads its trail. */
function select(id) {
  if (selected === id) return;
  const prev = selected;
  selected = id;
  for (const d of [prev, id]) {
    const m = d && markers.get(d);
    const dev = d && getDevice(d);
    if (m && dev) patchMarkerElement(m.node, dev, d === id);
  }
  list.setSelected(id);
  loadTrail(id);
}

/** selectAndShow flies to a device (unclustered) and opens its popup. */
function selectAndShow(id) {
  select(id);
  const d = getDevice(id);
  if (!map || !d || !d.loc || !markers.has(id)) {
    flashNote(d && !d.loc ? `${d.name || d.id} has not reported a position yet.` : '');
    return;
  }
  flashNote('');
  map.flyTo([d.loc.lat, d.loc.lng], Math.max(SELECT_ZOOM, map.getZoom()), { duration: 0.8 });
  map.once('moveend', () => {
    const m = markers.get(id);
    if (m && selected === id && markers.get(id) === m) cluster.zoomToShowLayer(m.marker, () => openPopup(id));
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
  $('follow-indicator').hidden = !id;
  const shown = popupDevice && getDevice(popupDevice);
  if (shown) popups.get(popupDevice).update(shown, following === popupDevice);
  if (!id) return;
  const d = getDevice(id);
  setText($('follow-name'), d ? label(d) : id);
  $('follow-name').title = d ? label(d) : id;
  select(id);
  if (d && d.loc) map.setView([d.loc.lat, d.loc.lng], Math.max(SELECT_ZOOM, map.getZoom()));
}

// The follow bar's text: the name and the id, or the id alone (once).
const label = (d) => (d.name && d.name !== d.id ? `${d.name} (${d.id})` : d.id);

function keepFollowing() {
  const d = getDevice(following);
  if (!d) return setFollow(null);
  if (d.loc) map.panTo([d.loc.lat, d.loc.lng], { animate: true, duration: 0.25 });
}

/** loadTrail seeds the trail from the archive; live positions extend it. */
async function loadTrail(id) {
  trailDevice = id;
  trailPoints = [];
  drawTrail();
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
  if (trailPending) return;
  trailPending = true;
  frame(() => {
    trailPending = false;
    drawTrail();
  });
}

function drawTrail() {
  if (trail) trail.setLatLngs(trailPoints.map((p) => [p.lat, p.lng]));
}

/** tick refreshes relative times once a second. */
function tick() {
  list.tick();
  const d = popupDevice && getDevice(popupDevice);
  if (d) popups.get(popupDevice).tick(d);
}

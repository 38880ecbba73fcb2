// The geofence map of the alerts page: the geofences of the user's groups
// drawn on a map made by basemap.createMap (so tiles, their crs and the
// offline basemap work as on the other maps), and leaflet-geoman's toolbar
// (window.L.PM, vendor/leaflet-geoman.min.js) to draw circles, polygons and
// rectangles, and to edit, drag and remove them. A drawn shape gets a small
// form (name, group) and is saved with POST /api/v1/geofences; an edit is
// saved with PUT, a removal with DELETE.
//
// Coordinates: the API keeps WGS-84. On GCJ-02 or BD-09 tiles the map's CRS
// (basemap.tilesCRS, crs.js) converts every position for drawing and back
// when reading from the map, as on the map page. So shapes are made from
// the API's WGS-84 coordinates, and what geoman draws or edits reads back
// (getLatLngs, getLatLng) as WGS-84 too; the radius of a circle is metres
// either way.

import { api, errorText } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { createMap, WORLD } from './basemap.js';
import { allDevices, getDevice, onDevicesChanged } from './store.js';

const L = window.L;

const STYLE = { color: '#7c3aed', weight: 2, fillColor: '#8b5cf6', fillOpacity: 0.12 };
const DRAFT_STYLE = { color: '#ea580c', weight: 2, dashArray: '6 4', fillColor: '#fb923c', fillOpacity: 0.15 };
// An edit is saved this long after geoman's last pm:edit of the layer, so
// that a few quick vertex moves make one request.
const SAVE_DELAY_MS = 300;

let me = null;
let map = null;
let shapes = null; // L.FeatureGroup of the saved geofences
let dots = null; // L.LayerGroup of the devices' positions, to draw around
const dotOf = new Map(); // device id -> L.circleMarker
let draft = null; // a drawn layer not saved yet
let fitted = false;
let loaded = false; // the geofences were read once since the page showed
const byId = new Map(); // id -> { gf, layer, timer }
let changed = () => {};
let groups = [];

/** initGeofences wires the form; onChange(list) hears of every change of the list. */
export function initGeofences(onChange) {
  changed = onChange;
  onDevicesChanged((ids) => {
    if (!map || $('page-alerts').hidden) return;
    for (const id of ids) syncDot(id);
    if (!fitted && loaded) fitOnce();
  });
  $('geofence-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    saveDraft();
  });
  $('geofence-cancel').addEventListener('click', dropDraft);
}

/** showGeofences makes the map once, then (re)loads the geofences. */
export function showGeofences(user, userGroups) {
  me = user;
  groups = userGroups;
  fillGroups();
  if (!map) createMapOnce();
  map.invalidateSize();
  for (const d of allDevices()) syncDot(d.id);
  return loadGeofences();
}

/** setGeofenceGroups sets the groups a new geofence may be drawn in. */
export function setGeofenceGroups(userGroups) {
  groups = userGroups;
  fillGroups();
}

/** geofences is the list shown, ordered by name. */
export function geofences() {
  return [...byId.values()].map((e) => e.gf).sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
}

/** geofenceName names a geofence by id (its id when unknown or unnamed). */
export function geofenceName(id) {
  const e = byId.get(id);
  return (e && e.gf.name) || id;
}

/** resetGeofences forgets the previous user's geofences (logout). */
export function resetGeofences() {
  dropDraft();
  for (const e of byId.values()) clearTimeout(e.timer);
  byId.clear();
  if (shapes) shapes.clearLayers();
  if (dots) dots.clearLayers();
  dotOf.clear();
  $('geofence-list').replaceChildren();
  showAlert($('geofence-error'), '');
  fitted = false;
  loaded = false;
  if (map) map.setView(WORLD.center, WORLD.zoom);
}

function createMapOnce() {
  map = createMap($('geofence-map'), me);
  shapes = L.featureGroup().addTo(map);
  dots = L.layerGroup().addTo(map);
  // Only geofences are geoman's to edit, drag, snap to and remove: the
  // embedded basemap's land and borders (basemap.js, not interactive) are
  // not.
  map.on('layeradd', (ev) => {
    const o = ev.layer.options;
    if (o && (o.interactive === false || o.pane === 'dt-basemap')) {
      o.pmIgnore = true;
      o.snapIgnore = true;
    }
  });
  map.pm.addControls({
    position: 'topleft',
    drawMarker: false, drawCircleMarker: false, drawPolyline: false, drawText: false,
    drawPolygon: true, drawRectangle: true, drawCircle: true,
    editMode: true, dragMode: true, removalMode: true, cutPolygon: false, rotateMode: false,
  });
  map.pm.setGlobalOptions({ pathOptions: DRAFT_STYLE, allowSelfIntersection: false });
  map.on('pm:create', (ev) => startDraft(ev.layer));
  map.on('pm:remove', (ev) => onRemoved(ev.layer));
}

async function loadGeofences() {
  showAlert($('geofence-error'), '');
  let list;
  try {
    list = (await api('/api/v1/geofences')).items || [];
  } catch (err) {
    showAlert($('geofence-error'), `Cannot load the geofences: ${errorText(err)}`);
    return;
  }
  const seen = new Set();
  for (const gf of list) {
    seen.add(gf.id);
    put(gf);
  }
  for (const id of [...byId.keys()]) if (!seen.has(id)) forget(id);
  loaded = true;
  renderList();
  fitOnce();
}

/**
 * fitOnce shows, the first time there is something to show, the geofences,
 * or without any the positioned devices (so that a first geofence is drawn
 * where the fleet is).
 */
function fitOnce() {
  if (fitted || !map) return;
  if (shapes.getLayers().length) {
    fitted = true;
    map.fitBounds(shapes.getBounds(), { padding: [30, 30], maxZoom: 16 });
    return;
  }
  const pts = allDevices().filter((d) => d.loc).map((d) => [d.loc.lat, d.loc.lng]);
  if (!pts.length) return;
  fitted = true;
  map.fitBounds(L.latLngBounds(pts), { padding: [40, 40], maxZoom: 15 });
}

/** put draws a geofence as the API gave it, replacing its old layer. */
function put(gf) {
  const old = byId.get(gf.id);
  if (old) {
    clearTimeout(old.timer);
    shapes.removeLayer(old.layer);
  }
  const layer = layerOf(gf);
  layer.dtGeofence = gf.id;
  layer.bindTooltip(el('span', { text: gf.name || gf.id }), { sticky: true });
  layer.on('pm:edit', () => scheduleSave(gf.id));
  shapes.addLayer(layer);
  byId.set(gf.id, { gf, layer, timer: null });
}

function forget(id) {
  const e = byId.get(id);
  if (!e) return;
  clearTimeout(e.timer);
  shapes.removeLayer(e.layer);
  byId.delete(id);
}

/**
 * syncDot shows a device's last position as a dot, so that a geofence can
 * be drawn around where the devices go. The dots take no clicks (a click
 * goes to the geofence or the map under it) and geoman leaves them alone.
 */
function syncDot(id) {
  const d = getDevice(id);
  let dot = dotOf.get(id);
  if (!d || !d.loc) {
    if (dot) dots.removeLayer(dot);
    dotOf.delete(id);
    return;
  }
  if (!dot) {
    dot = L.circleMarker([d.loc.lat, d.loc.lng], {
      radius: 5, color: '#fff', weight: 2, fillColor: '#2563eb', fillOpacity: 1,
      interactive: false, pmIgnore: true, snapIgnore: true, className: 'geofence-device',
    });
    dotOf.set(id, dot);
    dots.addLayer(dot);
    return;
  }
  const ll = dot.getLatLng();
  if (ll.lat !== d.loc.lat || ll.lng !== d.loc.lng) dot.setLatLng([d.loc.lat, d.loc.lng]);
}

function layerOf(gf) {
  if (gf.kind === 'circle') return L.circle([gf.lat || 0, gf.lng || 0], { ...STYLE, radius: gf.radius_m });
  const ring = (gf.ring || []).map(([lng, lat]) => [lat, lng]);
  const [first, last] = [ring[0], ring[ring.length - 1]];
  if (ring.length > 1 && first[0] === last[0] && first[1] === last[1]) ring.pop();
  return L.polygon(ring, STYLE);
}

const round7 = (v) => Math.round(v * 1e7) / 1e7; // about a centimetre

/**
 * shapeOf is a drawn or edited layer as the API takes it, in WGS-84 (the
 * map's CRS already converted it back from the tiles' system). A shape
 * drawn on a copy of the world east or west of the first is moved back by
 * whole turns.
 */
function shapeOf(layer) {
  if (layer instanceof L.Circle) {
    const c = layer.getLatLng();
    const wrapped = c.wrap();
    return { kind: 'circle', lat: round7(wrapped.lat), lng: round7(wrapped.lng), radius_m: Math.round(layer.getRadius() * 10) / 10 };
  }
  let pts = layer.getLatLngs();
  while (Array.isArray(pts[0])) pts = pts[0]; // the outer ring
  const shift = pts.length ? pts[0].wrap().lng - pts[0].lng : 0;
  return { kind: 'polygon', ring: pts.map((p) => [round7(p.lng + shift), round7(p.lat)]) };
}

function startDraft(layer) {
  if (draft) map.removeLayer(draft);
  draft = layer;
  layer.setStyle(DRAFT_STYLE);
  showAlert($('geofence-form-error'), '');
  $('geofence-form').hidden = false;
  setText($('geofence-form-shape'), layer instanceof L.Circle ? 'New circle' : 'New polygon');
  $('geofence-name').value = '';
  $('geofence-name').focus();
}

function dropDraft() {
  if (draft && map) map.removeLayer(draft);
  draft = null;
  $('geofence-form').hidden = true;
}

async function saveDraft() {
  if (!draft) return;
  const name = $('geofence-name').value.trim();
  const group = $('geofence-group').value;
  if (!name) return showAlert($('geofence-form-error'), 'Give the geofence a name.');
  if (!group) return showAlert($('geofence-form-error'), 'Choose a group.');
  $('geofence-save').disabled = true;
  try {
    const gf = await api('/api/v1/geofences', { method: 'POST', body: { name, group, ...shapeOf(draft) } });
    dropDraft();
    put(gf);
    renderList();
    setStatus(`Saved ${gf.name}.`);
  } catch (err) {
    showAlert($('geofence-form-error'), errorText(err));
  } finally {
    $('geofence-save').disabled = false;
  }
}

function scheduleSave(id) {
  const e = byId.get(id);
  if (!e) return;
  clearTimeout(e.timer);
  e.timer = setTimeout(() => saveEdit(id), SAVE_DELAY_MS);
}

async function saveEdit(id) {
  const e = byId.get(id);
  if (!e) return;
  try {
    const gf = await api(`/api/v1/geofences/${encodeURIComponent(id)}`, {
      method: 'PUT', body: { name: e.gf.name, ...shapeOf(e.layer) },
    });
    e.gf = gf; // the layer already has the shape; redrawing would end its edit mode
    setStatus(`Saved ${gf.name || gf.id}.`);
    renderList();
  } catch (err) {
    showAlert($('geofence-error'), `Cannot save ${e.gf.name || id}: ${errorText(err)}`);
    loadGeofences(); // show what is stored
  }
}

/** onRemoved deletes a geofence removed with geoman's removal tool. */
async function onRemoved(layer) {
  if (layer === draft) return dropDraft();
  const id = layer.dtGeofence;
  if (id) await deleteGeofence(id);
}

async function deleteGeofence(id) {
  const e = byId.get(id);
  const name = (e && e.gf.name) || id;
  try {
    await api(`/api/v1/geofences/${encodeURIComponent(id)}`, { method: 'DELETE' });
    forget(id);
    setStatus(`Deleted ${name} and its rules.`);
  } catch (err) {
    showAlert($('geofence-error'), `Cannot delete ${name}: ${errorText(err)}`);
    if (e && !shapes.hasLayer(e.layer)) shapes.addLayer(e.layer);
  }
  renderList();
}

function renderList() {
  const list = geofences();
  $('geofence-list').replaceChildren(...list.map((gf) => el('li', { class: 'geofence-item', dataset: { id: gf.id } },
    el('span', { class: 'geofence-name', text: gf.name || gf.id }),
    el('span', { class: 'muted', text: ` ${gf.group} · ${gf.kind === 'circle' ? `circle, ${Math.round(gf.radius_m)} m` : `polygon, ${(gf.ring || []).length} points`}` }),
    el('span', { class: 'spacer' }),
    el('button', { type: 'button', class: 'btn btn-small', text: 'Show', onclick: () => zoomTo(gf.id) }),
    el('button', { type: 'button', class: 'btn btn-small btn-danger', text: 'Delete',
      onclick: () => confirm(`Delete the geofence ${gf.name || gf.id} and its rules?`) && deleteGeofence(gf.id) }))));
  $('geofence-empty').hidden = list.length > 0;
  changed(list);
}

function zoomTo(id) {
  const e = byId.get(id);
  if (e) map.fitBounds(e.layer.getBounds(), { padding: [30, 30], maxZoom: 17 });
}

function fillGroups() {
  const sel = $('geofence-group');
  const prev = sel.value;
  sel.replaceChildren(...groups.map((g) => el('option', { value: g, text: g })));
  if (groups.includes(prev)) sel.value = prev;
}

function setStatus(text) {
  showAlert($('geofence-error'), '');
  setText($('geofence-status'), text);
}

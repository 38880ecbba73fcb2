// The devices the user may see and their live state, shared by the pages.
// Loaded from GET /api/v1/devices, then kept current by the viewer socket.
// Changes are coalesced: listeners hear about them at most once per
// animation frame, with the set of device ids that changed.

import { api } from './api.js';
import { frame } from './dom.js';
import { live } from './live.js';
import { parseTime } from './format.js';

const REFRESH_MS = 30_000; // names, groups and new devices

const devices = new Map(); // id -> device record
const listeners = new Set();
let changed = new Set();
let reordered = false; // online state, names or membership changed
let scheduled = false;
let refreshTimer = null;
let unsubscribers = [];

/**
 * A device record:
 * { id, name, group, online, lastSeen (ms, 0 if never),
 *   loc: {lat, lng, speed, heading, accuracy, ts} | null }
 */
function blank(id) {
  return { id, name: '', group: '', online: false, lastSeen: 0, loc: null };
}

/** locationOf reads a location object (list, snapshot or live data). */
function locationOf(obj, ts) {
  if (!obj || !Number.isFinite(obj.lat) || !Number.isFinite(obj.lng)) return null;
  const num = (v) => (Number.isFinite(v) ? v : undefined);
  return {
    lat: obj.lat, lng: obj.lng, speed: num(obj.speed), heading: num(obj.heading),
    accuracy: num(obj.accuracy), ts: num(ts ?? obj.ts) ?? 0,
  };
}

function touch(id, structural = false) {
  changed.add(id);
  if (structural) reordered = true;
  if (scheduled) return;
  scheduled = true;
  frame(flush);
}

function flush() {
  scheduled = false;
  const ids = changed;
  const structural = reordered;
  changed = new Set();
  reordered = false;
  for (const fn of listeners) {
    try {
      fn(ids, structural);
    } catch (err) {
      console.error('devices listener:', err);
    }
  }
}

/** onDevicesChanged calls fn(ids: Set, structural: bool) after changes. */
export function onDevicesChanged(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export const getDevice = (id) => devices.get(id) || null;
export const allDevices = () => [...devices.values()];
export const deviceCount = () => devices.size;

/** loadDevices (re)reads the list; new ids are added to the live subscription. */
async function loadDevices() {
  const data = await api('/api/v1/devices');
  const seen = new Set();
  const added = [];
  for (const item of data.items || []) {
    seen.add(item.id);
    let d = devices.get(item.id);
    if (!d) {
      d = blank(item.id);
      devices.set(item.id, d);
      added.push(item.id);
    }
    const structural = d.name !== (item.name || '') || d.online !== !!item.online || d.group !== (item.group || '');
    d.name = item.name || '';
    d.group = item.group || '';
    d.online = !!item.online;
    d.lastSeen = Math.max(d.lastSeen, parseTime(item.last_seen));
    const loc = locationOf(item.location);
    if (loc && (!d.loc || loc.ts >= d.loc.ts)) d.loc = loc;
    touch(item.id, structural);
  }
  for (const id of devices.keys()) {
    if (!seen.has(id)) {
      devices.delete(id);
      touch(id, true);
    }
  }
  if (added.length) touch(added[0], true);
  return added;
}

function onSnapshot(msg) {
  let unknown = false;
  for (const s of msg.devices || []) {
    let d = devices.get(s.device);
    if (!d) {
      d = blank(s.device);
      devices.set(s.device, d);
      unknown = true;
    }
    const online = !!s.online;
    const structural = d.online !== online;
    d.online = online;
    d.lastSeen = Math.max(d.lastSeen, parseTime(s.last_seen));
    const loc = locationOf(s.location);
    if (loc && (!d.loc || loc.ts >= d.loc.ts)) d.loc = loc;
    touch(s.device, structural || unknown);
  }
  if (unknown) refreshSoon(); // fetch the names and groups of devices new to us
}

function onLocation(msg) {
  const d = devices.get(msg.device);
  if (!d) return refreshSoon();
  const loc = locationOf(msg.data, msg.ts);
  if (!loc) return;
  // Live messages can arrive out of order after a reconnect; keep the newest.
  if (!d.loc || loc.ts >= d.loc.ts) d.loc = loc;
  d.lastSeen = Math.max(d.lastSeen, msg.received_at || msg.ts || 0);
  touch(d.id);
}

function onLog(msg) {
  const d = devices.get(msg.device);
  if (!d) return;
  d.lastSeen = Math.max(d.lastSeen, msg.received_at || msg.ts || 0);
  touch(d.id);
}

function onPresence(msg) {
  const d = devices.get(msg.device);
  if (!d) return refreshSoon();
  if (d.online === !!msg.online) return;
  d.online = !!msg.online;
  if (msg.ts) d.lastSeen = Math.max(d.lastSeen, msg.ts);
  touch(d.id, true);
}

let refreshSoonTimer = null;
function refreshSoon() {
  if (refreshSoonTimer) return;
  refreshSoonTimer = setTimeout(() => {
    refreshSoonTimer = null;
    refresh();
  }, 2000);
}

async function refresh() {
  try {
    live.subscribe(await loadDevices());
  } catch (err) {
    if (err.status !== 401) console.warn('refresh devices:', err.message);
  }
}

/** startDevices loads the list and follows live updates until stopDevices. */
export async function startDevices() {
  stopDevices();
  unsubscribers = [
    live.on('snapshot', onSnapshot),
    live.on('location', onLocation),
    live.on('log', onLog),
    live.on('presence', onPresence),
  ];
  refreshTimer = setInterval(refresh, REFRESH_MS);
  await loadDevices();
}

/** stopDevices forgets every device (logout). */
export function stopDevices() {
  for (const off of unsubscribers) off();
  unsubscribers = [];
  clearInterval(refreshTimer);
  clearTimeout(refreshSoonTimer);
  refreshSoonTimer = null;
  for (const id of devices.keys()) touch(id, true);
  devices.clear();
}

// Device markers and their popups, built from DOM elements only: the divIcon
// and the popup get an element whose texts are set with textContent.

import { el, setText } from './dom.js';
import { fmtAgo, fmtDateTime, fmtSpeed } from './format.js';

const L = window.L;

/** markerElement is the visible part of a device marker. */
export function markerElement(d) {
  return el('div', { class: `dt-marker ${d.online ? 'online' : 'offline'}`, dataset: { device: d.id } },
    el('span', { class: 'dt-marker-dot' }),
    el('span', { class: 'dt-marker-label' }));
}

/** patchMarkerElement brings the element up to date with the device. */
export function patchMarkerElement(node, d, selected) {
  node.classList.toggle('online', d.online);
  node.classList.toggle('offline', !d.online);
  node.classList.toggle('selected', selected);
  const label = node.querySelector('.dt-marker-label');
  setText(label, d.name || d.id);
  const title = `${d.name || d.id} (${d.online ? 'online' : 'offline'})`;
  if (node.title !== title) node.title = title;
  // The dot points the way the device is heading, when it says so.
  const heading = d.loc && Number.isFinite(d.loc.heading) ? d.loc.heading : null;
  node.classList.toggle('has-heading', heading !== null);
  if (heading !== null) node.style.setProperty('--heading', `${Math.round(heading)}deg`);
}

/**
 * clusterIcon draws a cluster as a DOM element: the number of devices, green
 * when at least one of them is online.
 */
export function clusterIcon(cluster) {
  const children = cluster.getAllChildMarkers();
  const online = children.filter((m) => m.options.dtOnline).length;
  const n = children.length;
  const size = n < 10 ? 'small' : n < 100 ? 'medium' : 'large';
  const node = el('div', { class: `dt-cluster-inner ${online ? 'some-online' : 'all-offline'}` },
    el('span', { text: String(n) }));
  node.title = `${n} devices, ${online} online`;
  return L.divIcon({ html: node, className: `dt-cluster dt-cluster-${size}`, iconSize: L.point(40, 40) });
}

/** Popup holds the DOM of one device's popup, updated in place. */
export class Popup {
  constructor(id, { onFollow }) {
    this.id = id;
    this.name = el('div', { class: 'popup-name' });
    this.status = el('span', { class: 'popup-status' });
    this.ident = el('div', { class: 'popup-id' });
    this.group = el('div', { class: 'popup-group' });
    this.lastSeen = el('span', { class: 'popup-lastseen' });
    this.speed = el('span', { class: 'popup-speed' });
    this.speedRow = el('div', { class: 'popup-row' }, el('span', { class: 'popup-label', text: 'Speed' }), this.speed);
    this.follow = el('button', { type: 'button', class: 'popup-follow', onclick: () => onFollow(id) });
    this.root = el('div', { class: 'popup' },
      el('div', { class: 'popup-head' }, this.name, this.status),
      this.ident,
      this.group,
      el('div', { class: 'popup-row' }, el('span', { class: 'popup-label', text: 'Last seen' }), this.lastSeen),
      this.speedRow,
      el('div', { class: 'popup-actions' },
        el('a', { class: 'popup-link', href: `#/device/${encodeURIComponent(id)}`, text: 'Details, track & logs' }),
        this.follow));
  }

  /** update fills the popup from the device record. */
  update(d, following) {
    setText(this.name, d.name || d.id);
    setText(this.ident, d.id);
    this.ident.hidden = !d.name || d.name === d.id;
    setText(this.status, d.online ? 'online' : 'offline');
    this.status.className = `popup-status ${d.online ? 'online' : 'offline'}`;
    setText(this.group, d.group ? `Group ${d.group}` : 'No group');
    this.tick(d);
    const speed = d.loc ? d.loc.speed : undefined;
    this.speedRow.hidden = !Number.isFinite(speed);
    if (Number.isFinite(speed)) setText(this.speed, fmtSpeed(speed));
    setText(this.follow, following ? 'Unfollow' : 'Follow');
    this.follow.classList.toggle('active', following);
  }

  /** tick refreshes the relative time. */
  tick(d) {
    setText(this.lastSeen, d.lastSeen ? fmtAgo(d.lastSeen) : 'never');
    this.lastSeen.title = d.lastSeen ? fmtDateTime(d.lastSeen) : '';
  }
}

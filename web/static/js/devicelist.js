// The map page's sidebar: the device list (online first, then by name),
// its search box and counters. Items are created once per device and patched
// in place; the whole list is re-ordered only when the order can change.

import { el, setText } from './dom.js';
import { fmtAgo, fmtDateTime, fmtNumber } from './format.js';
import { allDevices, getDevice } from './store.js';

export class DeviceList {
  /** opts: listEl, searchEl, countsEl, emptyEl, onSelect(id). */
  constructor(opts) {
    Object.assign(this, opts);
    this.items = new Map(); // id -> { li, name, group, status, seen, haystack }
    this.selected = null;
    this.query = '';
    this.searchEl.addEventListener('input', () => this.setQuery(this.searchEl.value));
    this.listEl.addEventListener('click', (ev) => this.onClick(ev));
    this.listEl.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' || ev.key === ' ') {
        ev.preventDefault();
        this.onClick(ev);
      }
    });
  }

  onClick(ev) {
    const li = ev.target.closest('li.device-item');
    if (li) this.onSelect(li.dataset.device);
  }

  /** update patches the items of changed ids; structural re-sorts. */
  update(ids, structural) {
    for (const id of ids) {
      const d = getDevice(id);
      if (!d) this.remove(id);
      else this.patch(this.items.get(id) || this.create(d), d);
    }
    if (structural) this.sort();
    this.updateCounts();
  }

  create(d) {
    const item = {
      name: el('span', { class: 'device-name' }),
      ident: el('span', { class: 'device-id' }),
      group: el('span', { class: 'device-group' }),
      status: el('span', { class: 'device-status' }),
      seen: el('span', { class: 'device-lastseen' }),
    };
    item.li = el('li', { class: 'device-item', tabindex: '0', role: 'button', dataset: { device: d.id } },
      el('div', { class: 'device-line' }, item.name, item.status),
      el('div', { class: 'device-line device-sub' },
        el('span', { class: 'device-where' }, item.ident, item.group), item.seen));
    this.items.set(d.id, item);
    this.listEl.append(item.li);
    return item;
  }

  patch(item, d) {
    setText(item.name, d.name || d.id);
    item.name.title = d.name || d.id;
    // The id is worth showing where names repeat ("Truck", "simulated").
    setText(item.ident, d.name && d.name !== d.id ? d.id : '');
    setText(item.group, d.group || 'no group');
    item.group.classList.toggle('muted', !d.group);
    setText(item.status, d.online ? 'online' : 'offline');
    item.status.className = `device-status ${d.online ? 'online' : 'offline'}`;
    item.li.classList.toggle('online', d.online);
    item.li.classList.toggle('no-position', !d.loc);
    item.lastSeen = d.lastSeen;
    this.renderSeen(item);
    item.haystack = `${d.id}\n${d.name}\n${d.group}`.toLowerCase();
    item.li.hidden = !this.matches(item);
  }

  renderSeen(item, now = Date.now()) {
    setText(item.seen, item.lastSeen ? fmtAgo(item.lastSeen, now) : 'never seen');
    const title = item.lastSeen ? `Last seen ${fmtDateTime(item.lastSeen)}` : '';
    if (item.seen.title !== title) item.seen.title = title;
  }

  remove(id) {
    const item = this.items.get(id);
    if (!item) return;
    item.li.remove();
    this.items.delete(id);
  }

  /** sort puts online devices first, then orders by name (then id). */
  sort() {
    const order = allDevices().sort((a, b) =>
      (b.online - a.online) ||
      (a.name || a.id).localeCompare(b.name || b.id, undefined, { numeric: true, sensitivity: 'base' }) ||
      a.id.localeCompare(b.id));
    let prev = null;
    for (const d of order) {
      const li = this.items.get(d.id)?.li;
      if (!li) continue;
      // Move only what is out of place: appending every node would relayout all.
      const expected = prev ? prev.nextSibling : this.listEl.firstChild;
      if (li !== expected) this.listEl.insertBefore(li, expected);
      prev = li;
    }
  }

  matches(item) {
    return !this.query || item.haystack.includes(this.query);
  }

  setQuery(q) {
    this.query = q.trim().toLowerCase();
    for (const item of this.items.values()) item.li.hidden = !this.matches(item);
    this.updateCounts();
  }

  setSelected(id) {
    if (this.selected) this.items.get(this.selected)?.li.classList.remove('selected');
    this.selected = id;
    const item = id && this.items.get(id);
    if (item) {
      item.li.classList.add('selected');
      item.li.scrollIntoView({ block: 'nearest' });
    }
  }

  /** tick refreshes the relative "last seen" texts. */
  tick() {
    const now = Date.now();
    for (const item of this.items.values()) if (!item.li.hidden) this.renderSeen(item, now);
  }

  updateCounts() {
    let online = 0;
    let shown = 0;
    for (const item of this.items.values()) {
      if (item.li.classList.contains('online')) online++;
      if (!item.li.hidden) shown++;
    }
    const total = this.items.size;
    setText(this.countsEl, `${fmtNumber(online)} online / ${fmtNumber(total)} devices`);
    if (total === 0) {
      setText(this.emptyEl, 'No devices yet. Register one with "devtrack device add".');
    } else if (shown === 0) {
      setText(this.emptyEl, `No device matches "${this.searchEl.value.trim()}".`);
    }
    this.emptyEl.hidden = total > 0 && shown > 0;
  }

  clear() {
    for (const id of [...this.items.keys()]) this.remove(id);
    this.selected = null;
    this.updateCounts();
  }
}

// The map page's sidebar: the device list (online first, then by name),
// its search box, status and group filters, and counters. Items are created
// once per device and patched in place; the whole list is re-ordered only
// when the order can change. The filters decide what the map shows too:
// shows(id) answers for the markers, onFilter tells the map to re-check.

import { el, setText } from './dom.js';
import { fmtAgo, fmtDateTime, fmtNumber } from './format.js';
import { allDevices, getDevice } from './store.js';

// Values of the group filter's options: a group is "g:<name>", so no group
// name can be taken for "any" or "none".
const ANY_GROUP = '';
const NO_GROUP = 'none';
const groupValue = (g) => `g:${g}`;

export class DeviceList {
  /**
   * opts: listEl, searchEl, statusEl and groupEl (selects), countsEl,
   * emptyEl, onSelect(id), onFilter() (the filters changed).
   */
  constructor(opts) {
    Object.assign(this, opts);
    this.items = new Map(); // id -> { li, name, group, status, seen, haystack, online, groupName }
    this.selected = null;
    this.query = '';
    this.status = ''; // '', 'online' or 'offline'
    this.group = null; // null: any group; '' : no group; else the group
    this.groupsKey = '';
    this.searchEl.addEventListener('input', () => this.setQuery(this.searchEl.value));
    this.statusEl.addEventListener('change', () => {
      this.status = this.statusEl.value;
      this.refilter();
    });
    this.groupEl.addEventListener('change', () => {
      const v = this.groupEl.value;
      this.group = v === ANY_GROUP ? null : v === NO_GROUP ? '' : v.slice(2);
      this.refilter();
    });
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
    if (structural) {
      this.sort();
      this.updateGroups();
    }
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
    item.online = d.online;
    item.groupName = d.group || '';
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

  /** matches applies the search and both filters to an item. */
  matches(item) {
    if (this.query && !item.haystack.includes(this.query)) return false;
    if (this.status && item.online !== (this.status === 'online')) return false;
    if (this.group !== null && item.groupName !== this.group) return false;
    return true;
  }

  /** shows tells whether the filters let a device through (map markers). */
  shows(id) {
    const item = this.items.get(id);
    return !!item && this.matches(item);
  }

  setQuery(q) {
    this.query = q.trim().toLowerCase();
    this.refilter();
  }

  refilter() {
    for (const item of this.items.values()) item.li.hidden = !this.matches(item);
    this.updateCounts();
    if (this.onFilter) this.onFilter();
  }

  /**
   * updateGroups offers the groups of the devices the user sees (and "no
   * group" when some device has none), keeping the chosen one.
   */
  updateGroups() {
    const groups = new Set();
    let ungrouped = false;
    for (const item of this.items.values()) {
      if (item.groupName) groups.add(item.groupName);
      else ungrouped = true;
    }
    const sorted = [...groups].sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    const key = `${ungrouped}\n${sorted.join('\n')}`;
    if (key === this.groupsKey) return;
    this.groupsKey = key;
    const chosen = this.groupEl.value;
    this.groupEl.replaceChildren(
      el('option', { value: ANY_GROUP, text: 'All groups' }),
      ...sorted.map((g) => el('option', { value: groupValue(g), text: g })),
      ...(ungrouped ? [el('option', { value: NO_GROUP, text: 'No group' })] : []));
    const still = [...this.groupEl.options].some((o) => o.value === chosen);
    this.groupEl.value = still ? chosen : ANY_GROUP;
    if (!still) {
      this.group = null;
      this.refilter();
    }
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

  filtered() {
    return !!this.query || !!this.status || this.group !== null;
  }

  /** updateCounts counts what the filters let through ("of N" if filtered). */
  updateCounts() {
    let online = 0;
    let shown = 0;
    for (const item of this.items.values()) {
      if (item.li.hidden) continue;
      shown++;
      if (item.online) online++;
    }
    const total = this.items.size;
    const of = this.filtered() ? ` (of ${fmtNumber(total)})` : '';
    setText(this.countsEl, `${fmtNumber(online)} online / ${fmtNumber(shown)} device${shown === 1 ? '' : 's'}${of}`);
    if (total === 0) {
      setText(this.emptyEl, 'No devices yet. Register one with "devtrack device add".');
    } else if (shown === 0) {
      const q = this.searchEl.value.trim();
      setText(this.emptyEl, q ? `No device matches "${q}" with these filters.` : 'No device matches these filters.');
    }
    this.emptyEl.hidden = total > 0 && shown > 0;
  }

  clear() {
    for (const id of [...this.items.keys()]) this.remove(id);
    this.selected = null;
    this.updateGroups();
    this.updateCounts();
  }
}

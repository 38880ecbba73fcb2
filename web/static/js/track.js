// The device page's track: locations of a time range drawn on #device-map,
// with a slider and play button that move a marker along it in time order.

import { api, errorText } from './api.js';
import { $, setText, showAlert } from './dom.js';
import { createMap, boundsOf } from './basemap.js';
import { fmtDateTime, fmtNumber, fmtSpeed, fromLocalInput, toLocalInput } from './format.js';

const L = window.L;
const MAX_POINTS = 20_000;
const PAGE = 1000; // the API's largest page
const PLAY_SECONDS = 30; // a whole track plays in about this long
const PLAY_TICK_MS = 50;

export class Track {
  constructor() {
    this.map = null;
    this.deviceId = null;
    this.points = []; // oldest first
    this.index = 0;
    this.playTimer = null;
    this.loadSeq = 0; // guards against a slow load finishing after a newer one
    this.layers = null;
    $('track-load').addEventListener('click', () => this.load());
    $('track-slider').addEventListener('input', (ev) => {
      this.pause();
      this.seek(Number(ev.target.value));
    });
    $('track-play').addEventListener('click', () => (this.playTimer ? this.pause() : this.play()));
  }

  /** show prepares the track of a device; a new device resets the range. */
  show(me, deviceId) {
    if (!this.map) this.map = createMap($('device-map'), me);
    this.map.invalidateSize();
    if (this.deviceId === deviceId) return;
    this.deviceId = deviceId;
    const now = new Date();
    $('track-from').value = toLocalInput(new Date(now.getTime() - 3600_000));
    $('track-to').value = toLocalInput(new Date(now.getTime() + 60_000));
    this.load();
  }

  hide() {
    this.pause();
  }

  reset() {
    this.pause();
    this.deviceId = null;
    this.setPoints([]);
  }

  /** load fetches every location in the range, page by page (newest first). */
  async load() {
    const id = this.deviceId;
    const from = fromLocalInput($('track-from').value);
    const to = fromLocalInput($('track-to').value);
    if (from === null || to === null) return this.fail('Enter valid dates.');
    if (from && to && from > to) return this.fail('"From" is after "To".');
    showAlert($('track-error'), '');
    const seq = ++this.loadSeq;
    this.pause();
    $('track-load').disabled = true;
    setText($('track-count'), 'Loading…');
    const items = [];
    let cursor = '';
    let capped = false;
    try {
      do {
        const data = await api(`/api/v1/devices/${encodeURIComponent(id)}/locations`,
          { query: { from, to, limit: PAGE, cursor } });
        if (seq !== this.loadSeq) return;
        items.push(...(data.items || []));
        cursor = data.next_cursor || '';
        if (items.length >= MAX_POINTS) {
          capped = items.length > MAX_POINTS || cursor !== '';
          items.length = MAX_POINTS;
          break;
        }
        setText($('track-count'), `Loading… ${fmtNumber(items.length)} points`);
      } while (cursor);
    } catch (err) {
      if (seq === this.loadSeq) this.fail(errorText(err));
      return;
    } finally {
      if (seq === this.loadSeq) $('track-load').disabled = false;
    }
    this.setPoints(items.reverse());
    const n = `${fmtNumber(this.points.length)} point${this.points.length === 1 ? '' : 's'}`;
    setText($('track-count'), capped ? `${n} (the newest ${fmtNumber(MAX_POINTS)} of the range; narrow it to see all)` : n);
  }

  fail(message) {
    showAlert($('track-error'), message);
    setText($('track-count'), '');
    $('track-load').disabled = false;
  }

  /** setPoints draws the track and resets playback to its start. */
  setPoints(points) {
    this.points = points;
    if (this.layers) this.layers.remove();
    this.layers = null;
    const slider = $('track-slider');
    slider.max = String(Math.max(0, points.length - 1));
    slider.value = '0';
    slider.disabled = points.length < 2;
    $('track-play').disabled = points.length < 2;
    $('track-empty').hidden = points.length > 0 || !this.deviceId;
    if (!points.length) {
      setText($('track-time'), '');
      return;
    }
    const latlngs = points.map((p) => [p.lat, p.lng]);
    this.playhead = L.circleMarker(latlngs[0], { radius: 7, className: 'dt-playhead', color: '#fff', weight: 2, fillColor: '#2563eb', fillOpacity: 1 });
    this.layers = L.layerGroup([
      L.polyline(latlngs, { className: 'dt-track', color: '#2563eb', weight: 3, opacity: 0.8 }),
      L.circleMarker(latlngs[0], { radius: 5, color: '#16a34a', fillOpacity: 1, className: 'dt-track-start' }),
      L.circleMarker(latlngs[latlngs.length - 1], { radius: 5, color: '#dc2626', fillOpacity: 1, className: 'dt-track-end' }),
      this.playhead,
    ]).addTo(this.map);
    this.map.fitBounds(boundsOf(latlngs), { padding: [30, 30], maxZoom: 17 });
    this.seek(0);
  }

  /** seek moves the playhead to point i and shows its time and speed. */
  seek(i) {
    const p = this.points[i];
    if (!p) return;
    this.index = i;
    $('track-slider').value = String(i);
    this.playhead.setLatLng([p.lat, p.lng]);
    const speed = Number.isFinite(p.speed) ? ` · ${fmtSpeed(p.speed)}` : '';
    setText($('track-time'), `${fmtDateTime(p.ts)}${speed}`);
  }

  play() {
    if (this.points.length < 2) return;
    if (this.index >= this.points.length - 1) this.seek(0);
    const step = Math.max(1, Math.round(this.points.length / (PLAY_SECONDS * 1000 / PLAY_TICK_MS)));
    this.playTimer = setInterval(() => {
      const next = Math.min(this.points.length - 1, this.index + step);
      this.seek(next);
      if (next >= this.points.length - 1) this.pause();
    }, PLAY_TICK_MS);
    setText($('track-play'), 'Pause');
  }

  pause() {
    clearInterval(this.playTimer);
    this.playTimer = null;
    setText($('track-play'), 'Play');
  }
}

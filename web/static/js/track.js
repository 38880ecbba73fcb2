// The device page's track: locations of a time range drawn on #device-map,
// with a slider and play button that move a marker along it in time order,
// export links for the range (GPX, GeoJSON, CSV) and its trips and stops
// (GET /api/v1/devices/{id}/trips, thresholds in the README), stops marked
// on the map; a click on a row moves the playhead there. A legend says what
// the line and the markers mean. Playback runs in track time: at 1× the
// whole range plays in PLAY_SECONDS (gaps and stops take their share), and
// the speed select changes the pace while it plays.

import { api, errorText, queryString } from './api.js';
import { $, el, setText, showAlert } from './dom.js';
import { createMap, boundsOf } from './basemap.js';
import { dateInputsError, fmtDateTime, fmtNumber, fmtSpeed, fromLocalInput, toLocalInput } from './format.js';

const L = window.L;
const MAX_POINTS = 20_000;
const PAGE = 1000; // the API's largest page
const PLAY_SECONDS = 60; // a whole track plays in this long at 1×
const PLAY_TICK_MS = 50;
const SPEEDS = [1, 2, 5, 10, 50];

// The colours of the track's parts, shared by the map and the legend.
const COLOURS = { line: '#2563eb', start: '#16a34a', end: '#dc2626', playhead: '#2563eb', stop: '#7c3aed' };

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
    this.speed = 1;
    this.clock = 0; // track time of the playhead while playing (ms)
    this.tripLayer = null;
    this.buildPlaybackControls();
    this.buildTripsPanel();
  }

  /**
   * buildPlaybackControls adds the speed select to the playback bar and the
   * legend under it. A new speed applies at the next tick, from where the
   * playhead is.
   */
  buildPlaybackControls() {
    this.speedEl = el('select', { id: 'track-speed', 'aria-label': 'Playback speed',
      title: `1× plays the whole range in ${PLAY_SECONDS} s` },
    ...SPEEDS.map((n) => el('option', { value: String(n), text: `${n}×` })));
    this.speedEl.addEventListener('change', () => {
      this.speed = Number(this.speedEl.value) || 1;
    });
    $('track-play').after(this.speedEl);
    const item = (kind, text) => el('span', { class: 'legend-item' },
      el('span', { class: `legend-swatch legend-${kind}`, 'aria-hidden': 'true' }), text);
    $('track-slider').closest('.playback').after(el('div', { id: 'track-legend', class: 'track-legend', 'aria-label': 'Legend' },
      item('line', 'Track'),
      item('start', 'Start (oldest position)'),
      item('end', 'End (newest position)'),
      item('playhead', 'Playback position'),
      item('stop', 'Stop')));
  }

  /**
   * buildTripsPanel adds, below the playback bar, the export links and the
   * trips and stops list of the loaded range.
   */
  buildTripsPanel() {
    const link = (format, label) => el('a', { id: `track-export-${format}`, class: 'btn btn-small', href: '#', download: true, text: label });
    this.exportLinks = { gpx: link('gpx', 'GPX'), geojson: link('geojson', 'GeoJSON'), csv: link('csv', 'CSV') };
    this.tripsSummary = el('span', { id: 'trips-summary', class: 'muted' });
    this.tripsError = el('div', { id: 'trips-error', class: 'alert', role: 'alert', hidden: true });
    this.tripsBody = el('tbody', { id: 'trips-list' });
    $('track-slider').closest('.track-card').append(
      el('div', { class: 'toolbar track-export' },
        el('span', { class: 'muted', text: 'Export positions:' }),
        this.exportLinks.gpx, this.exportLinks.geojson, this.exportLinks.csv),
      el('h3', { class: 'trips-head', text: 'Trips and stops' }, ' ', this.tripsSummary),
      this.tripsError,
      el('div', { class: 'table-wrap trips-wrap' },
        el('table', { class: 'table trips-table' },
          el('thead', {}, el('tr', {},
            el('th', { text: '' }), el('th', { text: 'From' }), el('th', { text: 'To' }),
            el('th', { text: 'Duration' }), el('th', { text: 'Distance' }))),
          this.tripsBody)));
    this.setExportLinks(null);
  }

  /** setExportLinks points the export links at the range (id null: disabled). */
  setExportLinks(id, from, to) {
    for (const [format, a] of Object.entries(this.exportLinks)) {
      if (!id) {
        a.removeAttribute('href');
        a.setAttribute('aria-disabled', 'true');
        continue;
      }
      a.removeAttribute('aria-disabled');
      a.href = `/api/v1/devices/${encodeURIComponent(id)}/locations/export?${queryString({ format, from, to })}`;
    }
  }

  /** loadTrips lists the trips and stops of the range, oldest first. */
  async loadTrips(id, from, to, seq) {
    showAlert(this.tripsError, '');
    setText(this.tripsSummary, 'Loading…');
    this.tripsBody.replaceChildren();
    if (this.tripLayer) this.tripLayer.remove();
    this.tripLayer = null;
    let data;
    try {
      data = await api(`/api/v1/devices/${encodeURIComponent(id)}/trips`, { query: { from, to } });
    } catch (err) {
      if (seq === this.loadSeq) {
        setText(this.tripsSummary, '');
        showAlert(this.tripsError, errorText(err));
      }
      return;
    }
    if (seq !== this.loadSeq) return;
    const trips = (data.trips || []).map((t) => ({ ...t, kind: 'trip' }));
    const stops = (data.stops || []).map((s) => ({ ...s, kind: 'stop' }));
    const rows = [...trips, ...stops].sort((a, b) => a.start_ts - b.start_ts || (a.kind === 'stop' ? 1 : -1));
    const metres = trips.reduce((sum, t) => sum + t.distance_m, 0);
    const moving = trips.reduce((sum, t) => sum + t.duration_s, 0);
    setText(this.tripsSummary, `${plural(trips.length, 'trip')} · ${fmtDistance(metres)} · ${fmtDuration(moving)} moving · ${plural(stops.length, 'stop')}`);
    this.tripsBody.replaceChildren(...rows.map((r) => el('tr', {
      class: `trip-row trip-${r.kind}`,
      dataset: { start: String(r.start_ts) },
      title: 'Show on the track',
      onclick: () => this.seekTime(r.start_ts),
    },
    el('td', { class: 'trip-kind', text: r.kind === 'trip' ? 'Trip' : 'Stop' }),
    el('td', { class: 'log-ts', text: fmtDateTime(r.start_ts) }),
    el('td', { class: 'log-ts', text: fmtDateTime(r.end_ts) }),
    el('td', { text: fmtDuration(r.duration_s) }),
    el('td', { text: r.kind === 'trip' ? fmtDistance(r.distance_m) : '' }))));
    if (!rows.length) {
      this.tripsBody.append(el('tr', {}, el('td', { class: 'empty', colspan: '5', text: 'No trips or stops in this time range.' })));
    }
    this.tripLayer = L.layerGroup(stops.map((s) => L.circleMarker([s.lat, s.lng], {
      radius: 6, className: 'dt-stop', color: COLOURS.stop, weight: 2, fillColor: '#fff', fillOpacity: 1,
    }).bindTooltip(`Stop ${fmtDateTime(s.start_ts)}, ${fmtDuration(s.duration_s)}`))).addTo(this.map);
  }

  /** seekTime moves the playhead to the first point at or after ms. */
  seekTime(ms) {
    if (!this.points.length) return;
    this.pause();
    const i = this.points.findIndex((p) => p.ts >= ms);
    this.seek(i < 0 ? this.points.length - 1 : i);
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
    this.loadSeq++;
    this.setPoints([]);
    this.setExportLinks(null);
    this.tripsBody.replaceChildren();
    setText(this.tripsSummary, '');
    if (this.tripLayer) this.tripLayer.remove();
    this.tripLayer = null;
  }

  /** load fetches every location in the range, page by page (newest first). */
  async load() {
    const id = this.deviceId;
    const bad = dateInputsError({ From: $('track-from'), To: $('track-to') });
    if (bad) return this.fail(bad);
    const from = fromLocalInput($('track-from').value);
    const to = fromLocalInput($('track-to').value);
    if (from && to && from > to) return this.fail('"From" is after "To".');
    showAlert($('track-error'), '');
    const seq = ++this.loadSeq;
    this.pause();
    this.setExportLinks(id, from, to);
    this.loadTrips(id, from, to, seq);
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
    this.playhead = L.circleMarker(latlngs[0], { radius: 7, className: 'dt-playhead', color: '#fff', weight: 2, fillColor: COLOURS.playhead, fillOpacity: 1 });
    this.layers = L.layerGroup([
      L.polyline(latlngs, { className: 'dt-track', color: COLOURS.line, weight: 3, opacity: 0.8 }),
      L.circleMarker(latlngs[0], { radius: 5, color: COLOURS.start, fillOpacity: 1, className: 'dt-track-start' }),
      L.circleMarker(latlngs[latlngs.length - 1], { radius: 5, color: COLOURS.end, fillOpacity: 1, className: 'dt-track-end' }),
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

  /**
   * play moves the playhead through track time: each tick adds the real
   * time since the last one, times the speed and the range's pace, and
   * shows the last point at or before that time.
   */
  play() {
    if (this.points.length < 2) return;
    if (this.index >= this.points.length - 1) this.seek(0);
    const pts = this.points;
    const span = Math.max(1, pts[pts.length - 1].ts - pts[0].ts);
    this.clock = pts[this.index].ts;
    let last = performance.now();
    this.playTimer = setInterval(() => {
      const now = performance.now();
      this.clock += (now - last) * this.speed * span / (PLAY_SECONDS * 1000);
      last = now;
      let i = this.index;
      while (i < pts.length - 1 && pts[i + 1].ts <= this.clock) i++;
      if (i !== this.index) this.seek(i);
      if (i >= pts.length - 1) this.pause();
    }, PLAY_TICK_MS);
    setText($('track-play'), 'Pause');
  }

  pause() {
    clearInterval(this.playTimer);
    this.playTimer = null;
    setText($('track-play'), 'Play');
  }
}

const plural = (n, word) => `${fmtNumber(n)} ${word}${n === 1 ? '' : 's'}`;

/** fmtDistance is "850 m" or "12.3 km". */
function fmtDistance(m) {
  return m < 1000 ? `${Math.round(m)} m` : `${(m / 1000).toFixed(m < 100_000 ? 2 : 0)} km`;
}

/** fmtDuration is "45 s", "12 min" or "2 h 05 min". */
function fmtDuration(s) {
  if (s < 60) return `${Math.round(s)} s`;
  const min = Math.round(s / 60);
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}

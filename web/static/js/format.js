// Formatting of times, numbers and values for display, in the browser's
// locale and time zone.

const numberFmt = new Intl.NumberFormat();

/** fmtNumber formats an integer or decimal with locale grouping. */
export function fmtNumber(n) {
  return Number.isFinite(n) ? numberFmt.format(n) : '—';
}

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** fmtDateTime is local "YYYY-MM-DD HH:MM:SS" (with ".mmm" if ms). */
export function fmtDateTime(ms, withMillis = false) {
  if (!Number.isFinite(ms) || ms <= 0) return '—';
  const d = new Date(ms);
  const s = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMillis ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

/** fmtAgo is a short relative time: "12 s ago", "5 min ago", "3 h ago". */
export function fmtAgo(ms, now = Date.now()) {
  if (!Number.isFinite(ms) || ms <= 0) return 'never';
  const s = Math.max(0, Math.round((now - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

/** fmtSpeed turns metres per second into "12.3 km/h". */
export function fmtSpeed(mps) {
  return Number.isFinite(mps) ? `${(mps * 3.6).toFixed(1)} km/h` : '—';
}

/** toLocalInput is the value of a datetime-local input for a Date. */
export function toLocalInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * fromLocalInput turns a datetime-local value into an RFC 3339 string in
 * UTC: "" for an empty input, null for one that does not parse.
 */
export function fromLocalInput(value) {
  if (!value) return '';
  const d = new Date(value); // a datetime-local value parses as local time
  return Number.isNaN(d.getTime()) ? null : d.toISOString();
}

/** parseTime reads an RFC 3339 string or Unix ms as Unix ms (0 if none). */
export function parseTime(v) {
  if (typeof v === 'number') return v;
  if (!v) return 0;
  const t = Date.parse(v);
  return Number.isNaN(t) ? 0 : t;
}

/** fmtJSON shows any value as compact JSON text ("" for null/undefined). */
export function fmtJSON(v) {
  if (v === null || v === undefined) return '';
  try {
    return JSON.stringify(v);
  } catch {
    return String(v);
  }
}

/** truncate shortens s to n characters with an ellipsis. */
export function truncate(s, n) {
  const str = String(s ?? '');
  return str.length > n ? str.slice(0, n - 1) + '…' : str;
}

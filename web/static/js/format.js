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

// Date inputs are text inputs holding local "YYYY-MM-DD HH:MM" (24 h), the
// format of every time the UI shows, rather than datetime-local inputs,
// which show the browser locale's format (12 h with AM/PM in many).

/** DATE_INPUT_FORMAT is what a date input holds, for placeholders and errors. */
export const DATE_INPUT_FORMAT = 'YYYY-MM-DD HH:MM';

/** toLocalInput is the value of a date input for a Date: local "YYYY-MM-DD HH:MM". */
export function toLocalInput(d) {
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

const inputRE = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})$/;

/**
 * parseLocalInput reads a date input's "YYYY-MM-DD HH:MM" (24 h, local
 * time): {ms} for a time, {empty: true} for an empty input, or {error}
 * saying what is wrong.
 */
export function parseLocalInput(value) {
  const v = String(value ?? '').trim();
  if (!v) return { empty: true };
  const m = inputRE.exec(v);
  if (!m) return { error: `write it as ${DATE_INPUT_FORMAT}, 24 h (e.g. ${toLocalInput(new Date())})` };
  const [y, mo, d, h, mi] = m.slice(1).map(Number);
  if (mo < 1 || mo > 12) return { error: `month ${m[2]} does not exist` };
  if (d < 1 || d > new Date(y, mo, 0).getDate()) return { error: `${m[1]}-${m[2]} has no day ${m[3]}` };
  if (h > 23 || mi > 59) return { error: `${m[4]}:${m[5]} is not a time of day (00:00 to 23:59)` };
  const t = new Date(y, mo - 1, d, h, mi);
  if (t.getHours() !== h || t.getMinutes() !== mi) return { error: `${m[4]}:${m[5]} does not exist that day in your time zone (a clock change)` };
  return { ms: t.getTime() };
}

/**
 * fromLocalInput turns a date input's value into an RFC 3339 string in UTC:
 * "" for an empty input, null for one that does not parse.
 */
export function fromLocalInput(value) {
  const r = parseLocalInput(value);
  if (r.error) return null;
  return r.empty ? '' : new Date(r.ms).toISOString();
}

/**
 * dateInputsError checks date inputs ({label: input element}): each one
 * that does not parse is marked invalid, and the message names the first
 * ('From: write it as ...'); '' when all are valid or empty.
 */
export function dateInputsError(inputs) {
  let message = '';
  for (const [label, input] of Object.entries(inputs)) {
    const r = parseLocalInput(input.value);
    input.classList.toggle('invalid', !!r.error);
    input.setAttribute('aria-invalid', r.error ? 'true' : 'false');
    if (r.error && !message) message = `${label}: ${r.error}.`;
  }
  return message;
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

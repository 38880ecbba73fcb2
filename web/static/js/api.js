// Fetch wrapper for the query API: JSON in and out, the contract's error
// body ({"error":{"code","message"}}) turned into an ApiError, and any 401
// reported to one handler (the app goes back to the login form).

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // 0 when the server could not be reached
    this.code = code;
  }
}

let unauthorizedHandler = null;

/** onUnauthorized sets what happens when a call gets 401. */
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

/** queryString encodes params, leaving out empty values. */
export function queryString(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  return q.toString();
}

/**
 * api calls path and returns its JSON (null for an empty body).
 * opts: method, query (object), body (sent as JSON), quiet401 (do not call
 * the unauthorized handler, for the login form and the first /me).
 */
export async function api(path, opts = {}) {
  const { method = 'GET', query, body, quiet401 = false } = opts;
  const qs = queryString(query);
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(qs ? `${path}?${qs}` : path, init);
  } catch (err) {
    throw new ApiError(0, 'network', `Cannot reach the server (${err.message}).`);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      if (res.ok) throw new ApiError(res.status, 'bad_response', 'The server sent something that is not JSON.');
    }
  }
  if (!res.ok) {
    const e = (data && data.error) || {};
    const err = new ApiError(res.status, e.code || `http_${res.status}`,
      e.message || `${res.status} ${res.statusText || 'error'}`);
    if (res.status === 401 && !quiet401 && unauthorizedHandler) unauthorizedHandler(err);
    throw err;
  }
  return data;
}

/** errorText is what to tell the user about a failed call. */
export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  switch (err.status) {
    case 0: return err.message;
    case 401: return 'Your session has ended; please log in again.';
    case 403: return `Not allowed: ${err.message}`;
    case 404: return `Not found: ${err.message}`;
    case 503: return `The server is temporarily unavailable: ${err.message}`;
    default: return err.message;
  }
}

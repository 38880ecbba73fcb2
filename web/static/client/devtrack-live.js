// devtrack-live.js: the embeddable client of devtrack's viewer socket
// (/ws/live). A standalone ES module without dependencies or build step,
// served by every gateway at /client/devtrack-live.js and importable from a
// page of any origin; usage at /client/.
//
//   import { DevtrackLive } from 'https://gateway.example.com/client/devtrack-live.js';
//   const live = new DevtrackLive({ url: 'https://gateway.example.com', token });
//   live.on('location', (m) => console.log(m.device, m.data.lat, m.data.lng));
//   live.subscribe(['truck-1']);            // or live.subscribe({ all: true })
//
// It connects at once, reconnects with exponential backoff and full jitter
// whenever the socket ends, and after every (re)connect sends the
// subscription it remembers (subscribes and unsubscribes since it was made),
// so the page never has to. Events: open, close, snapshot, location, log,
// presence, command_result, error (error frames of the gateway, such as
// {code: "forbidden", devices: [...]}) and message (every message).

const BACKOFF_START_MS = 500;
const BACKOFF_FACTOR = 2;
const BACKOFF_CAP_MS = 30_000;
// A connection that stayed open this long resets the backoff: the next
// failure is a new incident.
const STABLE_MS = 5_000;
// A handshake that has not completed by then is abandoned and retried.
const CONNECT_TIMEOUT_MS = 10_000;
// Close code of a socket whose user was revoked or deleted: retrying with
// the same token cannot succeed, so the client stops.
const CLOSE_REVOKED = 4001;
// Most ids in one subscribe or unsubscribe frame, so that a frame stays well
// below the gateway's 64 KiB limit on viewer messages.
const IDS_PER_FRAME = 1000;

/** liveURL turns a gateway address (http(s)://host, ws(s)://host or a full /ws/live URL) into the socket URL. */
function liveURL(url, token) {
  const u = new URL(url, globalThis.location ? globalThis.location.href : undefined);
  if (u.protocol === 'http:') u.protocol = 'ws:';
  else if (u.protocol === 'https:') u.protocol = 'wss:';
  if (!u.pathname.endsWith('/ws/live')) u.pathname = u.pathname.replace(/\/+$/, '') + '/ws/live';
  // A browser's WebSocket cannot send Authorization: the token goes in the
  // query (the gateway never logs query strings).
  if (token) u.searchParams.set('token', token);
  return u.toString();
}

export class DevtrackLive {
  /**
   * @param {object} opts
   * @param {string} opts.url the gateway (https://host) or its /ws/live URL
   * @param {string} [opts.token] a user's API token; without one the browser's session cookie is used (same origin only)
   * @param {number} [opts.maxBackoffMs] the reconnect delay's ceiling (default 30 s)
   * @param {boolean} [opts.autoConnect] connect at once (default true); else call connect()
   */
  constructor({ url, token = '', maxBackoffMs = BACKOFF_CAP_MS, autoConnect = true, WebSocket: WS } = {}) {
    if (!url) throw new TypeError('DevtrackLive: url is required');
    this.url = liveURL(url, token);
    this.maxBackoffMs = maxBackoffMs;
    this.WS = WS || globalThis.WebSocket;
    this.listeners = new Map(); // type -> Set of functions
    this.all = false; // subscribed to every visible device
    this.devices = new Set(); // devices subscribed by name
    this.excluded = new Set(); // devices unsubscribed while all is on
    this.joined = new Set(); // devices the current socket watches (from its snapshots)
    this.ws = null;
    this.running = false;
    this.attempt = 0; // failures since the last stable connection
    this.retryTimer = null;
    this.state = 'closed'; // connecting | open | reconnecting | closed
    if (autoConnect) this.connect();
  }

  /** on registers fn for an event; it returns a function that removes it. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    const set = this.listeners.get(type);
    if (set) set.delete(fn);
  }

  emit(type, msg) {
    for (const fn of [...(this.listeners.get(type) || [])]) {
      try {
        fn(msg);
      } catch (err) {
        console.error(`devtrack-live ${type} listener:`, err); // one bad listener must not stop the others
      }
    }
  }

  /**
   * subscribe adds devices: an array of ids, or {all: true} for every device
   * the token's user may see, or {devices: [...]}. Their snapshot follows,
   * now if connected, else once connected, and again after every reconnect.
   */
  subscribe(what) {
    const { all, devices } = normalize(what);
    const fresh = devices.filter((d) => !this.devices.has(d) || this.excluded.has(d));
    for (const d of devices) {
      this.devices.add(d);
      this.excluded.delete(d);
    }
    if (all) {
      this.all = true;
      this.excluded.clear();
      this.send({ type: 'subscribe', all: true });
    }
    this.sendIds('subscribe', fresh);
  }

  /** unsubscribe removes devices (an array of ids); with all on, they stay excluded after reconnects. */
  unsubscribe(what) {
    const { all, devices } = normalize(what);
    if (all) {
      // Everything off: the gateway has no "unsubscribe all", so name
      // every device the socket may watch.
      const named = [...new Set([...this.devices, ...this.joined])];
      this.all = false;
      this.devices.clear();
      this.excluded.clear();
      this.joined.clear();
      this.sendIds('unsubscribe', named);
      return;
    }
    for (const d of devices) {
      this.devices.delete(d);
      this.joined.delete(d);
      if (this.all) this.excluded.add(d);
    }
    this.sendIds('unsubscribe', devices);
  }

  /** subscription is what the client resubscribes to after a reconnect. */
  get subscription() {
    return { all: this.all, devices: [...this.devices], excluded: [...this.excluded] };
  }

  /** connect opens the socket (constructor does, unless autoConnect is false). */
  connect() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.open();
  }

  /** close ends the socket for good: no reconnect. The subscription is kept; connect() starts again. */
  close() {
    this.running = false;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    this.ws = null;
    this.state = 'closed';
    if (ws) {
      ws.close(1000, 'closed by the page');
      this.emit('close', { code: 1000, reason: 'closed by the page', reconnectIn: null });
    }
  }

  /** send writes a message if the socket is open; false otherwise (the subscription is sent at the next open anyway). */
  send(msg) {
    if (!this.ws || this.ws.readyState !== 1 /* OPEN */) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** sendIds sends a subscribe or unsubscribe of ids, in frames of at most IDS_PER_FRAME. */
  sendIds(type, ids) {
    for (let i = 0; i < ids.length; i += IDS_PER_FRAME) {
      this.send({ type, devices: ids.slice(i, i + IDS_PER_FRAME) });
    }
  }

  open() {
    if (this.state !== 'reconnecting') this.state = 'connecting';
    let ws;
    try {
      ws = new this.WS(this.url);
    } catch (err) {
      this.emit('error', { code: 'connect_failed', message: String(err && err.message ? err.message : err) });
      this.scheduleReconnect({ code: 1006, reason: String(err) });
      return;
    }
    this.ws = ws;
    this.joined.clear();
    let openedAt = 0;
    const timeout = setTimeout(() => {
      if (!openedAt && this.ws === ws) ws.close();
    }, CONNECT_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(timeout);
      if (this.ws !== ws) return;
      openedAt = Date.now();
      this.state = 'open';
      this.resubscribe();
      this.emit('open', { url: this.url.replace(/([?&]token=)[^&]*/, '$1…') });
    };
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (!msg || typeof msg.type !== 'string') return;
      if (msg.type === 'snapshot' && Array.isArray(msg.devices)) {
        for (const d of msg.devices) if (d && d.device) this.joined.add(d.device);
      }
      this.emit('message', msg);
      this.emit(msg.type, msg);
    };
    ws.onclose = (ev) => {
      clearTimeout(timeout);
      if (this.ws !== ws) return; // replaced or closed by the page
      this.ws = null;
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this.attempt = 0;
      if (ev.code === CLOSE_REVOKED) {
        this.running = false;
        this.state = 'closed';
        this.emit('error', { code: 'revoked', message: ev.reason || 'credentials revoked' });
        this.emit('close', { code: ev.code, reason: ev.reason, reconnectIn: null });
        return;
      }
      this.scheduleReconnect({ code: ev.code, reason: ev.reason });
    };
    // onerror is always followed by onclose, which does the work.
  }

  /** resubscribe sends the remembered subscription on a fresh socket. */
  resubscribe() {
    if (this.all) this.send({ type: 'subscribe', all: true });
    this.sendIds('subscribe', [...this.devices]);
    if (this.all) this.sendIds('unsubscribe', [...this.excluded]);
  }

  scheduleReconnect(why) {
    if (!this.running) return;
    const ceiling = Math.min(this.maxBackoffMs, BACKOFF_START_MS * BACKOFF_FACTOR ** this.attempt);
    const delay = Math.round(Math.random() * ceiling); // full jitter: a restarted gateway is not hit all at once
    this.attempt++;
    this.state = 'reconnecting';
    this.emit('close', { ...why, reconnectIn: delay });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.running) this.open();
    }, delay);
  }
}

/** normalize reads subscribe's argument: ids, {all}, {devices}, or one id. */
function normalize(what) {
  if (Array.isArray(what)) return { all: false, devices: clean(what) };
  if (typeof what === 'string') return { all: false, devices: clean([what]) };
  if (what && typeof what === 'object') return { all: what.all === true, devices: clean(what.devices || []) };
  throw new TypeError('DevtrackLive: subscribe wants an array of device ids or {all: true}');
}

function clean(ids) {
  return [...new Set(ids.map((d) => String(d).trim()).filter(Boolean))];
}

export default DevtrackLive;

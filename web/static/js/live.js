// The viewer socket (/ws/live): one shared connection for the whole page,
// authenticated by the session cookie. It subscribes to every visible device,
// dispatches messages by type to listeners, and reconnects by itself with
// exponential backoff and full jitter, showing its state in #live-status.

import { api } from './api.js';
import { $ } from './dom.js';

const BACKOFF_START_MS = 500;
const BACKOFF_FACTOR = 2;
const BACKOFF_CAP_MS = 10_000;
// A connection that stayed open this long resets the backoff: the next
// failure is a new incident, not the continuation of the last one.
const STABLE_MS = 5_000;

class LiveClient {
  constructor() {
    this.listeners = new Map(); // type -> Set of functions
    this.ws = null;
    this.running = false;
    this.attempt = 0; // failures since the last stable connection
    this.everLive = false;
    this.retryTimer = null;
    this.countdownTimer = null;
  }

  /** on registers fn for messages of a type ("location", "log", ...; "open"). Returns an unsubscribe function. */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return () => this.listeners.get(type).delete(fn);
  }

  emit(type, msg) {
    for (const fn of this.listeners.get(type) || []) {
      try {
        fn(msg);
      } catch (err) {
        console.error(`live ${type} listener:`, err); // one bad listener must not stop the others
      }
    }
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    this.everLive = false;
    this.connect();
  }

  stop() {
    this.running = false;
    this.clearTimers();
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close(1000, 'logged out');
    this.setState('off', 'Offline');
  }

  /** send writes a message if the socket is open; false otherwise. */
  send(msg) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(msg));
    return true;
  }

  /** subscribe adds devices (ids) to the subscription; their snapshot follows. */
  subscribe(devices) {
    if (devices.length) this.send({ type: 'subscribe', devices });
  }

  connect() {
    this.clearTimers();
    if (this.everLive) this.setState('reconnecting', 'Reconnecting…');
    else this.setState('connecting', 'Connecting…');
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    let ws;
    try {
      ws = new WebSocket(`${scheme}${location.host}/ws/live`);
    } catch (err) {
      console.error('live socket:', err);
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    let openedAt = 0;
    ws.onopen = () => {
      openedAt = Date.now();
      this.everLive = true;
      this.setState('live', 'Live');
      this.send({ type: 'subscribe', all: true });
      this.emit('open', {});
    };
    ws.onmessage = (ev) => this.dispatch(ev.data);
    ws.onclose = (ev) => {
      if (this.ws !== ws) return; // replaced or stopped
      this.ws = null;
      if (!this.running) return;
      if (openedAt && Date.now() - openedAt >= STABLE_MS) this.attempt = 0;
      this.emit('close', { code: ev.code });
      // A handshake refused outright may mean the session has ended; /me
      // tells, and a 401 there takes the app back to the login form.
      if (!openedAt) api('/api/v1/me').catch(() => {});
      this.scheduleReconnect();
    };
    // onerror is always followed by onclose, which does the work.
  }

  dispatch(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    if (msg && typeof msg.type === 'string') this.emit(msg.type, msg);
  }

  scheduleReconnect() {
    if (!this.running) return;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * BACKOFF_FACTOR ** this.attempt);
    const delay = Math.random() * ceiling; // full jitter
    this.attempt++;
    const at = Date.now() + delay;
    this.retryTimer = setTimeout(() => this.connect(), delay);
    const tick = () => {
      const secs = Math.ceil((at - Date.now()) / 1000);
      this.setState('reconnecting', secs >= 1 ? `Reconnecting in ${secs} s…` : 'Reconnecting…');
    };
    tick();
    this.countdownTimer = setInterval(tick, 250);
  }

  clearTimers() {
    clearTimeout(this.retryTimer);
    clearInterval(this.countdownTimer);
    this.retryTimer = this.countdownTimer = null;
  }

  setState(state, text) {
    const node = $('live-status');
    if (!node) return;
    if (node.dataset.state !== state) node.dataset.state = state;
    const label = node.querySelector('.live-text') || node;
    if (label.textContent !== text) label.textContent = text;
    node.title = state === 'live' ? 'Receiving live updates' : 'Live updates are paused; the page reconnects by itself';
  }
}

/** live is the page's one viewer socket. */
export const live = new LiveClient();

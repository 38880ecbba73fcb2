// Unit test of the embeddable client (static/client/devtrack-live.js) in
// node, without a browser: a fake WebSocket and fake timers check what it
// sends after each (re)connect, its backoff and when it stops. Run by
// TestLiveClientModule (cmd/devtrack/browser_test.go); exits 1 on failure.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';

const timers = [];
globalThis.setTimeout = (fn, ms) => { const t = { fn, ms, done: false }; timers.push(t); return t; };
globalThis.clearTimeout = (t) => { if (t) t.done = true; };
// fire runs the pending timers whose delay is not the connect timeout.
function fireRetry() {
  const t = timers.find((x) => !x.done && x.ms !== 10_000);
  assert.ok(t, 'a reconnect is scheduled');
  t.done = true;
  t.fn();
  return t.ms;
}

const sockets = [];
class FakeWS {
  constructor(url) { this.url = url; this.readyState = 0; this.sent = []; sockets.push(this); }
  send(s) { this.sent.push(JSON.parse(s)); }
  close(code = 1005) { this.readyState = 3; this.onclose && this.onclose({ code }); }
  // test side
  open() { this.readyState = 1; this.onopen(); }
  drop(code = 1006) { this.readyState = 3; this.onclose({ code, reason: '' }); }
  recv(msg) { this.onmessage({ data: JSON.stringify(msg) }); }
}

// As a data: URL, so that every node takes it as the ES module it is
// (package.json has no "type", and web/ is not an npm module).
const src = readFileSync(new URL('../static/client/devtrack-live.js', import.meta.url));
const { DevtrackLive } = await import('data:text/javascript;base64,' + src.toString('base64'));
Math.random = () => 1; // the top of each jitter range

const live = new DevtrackLive({ url: 'https://gw.example:8443/', token: 'dtu_x', WebSocket: FakeWS });
assert.equal(sockets[0].url, 'wss://gw.example:8443/ws/live?token=dtu_x');
const got = { open: 0, close: [], location: [], error: [] };
live.on('open', () => got.open++);
live.on('close', (m) => got.close.push(m));
live.on('location', (m) => got.location.push(m.device));
live.on('error', (m) => got.error.push(m.code));
live.on('location', () => { throw new Error('a bad listener'); }); // must not stop the others
const quiet = console.error;
console.error = () => {};

// Subscribed before the socket is open: sent at the open.
live.subscribe(['d1', 'd2', 'd1']);
sockets[0].open();
assert.deepEqual(sockets[0].sent, [{ type: 'subscribe', devices: ['d1', 'd2'] }]);
sockets[0].recv({ type: 'location', device: 'd1', data: { lat: 1, lng: 2 } });
assert.deepEqual(got.location, ['d1']);
live.subscribe(['d2', 'd3']);
live.unsubscribe(['d1']);
assert.deepEqual(sockets[0].sent.slice(1), [{ type: 'subscribe', devices: ['d3'] }, { type: 'unsubscribe', devices: ['d1'] }]);

// Dropped: reconnects with a growing, capped delay; resubscribes what it remembers.
const delays = [];
sockets[0].drop();
for (let i = 0; i < 8; i++) {
  delays.push(fireRetry());
  sockets.at(-1).drop();
}
assert.deepEqual(delays, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
assert.equal(got.close.at(-1).reconnectIn, 30000);
fireRetry();
sockets.at(-1).open();
assert.deepEqual(sockets.at(-1).sent, [{ type: 'subscribe', devices: ['d2', 'd3'] }]);
assert.equal(got.open, 2);

// all, then an unsubscribe: after a reconnect, all and the exclusion again.
live.subscribe({ all: true });
live.unsubscribe(['d9']);
sockets.at(-1).drop();
fireRetry();
sockets.at(-1).open();
assert.deepEqual(sockets.at(-1).sent, [
  { type: 'subscribe', all: true },
  { type: 'subscribe', devices: ['d2', 'd3'] },
  { type: 'unsubscribe', devices: ['d9'] },
]);
assert.deepEqual(live.subscription, { all: true, devices: ['d2', 'd3'], excluded: ['d9'] });

// Unsubscribe all: every device the socket watches is named, those joined
// by all (from the snapshot) too; nothing is resent after a reconnect.
sockets.at(-1).recv({ type: 'snapshot', devices: [{ device: 'd2' }, { device: 'd3' }, { device: 'd4' }] });
sockets.at(-1).sent = [];
live.unsubscribe({ all: true });
assert.deepEqual(sockets.at(-1).sent, [{ type: 'unsubscribe', devices: ['d2', 'd3', 'd4'] }]);
sockets.at(-1).drop();
fireRetry();
sockets.at(-1).open();
assert.deepEqual(sockets.at(-1).sent, []);

// A large subscription goes in frames of at most 1000 ids.
const many = Array.from({ length: 2500 }, (_, i) => `m${i}`);
live.subscribe(many);
assert.deepEqual(sockets.at(-1).sent.map((m) => m.devices.length), [1000, 1000, 500]);

// Revoked (4001): stops for good.
const before = sockets.length;
sockets.at(-1).drop(4001);
assert.deepEqual(got.error, ['revoked']);
assert.equal(got.close.at(-1).reconnectIn, null);
assert.equal(live.state, 'closed');
assert.ok(!timers.some((t) => !t.done && t.ms !== 10_000), 'no reconnect after 4001');

// close() by the page: no reconnect either.
const live2 = new DevtrackLive({ url: 'http://gw.example', WebSocket: FakeWS });
assert.equal(sockets.at(-1).url, 'ws://gw.example/ws/live');
sockets.at(-1).open();
live2.close();
assert.equal(sockets.length, before + 1);
assert.ok(!timers.some((t) => !t.done && t.ms !== 10_000), 'no reconnect after close()');
console.error = quiet;
console.log('PASS');

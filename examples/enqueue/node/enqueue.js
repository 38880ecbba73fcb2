// Push devtrack queue items from Node.js with ioredis.
//
// Each run pushes COUNT items for DEVICE, a log and a location in turn, with
// ids node-1, node-2, ...: rerunning it is safe, since devtrack stores each
// (device, id) once.
//
//   npm ci && REDIS_HOST=127.0.0.1 REDIS_PORT=6379 DEVICE=truck-1 COUNT=10 node enqueue.js
'use strict';

const Redis = require('ioredis');

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
const prefix = process.env.DEVTRACK_PREFIX || 'devtrack';
const device = process.env.DEVICE || 'truck-1';
const count = Number(process.env.COUNT || 10);

async function main() {
  const redis = new Redis({ host, port, connectTimeout: 2000, maxRetriesPerRequest: 1 });
  // The braces are part of the key: {devtrack}:queue, not devtrack:queue.
  const key = `{${prefix}}:queue`;
  const items = [];
  for (let i = 1; i <= count; i++) {
    const now = Date.now();
    const item = { v: 1, device, id: `node-${i}`, ts: now, received_at: now };
    if (i % 2 === 1) {
      item.type = 'log';
      item.data = { level: 'error', message: `upload failed from node #${i}`, fields: { attempt: i } };
    } else {
      item.type = 'location';
      item.data = { lat: 31.2304, lng: 121.4737 + i / 10000, speed: 3.5 };
    }
    items.push(JSON.stringify(item));
  }
  await redis.lpush(key, ...items);
  console.log(`pushed ${items.length} items onto ${key}`);
  redis.disconnect();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

"""Push devtrack queue items from Python with redis-py.

Each run pushes COUNT items for DEVICE, a log and a location in turn, with ids
py-1, py-2, ...: rerunning it is safe, since devtrack stores each (device, id)
once.

    REDIS_HOST=127.0.0.1 REDIS_PORT=6379 DEVICE=truck-1 COUNT=10 python3 enqueue.py
"""

import json
import os
import time

import redis

host = os.environ.get("REDIS_HOST", "127.0.0.1")
port = int(os.environ.get("REDIS_PORT", "6379"))
prefix = os.environ.get("DEVTRACK_PREFIX", "devtrack")
device = os.environ.get("DEVICE", "truck-1")
count = int(os.environ.get("COUNT", "10"))

r = redis.Redis(host=host, port=port, socket_timeout=2)
# The braces are part of the key: {devtrack}:queue, not devtrack:queue.
key = "{%s}:queue" % prefix

items = []
for i in range(1, count + 1):
    now = int(time.time() * 1000)
    item = {"v": 1, "device": device, "id": "py-%d" % i, "ts": now, "received_at": now}
    if i % 2 == 1:
        item["type"] = "log"
        item["data"] = {"level": "warn", "message": "door opened from python #%d" % i, "fields": {"door": i}}
    else:
        item["type"] = "location"
        item["data"] = {"lat": 31.2304, "lng": 121.4737 + i / 10000, "crs": "wgs84"}
    items.append(json.dumps(item, ensure_ascii=False, separators=(",", ":")))

r.lpush(key, *items)
print("pushed %d items onto %s" % (len(items), key))

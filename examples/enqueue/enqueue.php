<?php
// Push devtrack queue items from PHP with phpredis (the Redis extension,
// Debian's php-redis). Each run pushes COUNT items for DEVICE, a log and a
// location in turn, with ids php-1, php-2, ...: rerunning it is safe, since
// devtrack stores each (device, id) once.
//
//   REDIS_HOST=127.0.0.1 REDIS_PORT=6379 DEVICE=truck-1 COUNT=10 php enqueue.php

$host = getenv('REDIS_HOST') ?: '127.0.0.1';
$port = (int) (getenv('REDIS_PORT') ?: 6379);
$prefix = getenv('DEVTRACK_PREFIX') ?: 'devtrack';
$device = getenv('DEVICE') ?: 'truck-1';
$count = (int) (getenv('COUNT') ?: 10);

$redis = new Redis();
$redis->connect($host, $port, 2.0);
// The braces are part of the key: {devtrack}:queue, not devtrack:queue.
$key = '{' . $prefix . '}:queue';

$items = [];
for ($i = 1; $i <= $count; $i++) {
    $now = (int) floor(microtime(true) * 1000);
    $item = [
        'v' => 1, 'device' => $device, 'id' => 'php-' . $i,
        'ts' => $now, 'received_at' => $now,
    ];
    if ($i % 2 === 1) {
        $item['type'] = 'log';
        // fields must be a JSON object: an empty PHP array would encode as [].
        $item['data'] = ['level' => 'info', 'message' => 'parcel scanned from php #' . $i,
            'fields' => ['parcel' => 'P-' . $i]];
    } else {
        $item['type'] = 'location';
        $item['data'] = ['lat' => 31.2304, 'lng' => 121.4737 + $i / 10000, 'accuracy' => 8.5];
    }
    $items[] = json_encode($item, JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
}
// phpredis takes the values as arguments: lPush($key, ...$values). An array
// as one argument would push the string "Array" (that is Predis's form).
$redis->lPush($key, ...$items);
printf("pushed %d items onto %s\n", count($items), $key);

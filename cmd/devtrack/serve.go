package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/worker"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/spf13/cobra"
	"go.uber.org/zap"
)

func newGatewayCmd(g *globals) *cobra.Command {
	var cfg wsgateway.Config
	var maxFrame int
	var trustedProxies, corsOrigins string
	var legacy legacyFlags
	var pprofAddr string
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve devices (WebSocket, HTTP ingest), the query API, /metrics, /healthz and /readyz",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck
			ctx := cmd.Context()
			cfg.Limits.MaxFrameBytes = maxFrame
			// 0 turns the cache off on the command line; in Config, 0 is
			// the default and a negative value turns it off.
			if cfg.TokenCacheSize == 0 || cfg.TokenCacheTTL == 0 {
				cfg.TokenCacheSize, cfg.TokenCacheTTL = -1, -1
			}
			if cfg.TrustedProxies, err = wsgateway.ParseTrustedProxies(trustedProxies); err != nil {
				return usagef("--trusted-proxies: %v", err)
			}
			if cfg.CORSOrigins, err = wsgateway.ParseCORSOrigins(corsOrigins); err != nil {
				return usagef("--cors-origins: %v", err)
			}
			if err := legacy.apply(&cfg.Legacy); err != nil {
				return err
			}
			_, stopPprof, err := servePprof(pprofAddr, log)
			if err != nil {
				return err
			}
			defer stopPprof()
			store, rdb, closeBoth, err := g.openStoreAndRedis(ctx, log)
			if err != nil {
				return err
			}
			defer closeBoth()
			cfg.StoreHealth = storeOutageCheck(rdb)
			gw, err := wsgateway.New(cfg, rdb, rdb, store, log)
			if err != nil {
				return usageError{err}
			}
			// Shutdown order (Serve): stop accepting, close device sockets
			// and their links, then the deferred Redis and store closes.
			return gw.Run(ctx, func(addr net.Addr) {
				notifyReady(ctx, log)
				log.Info("ready", zap.String("url", "http://"+addr.String()))
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Listen, "listen", ":8080", "address to serve on")
	f.StringVar(&cfg.ID, "id", "", "gateway instance id in device links (default host-pid)")
	f.IntVar(&maxFrame, "max-frame", 64<<10, "largest device frame in bytes; larger ones get too_large")
	f.Float64Var(&cfg.FrameRate, "device-rate", 200, "frames per second allowed per device connection")
	f.IntVar(&cfg.FrameBurst, "device-burst", 0, "burst of frames per device connection (default the larger of 2 x rate and 500, the largest batch; less than 500 is refused)")
	f.DurationVar(&cfg.UpdateInterval, "update-interval", 10*time.Second, "reporting interval advised to HTTP ingest clients")
	f.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", 15*time.Second, "life of the gateway heartbeat; links of a gateway silent this long are swept")
	f.DurationVar(&cfg.PingPeriod, "ping-period", 25*time.Second, "how often devices are pinged")
	f.DurationVar(&cfg.PongWait, "pong-wait", 60*time.Second, "a device silent this long is disconnected")
	f.DurationVar(&cfg.DeviceIdleTimeout, "device-idle-timeout", 0, "a device WebSocket that sends no frame for this long is closed (4002; answered pings do not count), so it shows offline; 0: never (--idle-timeout is for HTTP keep-alive connections)")
	f.IntVar(&cfg.MaxConns, "max-conns", 0, "open connections at most (default RLIMIT_NOFILE minus a reserve of a tenth, at least 64; -1: no cap)")
	f.IntVar(&cfg.MaxUnauthConns, "max-unauthenticated", 0, "connections not yet authenticated at most; beyond, one of the address holding the most is closed, its oldest idle or oldest (default min(1024, max-conns/2); -1: no cap)")
	f.IntVar(&cfg.MaxUnauthConnsPerAddr, "max-unauthenticated-per-address", 64, "connections not yet authenticated from one client address at most (-1: no cap)")
	f.DurationVar(&cfg.HeaderTimeout, "header-timeout", 10*time.Second, "time allowed to send a request's head")
	f.DurationVar(&cfg.BodyTimeout, "body-timeout", 10*time.Second, "time allowed to send a request's body")
	f.DurationVar(&cfg.IdleTimeout, "idle-timeout", time.Minute, "an idle keep-alive connection is closed after this long")
	f.StringVar(&cfg.Tiles, "tiles", wsgateway.DefaultTiles, "map tile URL template of the web UI ({z}/{x}/{y}, optional {s}); \"none\" for no tiles")
	f.StringVar(&cfg.TilesAttribution, "tiles-attribution", "", "attribution shown for the tiles (default OpenStreetMap's with the default tiles)")
	f.StringVar(&cfg.TilesCRS, "tiles-crs", "wgs84", "coordinate system of the tiles: wgs84, gcj02 (Amap, Tencent) or bd09 (Baidu coordinates on a Web Mercator grid); positions stay WGS-84 and are converted only for drawing")
	f.IntVar(&cfg.ViewerMaxDevices, "viewer-max-devices", 10_000, "most distinct devices one /ws/live socket may watch")
	f.IntVar(&cfg.ViewerMaxSockets, "viewer-max-sockets", 20, "most /ws/live sockets one user may hold open on this gateway")
	f.Float64Var(&cfg.ViewerSubscribeRate, "viewer-subscribe-rate", 2, "subscribe/unsubscribe requests per second allowed per /ws/live socket")
	f.IntVar(&cfg.ViewerSubscribeBurst, "viewer-subscribe-burst", 20, "burst of subscribe/unsubscribe requests per /ws/live socket")
	f.IntVar(&cfg.ViewerMaxPendingBytes, "viewer-max-pending", 8<<20, "bytes the gateway holds for one viewer before closing it as a slow consumer (4008)")
	f.IntVar(&cfg.TokenCacheSize, "token-cache-size", 100_000, "device tokens whose lookup is kept in memory, so reconnects need no store query; a revoked or rotated token is still refused within 3 s and its sockets closed within 5 s (0: no cache)")
	f.DurationVar(&cfg.TokenCacheTTL, "token-cache-ttl", time.Minute, "how long a device token lookup is kept in the token cache (0: no cache)")
	addLegacyFlags(f, &legacy)
	f.StringVar(&corsOrigins, "cors-origins", "", "comma-separated exact origins (https://admin.example.com) whose pages may call the query API with a bearer token (CORS, no credentials) and frame the web UI; none if empty")
	addPprofFlag(f, &pprofAddr)
	f.StringVar(&trustedProxies, "trusted-proxies", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-Proto (Secure cookie) and X-Forwarded-For (login limits) are believed; none if empty")
	return cmd
}

// storeOutageCheck is the gateway's view of the store's health: the outage
// a worker reports in Redis while it cannot write (the gateway only reads
// the store, so its own queries cannot tell a full or read-only disk).
func storeOutageCheck(rdb *redisq.Client) func(context.Context) error {
	return func(ctx context.Context) error {
		o, err := rdb.CurrentStoreOutage(ctx)
		if err != nil {
			return err
		}
		if o != nil {
			return fmt.Errorf("worker %s reports since %s: %s", o.Worker,
				time.UnixMilli(o.Since).UTC().Format(time.RFC3339), o.Error)
		}
		return nil
	}
}

// workerGCPercent is the garbage collector's target of devtrack worker
// unless GOGC is set. A draining worker keeps about 10 MB live (a batch in
// hand, the next one prefetched) and allocates that much per batch, so with
// Go's default of 100 it collected every few batches: 11% of its CPU went to
// the collector and allocation (BenchmarkDrain profile). 400 lets the heap
// grow to about 50 MB between collections, for 11% less CPU per item
// (BenchmarkDrain with GOGC=400, see the commit).
const workerGCPercent = 400

func newWorkerCmd(g *globals) *cobra.Command {
	var cfg worker.Config
	var ret worker.RetentionConfig
	var metricsAddr, pprofAddr string
	var concurrency int
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Drain the ingest list into the store and publish live updates",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if os.Getenv("GOGC") == "" {
				debug.SetGCPercent(workerGCPercent)
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck
			if err := checkTee(cfg.TeeList, cfg.TeeMax, g.prefix); err != nil {
				return err
			}
			if err := checkConcurrency(concurrency); err != nil {
				return err
			}
			ctx := cmd.Context()
			store, rdb, closeBoth, err := g.openStoreAndRedis(ctx, log)
			if err != nil {
				return err
			}
			defer closeBoth()
			// Items of devices that are not registered (pushed by a
			// backend) go to the dead letters.
			cfg.Devices = store
			ws, err := newPipelines(cfg, concurrency, rdb, store, log)
			if err != nil {
				return usageError{err}
			}
			ret.Holder, ret.Busy = ws[0].ID(), ws.busy
			retention, err := worker.NewRetention(ret, rdb, store, log)
			if err != nil {
				return usageError{err}
			}
			stopMetrics, err := serveMetrics(metricsAddr, ws.ready, log)
			if err != nil {
				return err
			}
			defer stopMetrics()
			_, stopPprof, err := servePprof(pprofAddr, log)
			if err != nil {
				return err
			}
			defer stopPprof()
			notifyReady(ctx, log)
			// Retention runs beside the drain (one worker at a time holds
			// its lock) and stops when the pipelines return, abandoning its
			// chunk in progress; it is waited for before Redis and the store
			// close.
			retCtx, stopRetention := context.WithCancel(ctx)
			var bg sync.WaitGroup
			bg.Go(func() { _ = retention.Run(retCtx) })
			defer bg.Wait()
			defer stopRetention()
			// The pipelines return after SIGTERM once their batches in hand
			// are stored; Redis and the store close after them (defers).
			return ws.run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.ID, "id", "", "worker id (default host-pid-random); a worker restarted with the same id resumes its in-flight items")
	f.IntVar(&cfg.BatchSize, "batch", worker.DefaultBatchSize, "most items stored in one transaction")
	f.IntVar(&concurrency, "concurrency", 1, "pipelines in this process (1-16), each with its own processing list (id-1, id-2, ... when --id is given), sharing one store connection; with SQLite use this rather than several worker processes")
	f.IntVar(&cfg.MaxAttempts, "max-attempts", 5, "failed attempts before an item goes to the dead-letter list")
	f.DurationVar(&cfg.HeartbeatTTL, "heartbeat-ttl", 15*time.Second, "life of the worker heartbeat; in-flight items of a worker silent this long are recovered")
	f.StringVar(&metricsAddr, "metrics", "", "address to serve Prometheus /metrics on (e.g. :9101); none if empty")
	addPprofFlag(f, &pprofAddr)
	f.StringVar(&cfg.TeeList, "tee-list", "", "Redis list (key as given, e.g. device:log:list) onto which each log item's original data is LPUSHed as JSON once stored, for a legacy BRPOP consumer; at least once: an item stored before (a device resend, a batch taken again after a crash) is pushed again; none if empty")
	f.IntVar(&cfg.TeeMax, "tee-max", worker.DefaultTeeMax, "most entries the tee list keeps (the newest); each push trims it")
	f.DurationVar(&ret.Logs, "retain-logs", 0, "delete logs whose device time is older than this (e.g. 720h); 0 keeps them forever")
	f.DurationVar(&ret.Locations, "retain-locations", 0, "delete locations whose device time is older than this; 0 keeps them forever")
	f.DurationVar(&ret.Every, "retain-every", time.Minute, "how often a worker tries a retention run (one worker at a time runs it, under a Redis lock)")
	f.IntVar(&ret.Chunk, "retain-chunk", 1000, "most records one retention step deletes (SQLite: one short transaction)")
	f.Float64Var(&ret.Share, "retain-share", 0.1, "part of the time (0-1] a retention run spends deleting; it pauses the rest, so the drain keeps its pace")
	f.DurationVar(&ret.LockTTL, "retain-lock-ttl", 30*time.Second, "lease of the retention lock, renewed every third of it; a worker killed while it purges frees the lock after at most this long")
	addAlertFlags(f, &cfg)
	return cmd
}

// checkTee refuses a tee list among devtrack's own queue keys (teeing onto
// the ingest list would feed every log back in as an invalid item) and a
// bound below 1.
func checkTee(key string, n int, prefix string) error {
	if key == "" {
		return nil
	}
	if tag := "{" + redisq.NewKeys(prefix).Prefix() + "}"; strings.HasPrefix(key, tag) {
		return usagef("--tee-list %q: one of devtrack's own keys; give the list the legacy consumer reads, e.g. device:log:list", key)
	}
	if n < 1 {
		return usagef("--tee-max %d: want at least 1", n)
	}
	return nil
}

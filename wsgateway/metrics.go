package wsgateway

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	devicesConnected = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "devices_connected",
		Help: "Device WebSockets open on this gateway.",
	})
	framesAccepted = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "frames_accepted_total",
		Help: "Device frames pushed onto the ingest list and acked.",
	})
	framesRefused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "frames_refused_total",
		Help: "Device frames refused, by error code.",
	}, []string{"code"})
	authFailures = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "auth_failures_total",
		Help: "Requests refused for a missing, wrong or revoked token.",
	})
	viewerDropped = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "viewer_messages_coalesced_total",
		Help: "Live messages not queued for a lagging viewer (locations coalesced to the newest, others dropped).",
	})
	connsShed = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "connections_shed_total",
		Help: "Connections closed to keep file descriptors for clients that authenticate, by reason: " +
			"unauthenticated_limit, address_limit, connection_limit (an unauthenticated one shed), " +
			"connection_limit_authenticated (the new one closed: only authenticated connections were open).",
	}, []string{"reason"})
	liveDevices = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "live_devices_subscribed",
		Help: "Devices whose live channel this gateway subscribes to: those watched by at least one of its viewers.",
	})
	unauthConns = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "unauthenticated_connections",
		Help: "Open connections that have not authenticated yet.",
	})
	viewersClosed = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "viewers_closed_total",
		Help: "Live viewer sockets closed by the gateway, by reason (slow_consumer: pending bytes over the limit; revoked: the user's credentials changed; changed: the user's role or groups changed, or a watched device moved out of them; session_ended: a password change ended the socket's web session).",
	}, []string{"reason"})
	tokenCacheHits = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "token_cache_hits_total",
		Help: "Device token lookups (WebSocket handshakes, HTTP ingest) answered from the token cache.",
	})
	tokenCacheMisses = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "token_cache_misses_total",
		Help: "Device token lookups not answered from the token cache (absent, expired, or the revocation polls behind).",
	})
	tokenCacheBypassed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "token_cache_bypassed_total",
		Help: "Cached device tokens not used because the revoke or rotation poll has not completed a round for 3 s (store slow or unreachable).",
	})
	tokenStoreLookups = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "token_store_lookups_total",
		Help: "Device token queries sent to the store by the token cache; concurrent misses of one token share one.",
	})
	pushSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "push_seconds",
		Help:    "Time to put frames on the ingest list (LPUSH round trip).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14),
	})
	ackSeconds = promauto.NewHistogram(prometheus.HistogramOpts{
		Namespace: "devtrack", Subsystem: "gateway", Name: "ack_seconds",
		Help:    "Time from reading a WebSocket frame to writing its ack (the gateway's share of a device's ack latency), one observation per frame.",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
	})
)

func metricsHandler() http.Handler { return promhttp.Handler() }

package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	itemsStored = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "items_stored_total",
		Help: "Queue items committed to the store for the first time.",
	})
	itemsDuplicate = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "items_duplicate_total",
		Help: "Queue items whose (device, id) was already stored.",
	})
	itemsDead = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "items_dead_total",
		Help: "Queue items moved to the dead-letter list.",
	})
	itemsUnknownDevice = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "items_unknown_device_total",
		Help: "Queue items dead-lettered because their device is not registered (also counted in items_dead_total).",
	})
	deviceLookups = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "device_lookups_total",
		Help: "Store lookups of whether a device is registered (the rest are answered by the worker's cache).",
	})
	itemsTeed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "tee_items_total",
		Help: "Stored log items pushed onto the tee list (--tee-list).",
	})
	itemsTeeFailed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "tee_failed_total",
		Help: "Stored log items whose push onto the tee list failed; not on the tee list unless their batch was taken again.",
	})
	storeUp = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "store_up",
		Help: "1 while the store accepts writes, 0 during an outage (full or read-only disk, I/O error, database down).",
	})
	storeOutages = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "store_outages_total",
		Help: "Times the store stopped accepting writes.",
	})
	storeRetries = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "store_outage_retries_total",
		Help: "Writes that failed as a store outage and were retried later (never counted against the items).",
	})
	retentionPurged = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "retention_purged_total",
		Help: "Archived records removed by retention, by kind (logs, locations), by this worker.",
	}, []string{"kind"})
	retentionLastRun = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "retention_last_run_timestamp_seconds",
		Help: "When this worker last finished a retention run (Unix time); 0 if never.",
	})
	retentionRunSeconds = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "retention_last_run_duration_seconds",
		Help: "How long this worker's last finished retention run took, pauses included.",
	})
)

func init() { storeUp.Set(1) }

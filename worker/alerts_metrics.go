package worker

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	geofenceEvents = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "geofence_events_total",
		Help: "Geofence enter and exit events this worker stored first.",
	})
	alertsRaised = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "alerts_total",
		Help: "Alerts this worker stored first.",
	})
	alertsFailed = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "alert_batches_given_up_total",
		Help: "Stored batches whose alerts could not be applied (the store refused them MaxAttempts times, not as an outage).",
	})
	webhookAttempts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: "devtrack", Subsystem: "worker", Name: "webhook_attempts_total",
		Help: "Webhook POSTs by result: delivered (2xx), failed (retried later) or abandoned (past the give-up age).",
	}, []string{"result"})
)

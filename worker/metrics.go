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
)

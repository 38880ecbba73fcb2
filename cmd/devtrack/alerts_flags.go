package main

import (
	"time"

	"github.com/spf13/pflag"

	"github.com/devtrack/devtrack/worker"
)

// addAlertFlags adds the worker's alerting flags (worker/alerts.go,
// offline.go, webhook.go) to f.
func addAlertFlags(f *pflag.FlagSet, cfg *worker.Config) {
	f.DurationVar(&cfg.AlertsPoll, "alerts-poll", 2*time.Second, "how often geofences and alert rules are read again (a new geofence works within this long); negative: no alerting")
	f.DurationVar(&cfg.OfflineScan, "offline-scan", 10*time.Second, "how often last-seen times are scanned for offline rules; negative: no offline alerts")
	f.DurationVar(&cfg.OfflineMinute, "offline-minute", time.Minute, "length of one minute of an offline rule's offline_minutes (for tests and demos)")
	_ = f.MarkHidden("offline-minute")
	f.DurationVar(&cfg.WebhookPoll, "webhook-poll", time.Second, "how often the webhook sender looks for due deliveries; negative: this worker sends none")
	f.DurationVar(&cfg.WebhookTimeout, "webhook-timeout", 10*time.Second, "time allowed for one webhook POST (the claim's lease is the larger of 30 s and twice this)")
	f.DurationVar(&cfg.WebhookGiveUp, "webhook-give-up", 24*time.Hour, "age of an alert past which a failing webhook delivery is abandoned (its last error kept)")
}

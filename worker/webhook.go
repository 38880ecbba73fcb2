package worker

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/devtrack/devtrack/storage"
)

// Webhook delivery. Every worker runs a sender: it claims due deliveries
// (storage ClaimDeliveries, a lease of WebhookLease, 30 s) every
// WebhookPoll (1 s) or as soon as its own batch queued new alerts, POSTs
// each alert's JSON (storage.Alert) with
//
//	Content-Type: application/json
//	X-Devtrack-Delivery: <delivery id>   (alert id ":" webhook id)
//	X-Devtrack-Alert: <alert id>
//	X-Devtrack-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// within WebhookTimeout (10 s, under the lease, so no other worker claims a
// delivery while it is being sent) and records the outcome: a 2xx answer is
// delivered; anything else is tried again after 1 s, doubling up to 5
// minutes, until the alert is WebhookGiveUp (24 h) old, when it is
// abandoned with its last error.
//
// At least once: a worker killed (or a store that fails) between the
// receiver's 2xx and FinishDelivery leaves the delivery leased; when the
// lease ends another sender posts it again with the same
// X-Devtrack-Delivery, by which the receiver drops the repeat.

// webhookClaim is how many deliveries one claim takes; they are sent
// concurrently.
const webhookClaim = 16

// webhookLoop sends due deliveries until ctx ends; the POSTs in progress
// are cancelled then and recorded as failed attempts, due again at once.
func (w *Worker) webhookLoop(ctx context.Context) {
	client := &http.Client{Timeout: w.cfg.WebhookTimeout}
	defer client.CloseIdleConnections()
	t := time.NewTicker(w.cfg.WebhookPoll)
	defer t.Stop()
	for {
		w.sendDue(ctx, client)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.alerts.wake:
		}
	}
}

// sendDue claims and sends deliveries until none is due.
func (w *Worker) sendDue(ctx context.Context, client *http.Client) {
	for ctx.Err() == nil {
		c, cancel := context.WithTimeout(ctx, w.cfg.StoreTimeout)
		ds, err := w.alerts.store.ClaimDeliveries(c, w.cfg.ID, time.Now().UnixMilli(), w.cfg.WebhookLease.Milliseconds(), webhookClaim)
		cancel()
		if ctx.Err() != nil || w.alerts.claimFails.failed(w.log, "claim webhook deliveries", err) {
			return
		}
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Go(func() { w.deliver(ctx, client, d) })
		}
		wg.Wait()
		if len(ds) < webhookClaim {
			return
		}
	}
}

// deliver makes one attempt of d and records it.
func (w *Worker) deliver(ctx context.Context, client *http.Client, d storage.Delivery) {
	err := postAlert(ctx, client, d, time.Now())
	now := time.Now()
	var retryAt int64
	result := "delivered"
	errText := ""
	if err != nil {
		errText = err.Error()
		result = "failed"
		if now.Sub(time.UnixMilli(d.Alert.CreatedAt)) < w.cfg.WebhookGiveUp {
			retryAt = now.Add(webhookBackoff(d.Attempts + 1)).UnixMilli()
			if ctx.Err() != nil {
				retryAt = now.UnixMilli() // stopping: another sender may take it at once
			}
		} else {
			result = "abandoned"
			w.log.Warn("webhook delivery abandoned", zap.String("delivery", d.ID), zap.String("url", d.Webhook.URL),
				zap.Int("attempts", d.Attempts+1), zap.Error(err))
		}
	}
	webhookAttempts.WithLabelValues(result).Inc()
	c, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.StoreTimeout)
	defer cancel()
	if ferr := w.alerts.store.FinishDelivery(c, d.ID, err == nil, errText, retryAt); ferr != nil {
		// The lease ends and another claim sends it again.
		w.log.Warn("record webhook attempt; it will be sent again", zap.String("delivery", d.ID), zap.Error(ferr))
	}
}

// webhookBackoff is the wait after attempt n (1, 2, ...): 1 s doubling, at
// most 5 minutes.
func webhookBackoff(n int) time.Duration {
	return min(time.Second<<min(max(n-1, 0), 20), 5*time.Minute)
}

// SignWebhook is the X-Devtrack-Signature value of body sent at t.
func SignWebhook(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte("."))
	mac.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac.Sum(nil))
}

// postAlert POSTs the alert of d to its webhook; nil for a 2xx answer.
func postAlert(ctx context.Context, client *http.Client, d storage.Delivery, now time.Time) error {
	body, err := json.Marshal(d.Alert)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Webhook.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "devtrack-webhook")
	req.Header.Set("X-Devtrack-Delivery", d.ID)
	req.Header.Set("X-Devtrack-Alert", d.Alert.ID)
	req.Header.Set("X-Devtrack-Signature", SignWebhook(d.Webhook.Secret, now, body))
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("post webhook: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}

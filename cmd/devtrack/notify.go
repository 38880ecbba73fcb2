package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// notifyReady tells systemd (Type=notify) that the service is up and, when
// the unit sets WatchdogSec, keeps petting the watchdog at half its interval
// until ctx ends. Both are no-ops outside systemd.
func notifyReady(ctx context.Context, log *zap.Logger) {
	if _, err := daemon.SdNotify(false, daemon.SdNotifyReady); err != nil {
		log.Warn("sd_notify", zap.Error(err))
	}
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval / 2)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				_, _ = daemon.SdNotify(false, daemon.SdNotifyWatchdog)
			}
		}
	}()
}

// serveMetrics serves /metrics, /healthz and /readyz on addr (for
// processes, like the worker, that have no HTTP server of their own) until
// stop is called; stop closes the listener and waits for the server to end.
// /readyz answers 503 with the reason while ready returns an error. Empty
// addr: nothing is served.
func serveMetrics(addr string, ready func(context.Context) error, log *zap.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, usagef("--metrics %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, "ok", "")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := ready(ctx); err != nil {
			writeStatus(w, http.StatusServiceUnavailable, "unavailable", err.Error())
			return
		}
		writeStatus(w, http.StatusOK, "ready", "")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second,
		WriteTimeout: 10 * time.Second, IdleTimeout: time.Minute}
	return serveOn(ln, srv, "metrics", log), nil
}

// serveOn serves srv on ln in a goroutine of its own, logging name's
// address, and returns stop: it closes the server and waits for it to end.
func serveOn(ln net.Listener, srv *http.Server, name string, log *zap.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn(name+" server", zap.Error(err))
		}
	}()
	log.Info(name+" listening", zap.String("addr", ln.Addr().String()))
	return func() {
		_ = srv.Close()
		<-done
	}
}

// writeStatus writes {"status":...} and, when not empty, {"error":...}.
func writeStatus(w http.ResponseWriter, code int, status, reason string) {
	body := map[string]string{"status": status}
	if reason != "" {
		body["error"] = reason
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(body)
}

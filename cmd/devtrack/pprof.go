package main

import (
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/zap"
)

// addPprofFlag adds --pprof (DEVTRACK_PPROF) to a long-running command.
func addPprofFlag(f *pflag.FlagSet, addr *string) {
	f.StringVar(addr, "pprof", "", "address to serve Go's profiler on (/debug/pprof/, e.g. 127.0.0.1:6060; no authentication: keep it on loopback or a private network); none if empty")
}

// servePprof serves Go's profiler (net/http/pprof: /debug/pprof/) on its
// own listener when addr is set, so a gateway or worker under real load can
// be profiled (go tool pprof http://ADDR/debug/pprof/profile?seconds=30)
// without exposing the profiler on the public port. It has no
// authentication: bind it to a loopback or private address.
func servePprof(addr string, log *zap.Logger) (bound net.Addr, stop func(), err error) {
	if addr == "" {
		return nil, func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, usagef("--pprof %s: %v", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No WriteTimeout: a CPU profile or trace streams for as long as asked.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	return ln.Addr(), serveOn(ln, srv, "pprof", log), nil
}

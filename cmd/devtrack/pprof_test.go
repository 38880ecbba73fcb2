package main

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestPprofServesProfilesOnItsOwnAddress(t *testing.T) {
	addr, stop, err := servePprof("127.0.0.1:0", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get("http://" + addr.String() + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile:") {
		t.Fatalf("GET goroutine profile: %d %.200s", resp.StatusCode, body)
	}

	if _, _, err := servePprof(addr.String(), zap.NewNop()); !errors.As(err, new(usageError)) {
		t.Fatalf("a taken address: %v, want a usage error", err)
	}
	if a, stopNone, err := servePprof("", zap.NewNop()); err != nil || a != nil {
		t.Fatalf("no address: %v %v, want nothing served", a, err)
	} else {
		stopNone()
	}
}

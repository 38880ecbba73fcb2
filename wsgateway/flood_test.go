package wsgateway_test

import (
	"io"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/wsgateway"
)

// metric returns the value of one sample of the gateway's /metrics ("name"
// or `name{label="v"}`), 0 if absent.
func (e *env) metric(sample string) float64 {
	e.t.Helper()
	resp, err := http.Get(e.base + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(sample) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// Slow unauthenticated clients beyond the caps neither starve /healthz nor
// devices: they are shed, the oldest first.
func TestSlowClientsBeyondTheCapsDoNotStarveHealthzOrDevices(t *testing.T) {
	proxy := []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	for _, tc := range []struct {
		name   string
		cfg    wsgateway.Config
		cap    int
		reason string
	}{
		{"per gateway", wsgateway.Config{MaxUnauthConns: 40, MaxUnauthConnsPerAddr: -1}, 40, "unauthenticated_limit"},
		{"per address", wsgateway.Config{MaxUnauthConns: 1000, MaxUnauthConnsPerAddr: 30}, 30, "address_limit"},
		// A trusted proxy carries many clients: only the gateway's cap applies to it.
		{"behind a trusted proxy", wsgateway.Config{MaxUnauthConns: 40, MaxUnauthConnsPerAddr: 5, TrustedProxies: proxy}, 40, "unauthenticated_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			tok := e.addDevice("d1", "g")
			shedBefore := e.metric(`devtrack_gateway_connections_shed_total{reason="` + tc.reason + `"}`)
			addr := strings.TrimPrefix(e.base, "http://")
			slow := testutil.OpenSlowClients(t, addr, 2*tc.cap, tc.cap)
			checkFor(t, 5*time.Second, "slow clients beyond the cap shed", func() bool { return slow.Open() <= tc.cap })

			// A fresh connection to /healthz, as a load balancer's check makes.
			hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			start := time.Now()
			resp, err := hc.Get(e.base + "/healthz")
			if err != nil {
				t.Fatalf("healthz during the flood: %v", err)
			}
			resp.Body.Close()
			if took := time.Since(start); resp.StatusCode != 200 || took > 2*time.Second {
				t.Fatalf("healthz during the flood: %d after %s", resp.StatusCode, took)
			}
			// A device handshake and a frame's ack.
			start = time.Now()
			d := e.mustDial(tok)
			d.send(loc("f1", 1, 1))
			if r := d.read(); r.Type != "ack" {
				t.Fatalf("frame during the flood: %+v", r)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("device handshake and ack took %s during the flood", took)
			}
			if open := slow.Open(); open > tc.cap || open < tc.cap-5 {
				t.Fatalf("%d slow clients still open, want about the cap %d", open, tc.cap)
			}
			if got := e.metric("devtrack_gateway_unauthenticated_connections"); got > float64(tc.cap) {
				t.Fatalf("unauthenticated connections gauge %v over the cap %d", got, tc.cap)
			}
			if shed := e.metric(`devtrack_gateway_connections_shed_total{reason="`+tc.reason+`"}`) - shedBefore; shed < float64(2*tc.cap) {
				t.Fatalf("shed %v connections for %s, want at least %d", shed, tc.reason, 2*tc.cap)
			}
			// The device's connection authenticated: no flood sheds it.
			testutil.OpenSlowClients(t, addr, 0, 2*tc.cap)
			d.send(loc("f2", 1, 1))
			if r := d.read(); r.Type != "ack" {
				t.Fatalf("device after a second flood: %+v", r)
			}
		})
	}
}

// A body trickled one byte per second is cut after BodyTimeout; the
// connection's keep-alive idles out after IdleTimeout.
func TestTrickledBodyAndIdleKeepAliveTimeOut(t *testing.T) {
	e := newEnv(t, wsgateway.Config{BodyTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	addr := strings.TrimPrefix(e.base, "http://")
	slow := testutil.OpenSlowClients(t, addr, 3, 3)
	if n := slow.Open(); n != 6 {
		t.Fatalf("%d slow clients open at first, want 6", n)
	}
	checkFor(t, 5*time.Second, "trickled bodies and idle keep-alives closed", func() bool { return slow.Open() == 0 })
}

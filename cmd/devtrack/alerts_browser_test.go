package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// webhookReceiver is the test's alert receiver: it records every POST and
// answers 200.
type webhookReceiver struct {
	*httptest.Server
	mu   sync.Mutex
	got  []webhookPost
	seen map[string]int // delivery id -> POSTs
}

type webhookPost struct {
	delivery, alertID, signature string
	body                         []byte
}

func newWebhookReceiver(t *testing.T) *webhookReceiver {
	t.Helper()
	r := &webhookReceiver{seen: map[string]int{}}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		p := webhookPost{req.Header.Get("X-Devtrack-Delivery"), req.Header.Get("X-Devtrack-Alert"),
			req.Header.Get("X-Devtrack-Signature"), body}
		r.got = append(r.got, p)
		r.seen[p.delivery]++
		r.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.Close)
	return r
}

// verify checks a POST's signature, t=<unix>,v1=<hex HMAC-SHA256(secret,
// "<t>.<body>")>, made within the last 10 minutes.
func verifySignature(p webhookPost, secret string) error {
	var ts, v1 string
	for part := range strings.SplitSeq(p.signature, ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			v1 = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || v1 == "" {
		return fmt.Errorf("delivery %s: signature header %q is not t=<unix>,v1=<hex>", p.delivery, p.signature)
	}
	if d := time.Since(time.Unix(sec, 0)); d < -time.Minute || d > 10*time.Minute {
		return fmt.Errorf("delivery %s: signed at %s, not just now", p.delivery, time.Unix(sec, 0))
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "."))
	mac.Write(p.body)
	want := hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(v1), []byte(want)) {
		return fmt.Errorf("delivery %s: v1=%s, want %s", p.delivery, v1, want)
	}
	return nil
}

// exactlyOnce checks that the receiver got one POST of each of the
// device's enter and exit alerts and nothing else, each validly signed.
func (r *webhookReceiver) exactlyOnce(secret, device string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var kinds []string
	for _, p := range r.got {
		if n := r.seen[p.delivery]; n != 1 {
			return fmt.Errorf("delivery %q came %d times", p.delivery, n)
		}
		if err := verifySignature(p, secret); err != nil {
			return err
		}
		var a struct{ ID, Kind, Device string }
		if err := json.Unmarshal(p.body, &a); err != nil {
			return fmt.Errorf("delivery %s: body %s: %w", p.delivery, p.body, err)
		}
		if a.Device != device || a.ID != p.alertID || !strings.HasPrefix(p.delivery, a.ID) {
			return fmt.Errorf("delivery %s (alert header %s): body %s", p.delivery, p.alertID, p.body)
		}
		kinds = append(kinds, a.Kind)
	}
	slices.Sort(kinds)
	if !slices.Equal(kinds, []string{"geofence_enter", "geofence_exit"}) {
		return fmt.Errorf("received alerts %v, want one geofence_enter and one geofence_exit", kinds)
	}
	return nil
}

// TestAlertsInBrowser: an admin draws a polygon on the alerts page with
// geoman's toolbar, adds enter and exit rules and a webhook; a device
// drives into and out of it: one enter and one exit show live, the exit's
// alert in the header's badge on the map page, and the webhook receiver
// gets each alert once, signed, although one of the two workers is killed
// (kill -9) between the enter and the exit; then, on a gateway with GCJ-02
// tiles, an operator draws a geofence of their group, stored in WGS-84
// (web/test/alerts.js).
func TestAlertsInBrowser(t *testing.T) {
	needBrowser(t)
	c := newCluster(t)
	c.cli("migrate")
	_, base := c.startGateway("gw1", "--tiles", "none")
	// Geofences and rules are read every 200 ms, so that the drive starts
	// long after they are known.
	w1 := c.start("worker1", "worker", "--id", "w1", "--alerts-poll", "200ms")
	c.start("worker2", "worker", "--id", "w2", "--alerts-poll", "200ms")
	// A second gateway draws on GCJ-02 tiles (unreachable, so the embedded
	// basemap shows).
	_, crsBase := c.startGateway("gw2", "--tiles", "http://127.0.0.1:1/{z}/{x}/{y}.png", "--tiles-crs", "gcj02")
	pw, pwB := randWord("pw-"), randWord("pw-")
	adminTok := lastLine(c.cli("user", "add", "admin", "--role", "admin", "--password", pw))
	c.cli("user", "add", "opb", "--role", "operator", "--groups", "gb", "--password", pwB)
	devTok := lastLine(c.cli("device", "add", "fencer", "--group", "ga", "--name", "Fence Runner"))
	courierTok := lastLine(c.cli("device", "add", "courier", "--group", "gb", "--name", "Courier"))
	recv := newWebhookReceiver(t)

	start := [2]float64{48.8566, 2.3522}      // Paris: fencer
	crsStart := [2]float64{31.2304, 121.4737} // Shanghai: courier
	locate := func(device, tok string, at [2]float64) {
		t.Helper()
		frame, _ := json.Marshal(map[string]any{"type": "location", "id": "start", "ts": time.Now().UnixMilli(),
			"data": map[string]any{"lat": at[0], "lng": at[1]}})
		req, _ := http.NewRequest("POST", base+"/api/v1/ingest", bytes.NewReader(frame))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("ingest the start of %s: %d", device, resp.StatusCode)
		}
		checkFor(t, 20*time.Second, device+" located", func() bool {
			req, _ := http.NewRequest("GET", base+"/api/v1/devices/"+device, nil)
			req.Header.Set("Authorization", "Bearer "+adminTok)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			var d apiDevice
			return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&d) == nil && string(d.Location) != "null"
		})
	}
	locate("fencer", devTok, start)

	var secret string
	runNode(t, "alerts.js", map[string]any{"base": base, "users": map[string]string{"admin": pw, "opb": pwB}, "adminToken": adminTok,
		"tokens": map[string]string{"fencer": devTok}, "device": "fencer", "start": start, "webhook": recv.URL + "/hook",
		"crsBase": crsBase, "crsStart": crsStart},
		func(what string) error {
			switch what {
			case "kill-worker":
				w1.kill9()
				return nil
			case "locate-courier": // after the first part, whose map fits fencer alone
				locate("courier", courierTok, crsStart)
				return nil
			}
			s, ok := strings.CutPrefix(what, "deliveries ")
			if !ok {
				return fmt.Errorf("unknown need %q", what)
			}
			secret = s
			var last error
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) {
				if last = recv.exactlyOnce(secret, "fencer"); last == nil {
					return nil
				}
				time.Sleep(100 * time.Millisecond) // polling the receiver
			}
			return last
		})
	// Still once each after the page's last steps: no late repeat.
	if err := recv.exactlyOnce(secret, "fencer"); err != nil {
		t.Error(err)
	}
}

// Package uniapp_test runs the uni-app page's tracker (tracker.js) in Node,
// with a stand-in for the mini-program runtime whose requests are real,
// against the devtrack binary: through the permission flow, its GCJ-02
// positions are posted as the runtime gives them and stored in WGS-84.
package uniapp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/devtrackbin"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
)

func TestTrackerPostsMiniProgramPositions(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		if os.Getenv("DEVTRACK_REQUIRE_EXAMPLES") != "" {
			t.Fatal("node not found (Debian: nodejs)")
		}
		t.Skip("node not found (set DEVTRACK_REQUIRE_EXAMPLES to make this a failure)")
	}
	srv := redistest.Start(t)
	bin := devtrackbin.Build(t)
	db := filepath.Join(t.TempDir(), "devtrack.db")
	store := "sqlite://" + db
	devtrackbin.Run(t, bin, "migrate", "--store", store)
	tok := devtrackbin.LastLine(devtrackbin.Run(t, bin, "device", "add", "courier-1", "--crs", "gcj02", "--store", store))
	listen := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	devtrackbin.Start(t, bin, "gateway", "gateway", "--redis", srv.Addr(), "--store", store, "--listen", listen, "--log-format", "json")
	devtrackbin.Start(t, bin, "worker", "worker", "--redis", srv.Addr(), "--store", store, "--log-format", "json")
	testutil.CheckFor(t, 10*time.Second, "gateway up", func() bool {
		resp, err := http.Get("http://" + listen + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})

	out, err := exec.Command("node", "tracker_run.mjs", "http://"+listen, tok).CombinedOutput()
	if err != nil {
		t.Fatalf("node tracker_run.mjs: %v\n%s", err, out)
	}
	var run struct {
		Statuses []string `json:"statuses"`
		Pending  int      `json:"pending"`
	}
	if err := json.Unmarshal(out, &run); err != nil {
		t.Fatalf("tracker output %s: %v", out, err)
	}
	// Refused once, granted in the settings; the third position kept while
	// offline and sent with the fourth; nothing left.
	want := []string{"tracking", "sent 1", "sent 1", "offline, kept 1", "sent 2", "sent 1", "stopped"}
	if !slices.Equal(run.Statuses, want) || run.Pending != 0 {
		t.Fatalf("tracker statuses %q, pending %d; want %q, 0", run.Statuses, run.Pending, want)
	}

	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var locs []storage.Location
	testutil.CheckFor(t, 10*time.Second, "5 locations stored", func() bool {
		locs, _, err = st.Locations(context.Background(), storage.LocationQuery{Device: "courier-1"})
		return err == nil && len(locs) == 5
	})
	alts := map[float64]bool{}
	for _, l := range locs {
		// GCJ-02 31.22846,121.47822 is WGS-84 31.2304,121.4737.
		if math.Abs(l.Lat-31.2304) > 1e-5 || math.Abs(l.Lng-121.4737) > 1e-5 || l.CRS != "gcj02" ||
			l.Speed != nil || l.Accuracy == nil || *l.Accuracy != 12.5 || l.Altitude == nil {
			t.Errorf("stored %+v: want WGS-84 31.2304,121.4737 from gcj02, no speed, accuracy 12.5", l)
			continue
		}
		alts[*l.Altitude] = true
	}
	if len(alts) != 5 {
		t.Errorf("altitudes %v: want the 5 positions, each once", alts)
	}
}

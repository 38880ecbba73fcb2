// Package enqueue_test runs the producer examples of this folder (PHP with
// phpredis, Python with redis-py, Node.js with ioredis) against a real
// redis-server and the devtrack worker binary, and checks that every item
// they push is stored once, with what they put in it.
//
// An example whose interpreter or Redis library is missing is skipped, but
// when DEVTRACK_REQUIRE_EXAMPLES is set (CI sets it) that is a failure.
package enqueue_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/internal/testutil/devtrackbin"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
)

const device = "truck-1"

// perRun is how many items each example pushes per run.
const perRun = 50

// example is one producer and how to run it.
type example struct {
	name string
	// idPrefix starts the ids it pushes: idPrefix1, idPrefix2, ...
	idPrefix string
	// command finds the interpreter and returns the command line, or why it
	// cannot run here.
	command func() ([]string, string)
	// message is the log message of item i (odd i are logs).
	message func(i int) string
}

var examples = []example{
	{
		name: "php", idPrefix: "php-",
		command: func() ([]string, string) {
			if _, err := exec.LookPath("php"); err != nil {
				return nil, "php not found (Debian: php-cli php-redis)"
			}
			if err := exec.Command("php", "-r", `exit(class_exists("Redis") ? 0 : 1);`).Run(); err != nil {
				return nil, "phpredis missing (Debian: php-redis)"
			}
			return []string{"php", "enqueue.php"}, ""
		},
		message: func(i int) string { return fmt.Sprintf("parcel scanned from php #%d", i) },
	},
	{
		name: "python", idPrefix: "py-",
		command: func() ([]string, string) {
			// The python3 on PATH may be a pyenv one without Debian's
			// python3-redis, which /usr/bin/python3 sees.
			for _, py := range []string{"python3", "/usr/bin/python3"} {
				if exec.Command(py, "-c", "import redis").Run() == nil {
					return []string{py, "enqueue.py"}, ""
				}
			}
			return nil, "no python3 with redis-py (Debian: python3-redis)"
		},
		message: func(i int) string { return fmt.Sprintf("door opened from python #%d", i) },
	},
	{
		name: "node", idPrefix: "node-",
		command: func() ([]string, string) {
			if _, err := exec.LookPath("node"); err != nil {
				return nil, "node not found (Debian: nodejs npm)"
			}
			if _, err := os.Stat(filepath.Join("node", "node_modules", "ioredis")); err != nil {
				return nil, "ioredis not installed: run npm ci in examples/enqueue/node"
			}
			return []string{"node", filepath.Join("node", "enqueue.js")}, ""
		},
		message: func(i int) string { return fmt.Sprintf("upload failed from node #%d", i) },
	},
}

func TestExamplesEnqueue(t *testing.T) {
	required := os.Getenv("DEVTRACK_REQUIRE_EXAMPLES") != ""
	srv := redistest.Start(t)
	bin := devtrackbin.Build(t)
	dbPath := filepath.Join(t.TempDir(), "devtrack.db")
	store := "sqlite://" + dbPath
	devtrackbin.Run(t, bin, "migrate", "--store", store)
	devtrackbin.Run(t, bin, "device", "add", device, "--store", store)
	devtrackbin.Start(t, bin, "worker", "worker", "--redis", srv.Addr(), "--store", store, "--log-format", "json")

	st, err := sqlite.Open(context.Background(), dbPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })

	host, port, _ := strings.Cut(srv.Addr(), ":")
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			argv, missing := ex.command()
			if missing != "" {
				if required {
					t.Fatalf("cannot run the %s example: %s", ex.name, missing)
				}
				t.Skipf("%s (set DEVTRACK_REQUIRE_EXAMPLES to make this a failure)", missing)
			}
			// Twice: a rerun pushes the same ids, which are stored once.
			for range 2 {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.Env = append(os.Environ(), "REDIS_HOST="+host, "REDIS_PORT="+port,
					"DEVICE="+device, fmt.Sprintf("COUNT=%d", perRun))
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
				}
			}
			var logs map[string]storage.LogEntry
			var locs map[string]storage.Location
			testutil.CheckFor(t, 20*time.Second, "every pushed item stored", func() bool {
				logs, locs = stored(t, st, ex.idPrefix)
				return len(logs)+len(locs) == perRun
			})
			for i := 1; i <= perRun; i++ {
				id := fmt.Sprintf("%s%d", ex.idPrefix, i)
				if i%2 == 1 {
					if got := logs[id].Message; got != ex.message(i) {
						t.Errorf("log %s: message %q, want %q", id, got, ex.message(i))
					}
					continue
				}
				l, ok := locs[id]
				if want := 121.4737 + float64(i)/10000; !ok || l.Lat != 31.2304 || abs(l.Lng-want) > 1e-9 {
					t.Errorf("location %s: %+v (stored %v), want 31.2304, %v", id, l, ok, want)
				}
			}
		})
	}
}

// stored returns the logs and locations of device whose id starts with
// prefix, failing the test if one is stored twice.
func stored(t *testing.T, st *sqlite.Store, prefix string) (map[string]storage.LogEntry, map[string]storage.Location) {
	t.Helper()
	ctx := context.Background()
	logs := byID(t, prefix, func(cursor string) ([]storage.LogEntry, string, error) {
		return st.Logs(ctx, storage.LogQuery{Device: device, Limit: 1000, Cursor: cursor})
	}, func(e storage.LogEntry) string { return e.ID })
	locs := byID(t, prefix, func(cursor string) ([]storage.Location, string, error) {
		return st.Locations(ctx, storage.LocationQuery{Device: device, Limit: 1000, Cursor: cursor})
	}, func(l storage.Location) string { return l.ID })
	return logs, locs
}

// byID reads every page of a query and keeps the records whose id starts
// with prefix, failing the test if one comes twice.
func byID[T any](t *testing.T, prefix string, page func(cursor string) ([]T, string, error), id func(T) string) map[string]T {
	t.Helper()
	out := map[string]T{}
	for cursor := ""; ; {
		recs, next, err := page(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if k := id(r); strings.HasPrefix(k, prefix) {
				if _, dup := out[k]; dup {
					t.Fatalf("%s stored twice", k)
				}
				out[k] = r
			}
		}
		if next == "" {
			return out
		}
		cursor = next
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

package main

import (
	"bytes"
	"context"
	"fmt"
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

// The example firmware, against the devtrack binary (gateway with a legacy
// listener, worker, SQLite): its logs are answered and archived with their
// other keys in fields; with a wrong key it is refused and says why.
func TestLegacyFirmwareExample(t *testing.T) {
	srv := redistest.Start(t)
	bin := devtrackbin.Build(t)
	db := filepath.Join(t.TempDir(), "devtrack.db")
	store := "sqlite://" + db
	devtrackbin.Run(t, bin, "migrate", "--store", store)
	out := devtrackbin.Run(t, bin, "device", "add", "D123", "--legacy-key", "--store", store)
	var key string
	for _, l := range strings.Split(out, "\n") {
		if k, ok := strings.CutPrefix(l, "legacy key: "); ok {
			key = strings.TrimSpace(k)
		}
	}
	if key == "" {
		t.Fatalf("no legacy key in:\n%s", out)
	}
	legacy := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	listen := fmt.Sprintf("127.0.0.1:%d", redistest.FreePort(t))
	devtrackbin.Start(t, bin, "gateway", "gateway", "--redis", srv.Addr(), "--store", store,
		"--listen", listen, "--legacy-listen", legacy, "--log-format", "json")
	devtrackbin.Start(t, bin, "worker", "worker", "--redis", srv.Addr(), "--store", store, "--log-format", "json")

	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var code int
	testutil.CheckFor(t, 10*time.Second, "legacy listener up", func() bool {
		stdout.Reset()
		stderr.Reset()
		code = run(ctx, []string{"-url", "ws://" + legacy + "/?key=" + key, "-device", "D123", "-count", "3", "-every", "10ms"}, &stdout, &stderr)
		return !strings.Contains(stderr.String(), "connection refused")
	})
	if code != 0 || strings.Count(stdout.String(), "answered") != 3 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}

	st, err := sqlite.Open(context.Background(), db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testutil.CheckFor(t, 10*time.Second, "3 logs archived", func() bool {
		logs, _, err := st.Logs(context.Background(), storage.LogQuery{Device: "D123"})
		return err == nil && len(logs) == 3
	})
	logs, _, _ := st.Logs(context.Background(), storage.LogQuery{Device: "D123", Text: "door cycle 2"})
	if len(logs) != 1 || !strings.Contains(string(logs[0].Fields), `"battery":"98%"`) {
		t.Fatalf("log 2: %+v, want its message and the battery key in fields", logs)
	}

	stderr.Reset()
	if code := run(ctx, []string{"-url", "ws://" + legacy + "/?key=dtl_wrong", "-count", "1"}, &stdout, &stderr); code != 1 || !strings.Contains(stderr.String(), "401") {
		t.Fatalf("wrong key: exit %d, %s", code, &stderr)
	}
}

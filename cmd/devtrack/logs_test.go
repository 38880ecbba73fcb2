package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/sqlite"
)

// logs query shows a log's fields in the table, and escapes what a
// terminal would act on.
func TestLogsQueryShowsFields(t *testing.T) {
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "devtrack.db")
	st, err := sqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	logs := []storage.LogEntry{
		{Device: "d1", ID: "1", TS: 1763900000000, ReceivedAt: 1763900000000, Level: "warn", Message: "door opened", Fields: json.RawMessage(`{"door":2,"battery":"80%"}`)},
		{Device: "d1", ID: "2", TS: 1763900001000, ReceivedAt: 1763900001000, Level: "info", Message: "plain"},
		{Device: "d1", ID: "3", TS: 1763900002000, ReceivedAt: 1763900002000, Level: "info", Message: "esc", Fields: json.RawMessage(`{"k":"\u001b[31mred"}`)},
	}
	if _, err := st.SaveBatch(ctx, storage.Batch{Logs: logs}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"logs", "query", "--device", "d1", "--store", "sqlite://" + db})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 || !strings.HasSuffix(strings.TrimSpace(lines[0]), "FIELDS") {
		t.Fatalf("logs query printed:\n%s", out.String())
	}
	for _, l := range lines {
		if strings.Contains(l, "door opened") && !strings.Contains(l, `{"door":2,"battery":"80%"}`) {
			t.Errorf("line %q lacks the fields", l)
		}
		if strings.ContainsRune(l, 0x1b) {
			t.Errorf("line %q passes an escape to the terminal", l)
		}
	}
}

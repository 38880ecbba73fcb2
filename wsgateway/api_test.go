package wsgateway_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

func (e *env) get(tok, path string) (int, string) { return e.do("GET", tok, path, "") }

func (e *env) post(tok, path, body string) (int, string) { return e.do("POST", tok, path, body) }

func (e *env) do(method, tok, path, body string) (int, string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (e *env) saveLogs(logs ...storage.LogEntry) {
	e.t.Helper()
	if _, err := e.store.SaveBatch(context.Background(), storage.Batch{Logs: logs}); err != nil {
		e.t.Fatal(err)
	}
}

func TestQueryAPIAuthAndGroupVisibility(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("a1", "group-a")
	e.addDevice("b1", "group-b")
	admin := e.addUser("root", storage.RoleAdmin)
	opA := e.addUser("alice", storage.RoleOperator, "group-a")
	now := time.Now().UnixMilli()
	e.saveLogs(
		storage.LogEntry{Device: "a1", ID: "1", TS: now, ReceivedAt: now, Level: "info", Message: "door opened in A"},
		storage.LogEntry{Device: "b1", ID: "1", TS: now, ReceivedAt: now, Level: "warn", Message: "door opened in B"},
	)

	for _, c := range []struct {
		name, tok, path string
		status          int
		has, hasNot     string
	}{
		{"no token", "", "/api/v1/devices", 401, `"unauthorized"`, ""},
		{"wrong token", "dtu_nope", "/api/v1/logs", 401, `"unauthorized"`, ""},
		{"admin sees all devices", admin, "/api/v1/devices", 200, `"b1"`, ""},
		{"operator sees own group", opA, "/api/v1/devices", 200, `"a1"`, `"b1"`},
		{"operator logs filtered", opA, "/api/v1/logs?q=door", 200, "in A", "in B"},
		{"admin logs all", admin, "/api/v1/logs?q=door", 200, "in B", ""},
		{"operator other device logs", opA, "/api/v1/logs?device=b1", 403, `"forbidden"`, "in B"},
		{"operator other device track", opA, "/api/v1/devices/b1/locations", 403, `"forbidden"`, ""},
		{"unknown device", admin, "/api/v1/devices/zz/locations", 404, `"not_found"`, ""},
		{"bad limit", admin, "/api/v1/logs?limit=-1", 400, `"bad_request"`, ""},
		{"bad time", admin, "/api/v1/logs?from=yesterday", 400, `"bad_request"`, ""},
		{"bad level", admin, "/api/v1/logs?level=loud", 400, `"bad_request"`, ""},
		{"bad cursor", admin, "/api/v1/logs?cursor=%21%21", 400, `"bad_request"`, ""},
		{"sql-ish search", admin, "/api/v1/logs?q=%27%3B%20DROP%20TABLE%20logs%3B--", 200, `"items":[]`, ""},
		{"level filter", admin, "/api/v1/logs?level=warn", 200, "in B", "in A"},
		{"queue counts", opA, "/api/v1/queue", 200, `"pending":0`, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := e.get(c.tok, c.path)
			if status != c.status || (c.has != "" && !strings.Contains(body, c.has)) || (c.hasNot != "" && strings.Contains(body, c.hasNot)) {
				t.Fatalf("%s: %d %s; want %d with %q without %q", c.path, status, body, c.status, c.has, c.hasNot)
			}
		})
	}
}

func TestLogsPaginateAndExport(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("d1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	base := time.Now().Add(-time.Hour).UnixMilli()
	var logs []storage.LogEntry
	for i := range 250 {
		logs = append(logs, storage.LogEntry{Device: "d1", ID: "l" + itoa(int64(i)), TS: base + int64(i), ReceivedAt: base,
			Level: "info", Message: "=HYPERLINK(\"x\") pump " + itoa(int64(i))})
	}
	e.saveLogs(logs...)
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		status, body := e.get(admin, "/api/v1/logs?limit=100&cursor="+cursor)
		if status != 200 {
			t.Fatalf("page %d: %d %s", pages, status, body)
		}
		var page struct {
			Items      []storage.LogEntry `json:"items"`
			NextCursor string             `json:"next_cursor"`
		}
		_ = json.Unmarshal([]byte(body), &page)
		for _, it := range page.Items {
			if seen[it.ID] {
				t.Fatalf("%s on two pages", it.ID)
			}
			seen[it.ID] = true
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if len(seen) != 250 {
		t.Fatalf("paged through %d logs, want 250", len(seen))
	}
	status, body := e.get(admin, "/api/v1/logs/export?format=jsonl&q=pump")
	if status != 200 || strings.Count(body, "\n") != 250 {
		t.Fatalf("jsonl export: %d, %d lines", status, strings.Count(body, "\n"))
	}
	status, body = e.get(admin, "/api/v1/logs/export?format=csv")
	if status != 200 || strings.Count(body, "\n") != 251 {
		t.Fatalf("csv export: %d, %d lines", status, strings.Count(body, "\n"))
	}
	if strings.Contains(body, "\n=HYPERLINK") || strings.Contains(body, ",=HYPERLINK") || strings.Contains(body, `,"=HYPERLINK`) {
		t.Fatalf("csv export lets a formula through:\n%s", body[:300])
	}
}

func TestHTTPIngest(t *testing.T) {
	e := newEnv(t, wsgateway.Config{MaxBodyBytes: 4096})
	tok := e.addDevice("c1", "g")
	status, body := e.post(tok, "/api/v1/ingest", `[`+loc("h1", 1, 1)+`,{"type":"location","id":"h2","data":{"lat":999,"lng":1}},`+loc("h3", 1, 1)+`]`)
	var resp struct {
		Accepted        int      `json:"accepted"`
		IDs             []string `json:"ids"`
		UpdateIntervalS int      `json:"update_interval_s"`
		Errors          []struct{ ID, Code string }
	}
	_ = json.Unmarshal([]byte(body), &resp)
	if status != 200 || resp.Accepted != 2 || strings.Join(resp.IDs, ",") != "h1,h3" || resp.UpdateIntervalS <= 0 ||
		len(resp.Errors) != 1 || resp.Errors[0].ID != "h2" {
		t.Fatalf("mixed array: %d %s", status, body)
	}
	if status, body := e.post(tok, "/api/v1/ingest", `{"type":"batch","items":[`+loc("h4", 2, 2)+`]}`); status != 200 || !strings.Contains(body, `"accepted":1`) {
		t.Fatalf("batch: %d %s", status, body)
	}
	if status, body := e.post(tok, "/api/v1/ingest", `{nope`); status != 400 || !strings.Contains(body, `"invalid_json"`) {
		t.Fatalf("bad json: %d %s", status, body)
	}
	if status, _ := e.post(tok, "/api/v1/ingest", string(bytes.Repeat([]byte(" "), 5000))+`{}`); status != 413 {
		t.Fatalf("huge body: %d, want 413", status)
	}
	if status, _ := e.post("dtd_wrong", "/api/v1/ingest", loc("h5", 1, 1)); status != 401 {
		t.Fatalf("wrong token: %d, want 401", status)
	}
	e.redis.Stop()
	if status, body := e.post(tok, "/api/v1/ingest", loc("h6", 1, 1)); status != 503 || !strings.Contains(body, "unavailable") {
		t.Fatalf("redis down: %d %s, want 503", status, body)
	}
	e.redis.Restart()
	if n := len(e.queued()); n != 3 {
		t.Fatalf("%d queued, want h1 h3 h4", n)
	}
}

func TestHTTPIngestIsRateLimitedPerDevice(t *testing.T) {
	e := newEnv(t, wsgateway.Config{FrameRate: 1, FrameBurst: 3, Limits: protocol.Limits{MaxBatch: 3}})
	tok := e.addDevice("c1", "g")
	other := e.addDevice("c2", "g")
	if status, body := e.post(tok, "/api/v1/ingest", `[`+loc("a", 1, 1)+`,`+loc("b", 1, 1)+`]`); status != 200 {
		t.Fatalf("within burst: %d %s", status, body)
	}
	status, body := e.post(tok, "/api/v1/ingest", `[`+loc("c", 1, 1)+`,`+loc("d", 1, 1)+`]`)
	if status != 429 || !strings.Contains(body, `"rate_limited"`) {
		t.Fatalf("over the rate: %d %s, want 429 rate_limited", status, body)
	}
	if status, _ := e.post(other, "/api/v1/ingest", loc("x", 1, 1)); status != 200 {
		t.Fatalf("another device is limited too: %d", status)
	}
	if n := len(e.queued()); n != 3 {
		t.Fatalf("%d queued, want a, b and x", n)
	}
}

// A NUL in q is a bad parameter (400 with a reason), never a 500 from the
// store, in the list and in the export.
func TestLogsSearchWithNULIsABadRequest(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	for _, path := range []string{"/api/v1/logs?q=a%00b", "/api/v1/logs/export?format=csv&q=%00", "/api/v1/logs/export?q=x%00"} {
		status, body := e.get(admin, path)
		if status != 400 || !strings.Contains(body, `"bad_request"`) || !strings.Contains(body, "NUL") {
			t.Errorf("%s: %d %s, want 400 bad_request naming the NUL", path, status, body)
		}
	}
}

// What a spreadsheet opens from the CSV export never starts a formula: every
// trigger, after leading spaces, in every device-controlled column.
func TestCSVExportDefusesFormulas(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("d1", "g")
	admin := e.addUser("root", storage.RoleAdmin)
	now := time.Now().UnixMilli()
	hostile := []string{"=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1", "\n=1", "  =1", "＝1", "＋1", "－1", "＠1", "\u3000=1"}
	for i, m := range hostile {
		e.saveLogs(storage.LogEntry{Device: "d1", ID: "h" + itoa(int64(i)), TS: now + int64(i), ReceivedAt: now,
			Level: "info", Message: m, Fields: json.RawMessage(`{"k":1}`)})
	}
	e.saveLogs(storage.LogEntry{Device: "d1", ID: "=cmd", TS: now - 1, ReceivedAt: now, Level: "info", Message: "plain"})
	status, body := e.get(admin, "/api/v1/logs/export?format=csv")
	if status != 200 {
		t.Fatalf("csv export: %d %s", status, body)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("csv export does not parse: %v", err)
	}
	if len(rows) != len(hostile)+2 {
		t.Fatalf("%d rows, want header + %d", len(rows), len(hostile)+1)
	}
	got := map[string]bool{}
	for _, row := range rows[1:] {
		for _, cell := range row {
			first, _ := utf8.DecodeRuneInString(strings.TrimLeft(cell, " \u3000"))
			if strings.ContainsRune("=+-@\t\r\n＝＋－＠", first) {
				t.Errorf("cell %q starts a formula", cell)
			}
		}
		got[row[5]] = true
	}
	for _, m := range append(hostile, "plain") {
		want := "'" + m
		if m == "plain" {
			want = m
		}
		if !got[want] {
			t.Errorf("message %q: want the cell %q, cells %v", m, want, got)
		}
	}
}

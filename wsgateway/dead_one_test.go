package wsgateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// One dead letter is requeued or deleted by its id, leaving the others; an
// id handled already is 404, and only admins may act.
func TestOneDeadLetterRequeuedOrDeleted(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	admin := e.addUser("root", storage.RoleAdmin)
	op := e.addUser("alice", storage.RoleOperator, "group-a")
	ctx := context.Background()
	const worker = "w-test"
	for _, item := range []string{`{"device":"a1","id":"1"}`, `{"device":"a1","id":"2"}`, `{"device":"a1","id":"3"}`} {
		if err := e.rdb.Push(ctx, []byte(item)); err != nil {
			t.Fatal(err)
		}
		taken, err := e.rdb.Take(ctx, worker, 1, 0)
		if err != nil || len(taken) != 1 {
			t.Fatalf("take: %v %v", taken, err)
		}
		if err := e.rdb.Bury(ctx, worker, redisq.DeadLetter{Item: taken[0], Error: "refused", Attempts: 5}); err != nil {
			t.Fatal(err)
		}
	}
	list := func() []redisq.DeadLetter {
		t.Helper()
		_, body := e.get(admin, "/api/v1/queue/dead")
		var page struct{ Items []redisq.DeadLetter }
		if err := json.Unmarshal([]byte(body), &page); err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	items := list()
	if len(items) != 3 || len(items[0].ID) != 40 || items[0].ID == items[1].ID {
		t.Fatalf("dead letters %+v: want 3 with distinct 40-digit ids", items)
	}
	byItem := map[string]string{}
	for _, d := range items {
		byItem[d.Item] = d.ID
	}
	two, three := byItem[`{"device":"a1","id":"2"}`], byItem[`{"device":"a1","id":"3"}`]

	if status, _ := e.post(op, "/api/v1/queue/dead/"+two+"/requeue", ""); status != http.StatusForbidden {
		t.Errorf("operator requeue: %d, want 403", status)
	}
	if status, _ := e.do("DELETE", op, "/api/v1/queue/dead/"+two, ""); status != http.StatusForbidden {
		t.Errorf("operator delete: %d, want 403", status)
	}
	if status, body := e.post(admin, "/api/v1/queue/dead/"+two+"/requeue", ""); status != 200 || !strings.Contains(body, `"requeued":1`) {
		t.Fatalf("requeue one: %d %s", status, body)
	}
	if status, body := e.do("DELETE", admin, "/api/v1/queue/dead/"+three, ""); status != http.StatusNoContent {
		t.Fatalf("delete one: %d %s", status, body)
	}
	if status, _ := e.do("DELETE", admin, "/api/v1/queue/dead/"+three, ""); status != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", status)
	}
	if status, _ := e.do("DELETE", admin, "/api/v1/queue/dead/nothex", ""); status != http.StatusBadRequest {
		t.Errorf("malformed id: %d, want 400", status)
	}
	left := list()
	if len(left) != 1 || left[0].Item != `{"device":"a1","id":"1"}` {
		t.Fatalf("left %+v, want only item 1", left)
	}
	r := e.rdb.Redis()
	queued, err := r.Do(ctx, r.B().Lrange().Key(e.rdb.Keys().Queue()).Start(0).Stop(-1).Build()).AsStrSlice()
	if err != nil || len(queued) != 1 || queued[0] != `{"device":"a1","id":"2"}` {
		t.Fatalf("ingest list %q (%v), want item 2 only", queued, err)
	}
}

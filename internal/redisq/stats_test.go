package redisq_test

import (
	"context"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/google/go-cmp/cmp"
)

// Items pushed onto a well-known wrong key (the ingest key without its
// braces, or the default prefix's under another one) show in Stats; a
// wrong key of another type is someone else's and does not.
func TestStatsCountsItemsOnWrongKeys(t *testing.T) {
	c, srv := open(t)
	ctx := context.Background()
	r := c.Redis()
	if s, err := c.Stats(ctx); err != nil || s.WrongKeys != nil {
		t.Fatalf("empty Redis: %+v, %v; want no wrong keys", s, err)
	}
	for _, cmd := range [][]string{
		{"LPUSH", "devtrack:queue", "a", "b"},
		{"LPUSH", "{devtrack}:ingest", "c"},
		{"SET", "devtrack:ingest", "some other application's string"},
		{"LPUSH", "{devtrack}:queue", "the real one"},
	} {
		if err := r.Do(ctx, r.B().Arbitrary(cmd[0]).Keys(cmd[1]).Args(cmd[2:]...).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"devtrack:queue": 2, "{devtrack}:ingest": 1}, s.WrongKeys); diff != "" || s.Pending != 1 {
		t.Errorf("stats %+v; wrong keys (-want +got):\n%s", s, diff)
	}

	fleet, err := redisq.Open(ctx, srv.Addr(), "fleet")
	if err != nil {
		t.Fatal(err)
	}
	defer fleet.Close()
	s, err = fleet.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]int64{"{devtrack}:queue": 1, "devtrack:queue": 2}, s.WrongKeys); diff != "" || s.Pending != 0 {
		t.Errorf("prefix fleet: stats %+v; wrong keys (-want +got):\n%s", s, diff)
	}
}

package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

// A push onto the ingest key without its braces shows in queue stats as a
// warning that names the right key.
func TestQueueStatsWarnsOfItemsOnAWrongKey(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	c, err := redisq.Open(ctx, srv.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := c.Redis()
	if err := r.Do(ctx, r.B().Lpush().Key("devtrack:queue").Element("a", "b", "c").Build()).Error(); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"queue", "stats", "--redis", srv.Addr()})
	if err := root.ExecuteContext(ctx); err != nil {
		t.Fatal(err)
	}
	want := "pending: 0\nin_flight: 0\ndead: 0\nworkers: 0\n" +
		"warning: 3 items on devtrack:queue, a key no worker reads; producers must LPUSH onto {devtrack}:queue (the braces are part of the name)\n"
	if out.String() != want {
		t.Errorf("queue stats printed\n%s\nwant\n%s", out.String(), want)
	}
}

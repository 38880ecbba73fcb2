package redisq_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/testutil/redistest"
)

func open(t testing.TB) (*redisq.Client, *redistest.Server) {
	t.Helper()
	srv := redistest.Start(t)
	c, err := redisq.Open(context.Background(), srv.Addr(), "devtrack")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, srv
}

func TestLastPositionAndSeenNeverMoveBackwards(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	newer := redisq.LiveMessage{Device: "d1", IsLocation: true, TS: 2000, ReceivedAt: 2100,
		Payload: []byte(`{"type":"location","device":"d1","id":"new","ts":2000,"received_at":2100,"data":{"lat":1,"lng":1}}`)}
	older := redisq.LiveMessage{Device: "d1", IsLocation: true, TS: 1000, ReceivedAt: 1100,
		Payload: []byte(`{"type":"location","device":"d1","id":"old","ts":1000,"received_at":1100,"data":{"lat":2,"lng":2}}`)}
	if err := c.PublishLive(ctx, []redisq.LiveMessage{newer}); err != nil {
		t.Fatal(err)
	}
	if err := c.PublishLive(ctx, []redisq.LiveMessage{older}); err != nil {
		t.Fatal(err)
	}
	st, err := c.DeviceStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(st["d1"].Location), `"id":"new"`) || st["d1"].LastSeen != 2100 {
		t.Fatalf("state went backwards: %s seen %d", st["d1"].Location, st["d1"].LastSeen)
	}
}

func TestRecoveredItemsCountAttemptsUnderTheGoKey(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	items := []string{`{"v":1,"device":"d1","id":"a","type":"log"}`, `not json at all`}
	if err := c.Push(ctx, []byte(items[0]), []byte(items[1])); err != nil {
		t.Fatal(err)
	}
	if err := c.RegisterWorker(ctx, "gone", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Take(ctx, "gone", 10, 0); err != nil || len(got) != 2 {
		t.Fatalf("take: %v %v", got, err)
	}
	time.Sleep(5 * time.Millisecond) // past the 1 ms heartbeat
	rec, err := c.RecoverDead(ctx)
	if err != nil || rec["gone"] != 2 {
		t.Fatalf("recover: %v %v", rec, err)
	}
	keys := []string{redisq.AttemptKey(items[0]), redisq.AttemptKey(items[1])}
	n, err := c.Attempts(ctx, keys)
	if err != nil || n[0] != 1 || n[1] != 1 {
		t.Fatalf("attempts %v %v; want 1 each under the keys Go derives", n, err)
	}
	// Taken back oldest first.
	got, err := c.Take(ctx, "w2", 10, 0)
	if err != nil || len(got) != 2 || got[0] != items[0] {
		t.Fatalf("order after recovery: %v %v", got, err)
	}
}

func TestParseAddr(t *testing.T) {
	for _, tc := range []struct {
		in    string
		addrs int
		bad   bool
	}{
		{"127.0.0.1:6379", 1, false},
		{"redis://user:pw@host:6380/2", 1, false},
		{"a:1,b:2,c:3", 3, false},
		{"", 0, true},
		{"no-port", 0, true},
		{"ftp://x", 0, true},
	} {
		opt, err := redisq.ParseAddr(tc.in)
		if (err != nil) != tc.bad || (!tc.bad && len(opt.InitAddress) != tc.addrs) {
			t.Errorf("ParseAddr(%q) = %v, %v", tc.in, opt.InitAddress, err)
		}
	}
}

// A take that Redis ran after the worker gave up on it leaves items in the
// processing list that the worker never saw. Finishing a batch removes only
// what was in hand, and the next take hands the leftovers over first.
func TestDoneRemovesOnlyFinishedItemsAndTakeHandsOverLeftovers(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	r := c.Redis()
	for _, it := range []string{"a", "b", "c", "d"} {
		if err := c.Push(ctx, []byte(it)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := c.Take(ctx, "w", 2, 0)
	if err != nil || strings.Join(got, ",") != "a,b" {
		t.Fatalf("first take = %v, %v; want a,b", got, err)
	}
	// The lost take: Redis moves c while the worker is busy with a and b.
	if err := r.Do(ctx, r.B().Lmove().Source(c.Keys().Queue()).Destination(c.Keys().Processing("w")).Right().Left().Build()).Error(); err != nil {
		t.Fatal(err)
	}
	left, err := c.Done(ctx, "w", got, []string{redisq.AttemptKey("a"), redisq.AttemptKey("b")})
	if err != nil || left != 1 {
		t.Fatalf("done = %d, %v; want 1 item (c) left in the processing list", left, err)
	}
	got, err = c.Take(ctx, "w", 10, 0)
	if err != nil || strings.Join(got, ",") != "c,d" {
		t.Fatalf("second take = %v, %v; want the leftover c, then d", got, err)
	}
	// A take never hands over more than asked, oldest first.
	got, err = c.Take(ctx, "w", 1, 0)
	if err != nil || strings.Join(got, ",") != "c" {
		t.Fatalf("take of 1 = %v, %v; want c", got, err)
	}
	// The same raw item twice (a producer that pushed it twice) is removed
	// once per finished copy.
	if left, err := c.Done(ctx, "w", []string{"c", "d"}, nil); err != nil || left != 0 {
		t.Fatalf("done = %d, %v; want an empty processing list", left, err)
	}
	// An item in between that was not finished (its dead letter could not
	// be written, say) stays; the others go.
	for _, it := range []string{"e", "f", "g"} {
		if err := c.Push(ctx, []byte(it)); err != nil {
			t.Fatal(err)
		}
	}
	if got, err = c.Take(ctx, "w", 10, 0); err != nil || strings.Join(got, ",") != "e,f,g" {
		t.Fatalf("take = %v, %v; want e,f,g", got, err)
	}
	if left, err := c.Done(ctx, "w", []string{"e", "g"}, nil); err != nil || left != 1 {
		t.Fatalf("done of e and g = %d, %v; want f left", left, err)
	}
	if got, err = c.Take(ctx, "w", 10, 0); err != nil || strings.Join(got, ",") != "f" {
		t.Fatalf("take = %v, %v; want f", got, err)
	}
	if _, err := c.Done(ctx, "w", got, nil); err != nil {
		t.Fatal(err)
	}
	s, err := c.Stats(ctx)
	if err != nil || s.Pending != 0 || s.InFlight != 0 || s.Workers != 1 {
		t.Fatalf("stats = %+v, %v; want nothing pending or in flight, the taker registered", s, err)
	}
}

package redisq_test

import (
	"context"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
)

// A lock has one holder at a time; only the holder renews or releases it,
// and a lease that runs out frees it for the next.
func TestLockOneHolderAndLeaseExpiry(t *testing.T) {
	c, srv := open(t)
	ctx := context.Background()
	step := func(what string, got bool, err error, want bool) {
		t.Helper()
		if err != nil || got != want {
			t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
		}
	}
	ok, err := c.TryLock(ctx, "retention", "a", time.Minute)
	step("a takes the free lock", ok, err, true)
	ok, err = c.TryLock(ctx, "retention", "b", time.Minute)
	step("b takes a's lock", ok, err, false)
	ok, err = c.TryLock(ctx, "retention", "a", time.Minute)
	step("a takes its own lock again", ok, err, false)
	ok, err = c.RenewLock(ctx, "retention", "b", time.Minute)
	step("b renews a's lock", ok, err, false)
	ok, err = c.Unlock(ctx, "retention", "b")
	step("b releases a's lock", ok, err, false)
	if h, err := c.LockHolder(ctx, "retention"); err != nil || h != "a" {
		t.Fatalf("holder = %q, %v; want a", h, err)
	}
	if v, err := srv.Do("GET", "devtrack:retention:lock"); err != nil || v != "a" {
		t.Fatalf("GET devtrack:retention:lock = %q, %v; want the key under the prefix", v, err)
	}
	ok, err = c.RenewLock(ctx, "retention", "a", time.Minute)
	step("a renews", ok, err, true)
	ok, err = c.Unlock(ctx, "retention", "a")
	step("a releases", ok, err, true)
	ok, err = c.Unlock(ctx, "retention", "a")
	step("a releases twice", ok, err, false)

	// A holder that stops renewing (a killed process) loses the lock when
	// its lease ends, and cannot renew or release the next holder's.
	ok, err = c.TryLock(ctx, "retention", "dead", 100*time.Millisecond)
	step("dead takes the lock", ok, err, true)
	testutil.CheckFor(t, 5*time.Second, "the dead holder's lease to end", func() bool {
		ok, err := c.TryLock(ctx, "retention", "b", time.Minute)
		return err == nil && ok
	})
	ok, err = c.RenewLock(ctx, "retention", "dead", time.Minute)
	step("dead renews b's lock", ok, err, false)
	ok, err = c.Unlock(ctx, "retention", "dead")
	step("dead releases b's lock", ok, err, false)
	if h, err := c.LockHolder(ctx, "retention"); err != nil || h != "b" {
		t.Fatalf("holder = %q, %v; want b", h, err)
	}
	// Locks of other jobs are apart.
	ok, err = c.TryLock(ctx, "export", "a", time.Minute)
	step("a takes another job's lock", ok, err, true)
}

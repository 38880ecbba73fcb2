package redisq

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// Locks are leases on a job that one process at a time may run across
// hosts (retention). A lock is a string key holding its holder's token,
// taken with SET NX PX: a holder that dies without releasing it loses it
// when the lease runs out, so the holder renews it (RenewLock) while it
// works, well within the lease.

var (
	scriptLockRenew   = script("lock_renew")
	scriptLockRelease = script("lock_release")
)

// TryLock takes the lock of job for token with a lease of ttl, and reports
// false, without waiting, when another holder has it.
func (c *Client) TryLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error) {
	err := c.rdb.Do(ctx, c.rdb.B().Set().Key(c.keys.Lock(job)).Value(token).Nx().Px(ttl).Build()).Error()
	if isNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", job, err)
	}
	return true, nil
}

// RenewLock extends the lease of job's lock to ttl from now if token still
// holds it; false means the lock was lost (expired, perhaps taken by another).
func (c *Client) RenewLock(ctx context.Context, job, token string, ttl time.Duration) (bool, error) {
	n, err := scriptLockRenew.Exec(ctx, c.rdb, []string{c.keys.Lock(job)},
		[]string{token, strconv.FormatInt(ttl.Milliseconds(), 10)}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("renew lock %s: %w", job, err)
	}
	return n == 1, nil
}

// Unlock releases job's lock if token holds it, and reports whether it did.
func (c *Client) Unlock(ctx context.Context, job, token string) (bool, error) {
	n, err := scriptLockRelease.Exec(ctx, c.rdb, []string{c.keys.Lock(job)}, []string{token}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("unlock %s: %w", job, err)
	}
	return n == 1, nil
}

// LockHolder returns the token holding job's lock, "" if none.
func (c *Client) LockHolder(ctx context.Context, job string) (string, error) {
	v, err := c.rdb.Do(ctx, c.rdb.B().Get().Key(c.keys.Lock(job)).Build()).ToString()
	if isNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("lock holder %s: %w", job, err)
	}
	return v, nil
}

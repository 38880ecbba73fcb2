package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// lockMigrations takes an exclusive flock on path+"-migrate.lock" and returns
// its release. A flock rather than a lock row in the database: it spans
// goose's separate transactions, and the kernel drops it when the process
// dies, so a kill -9 mid-migration never leaves a stale lock behind. It waits
// for another holder until ctx is done, polling (a blocking flock cannot be
// cancelled).
//
// On a read-only file system the lock file cannot be created; the run then
// goes without it: this process cannot write the database either, so it can
// only find the schema current or fail, never half-migrate.
func lockMigrations(ctx context.Context, path string, log *zap.Logger) (unlock func(), err error) {
	name := path + "-migrate.lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o600)
	if errors.Is(err, syscall.EROFS) {
		if f, err = os.Open(name); err != nil {
			log.Debug("sqlite: migrating without the lock file on a read-only file system", zap.String("lock", name))
			return func() {}, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open migration lock: %w", err)
	}
	wait := time.Millisecond
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for the migration lock %s: %w", name, ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	// Closing the file releases the lock.
	return func() { _ = f.Close() }, nil
}

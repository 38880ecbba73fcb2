package wsgateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// keyedLimiters holds one token bucket per key: per device for HTTP ingest,
// which has no connection to hang a limiter on, and per user name and per
// client address for failed logins. Buckets idle long enough to be full
// again are dropped by prune, so the map stays as small as the active keys.
type keyedLimiters struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newKeyedLimiters(r float64, burst int) *keyedLimiters {
	return &keyedLimiters{rate: rate.Limit(r), burst: burst, m: map[string]*rate.Limiter{}}
}

func (l *keyedLimiters) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.m[key]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[key] = lim
	}
	return lim
}

// allow takes n tokens from the key's bucket.
func (l *keyedLimiters) allow(key string, n int, now time.Time) bool {
	return l.get(key).AllowN(now, n)
}

// take takes one token from the key's bucket if it has one now. undo gives
// it back (as far as later takes allow) for an attempt that turned out not
// to count. Taking first, unlike checking empty and counting afterwards,
// holds against many concurrent attempts.
func (l *keyedLimiters) take(key string, now time.Time) (ok bool, undo func()) {
	r := l.get(key).ReserveN(now, 1)
	if !r.OK() {
		return false, func() {}
	}
	if r.DelayFrom(now) > 0 {
		r.CancelAt(now)
		return false, func() {}
	}
	return true, r.Cancel
}

// empty reports whether the key's bucket has no token left, without taking one.
func (l *keyedLimiters) empty(key string, now time.Time) bool {
	l.mu.Lock()
	lim, ok := l.m[key]
	l.mu.Unlock()
	return ok && lim.TokensAt(now) < 1
}

// prune drops the buckets that are full again.
func (l *keyedLimiters) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, d)
		}
	}
}

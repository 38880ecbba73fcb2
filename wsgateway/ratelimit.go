package wsgateway

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ingestLimiters holds one token bucket per device for HTTP ingest, which has
// no connection to hang a limiter on. Buckets idle long enough to be full
// again are dropped by prune, so the map stays as small as the active fleet.
type ingestLimiters struct {
	rate  rate.Limit
	burst int

	mu sync.Mutex
	m  map[string]*rate.Limiter
}

func newIngestLimiters(r float64, burst int) *ingestLimiters {
	return &ingestLimiters{rate: rate.Limit(r), burst: burst, m: map[string]*rate.Limiter{}}
}

// allow takes n tokens from the device's bucket.
func (l *ingestLimiters) allow(device string, n int, now time.Time) bool {
	l.mu.Lock()
	lim, ok := l.m[device]
	if !ok {
		lim = rate.NewLimiter(l.rate, l.burst)
		l.m[device] = lim
	}
	l.mu.Unlock()
	return lim.AllowN(now, n)
}

// prune drops the buckets that are full again.
func (l *ingestLimiters) prune(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for d, lim := range l.m {
		if lim.TokensAt(now) >= float64(l.burst) {
			delete(l.m, d)
		}
	}
}

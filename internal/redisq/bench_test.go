package redisq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
)

// BenchmarkTakeDone measures the queue's share of a worker's batch: take
// 500 items into the processing list, then finish them. One op is one batch.
func BenchmarkTakeDone(b *testing.B) {
	c, _ := open(b)
	ctx := context.Background()
	const batch = 500
	items := make([][]byte, batch)
	raws := make([]string, batch)
	keys := make([]string, batch)
	pad := strings.Repeat("x", 200)
	for i := range items {
		raws[i] = fmt.Sprintf(`{"v":1,"device":"d%d","id":"m%d","type":"location","pad":"%s"}`, i%50, i, pad)
		items[i] = []byte(raws[i])
		keys[i] = redisq.AttemptKey(raws[i])
	}
	b.ResetTimer()
	for range b.N {
		if err := c.Push(ctx, items...); err != nil {
			b.Fatal(err)
		}
		got, err := c.Take(ctx, "w", batch, 0)
		if err != nil || len(got) != batch {
			b.Fatalf("take: %d %v", len(got), err)
		}
		if _, err := c.Done(ctx, "w", got, keys); err != nil {
			b.Fatal(err)
		}
	}
}

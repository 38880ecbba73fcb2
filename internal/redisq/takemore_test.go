package redisq_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
)

// The next batch, taken while one is in hand: TakeMore hands over only
// new items, oldest first, both batches stay in the processing list, and
// finishing the first leaves exactly the second there (Take then hands it
// over again, as after any lost answer).
func TestTakeMoreHandsOverOnlyNewItems(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	var all []string
	for i := range 7 {
		all = append(all, fmt.Sprintf(`{"device":"d1","id":"m%d"}`, i))
		if err := c.Push(ctx, []byte(all[i])); err != nil {
			t.Fatal(err)
		}
	}
	first, err := c.Take(ctx, "w1", 3, 0)
	if err != nil || !slices.Equal(first, all[:3]) {
		t.Fatalf("take: %v %v", first, err)
	}
	second, err := c.TakeMore(ctx, "w1", 3)
	if err != nil || !slices.Equal(second, all[3:6]) {
		t.Fatalf("take more: got %v %v, want %v", second, err, all[3:6])
	}
	if held, err := c.InFlight(ctx, "w1"); err != nil || !slices.Equal(held, all[:6]) {
		t.Fatalf("in flight: %v %v", held, err)
	}
	left, err := c.Done(ctx, "w1", first, nil)
	if err != nil || left != 3 {
		t.Fatalf("done: %d %v, want 3 left", left, err)
	}
	if again, err := c.Take(ctx, "w1", 10, 0); err != nil || !slices.Equal(again, all[3:]) {
		t.Fatalf("take after: got %v %v, want the second batch and the rest %v", again, err, all[3:])
	}
	if got, err := c.TakeMore(ctx, "w1", 3); err != nil || len(got) != 0 {
		t.Fatalf("take more from an empty list: %v %v", got, err)
	}
}

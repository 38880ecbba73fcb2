package redisq

import (
	"context"
	"fmt"
	"strconv"
)

var scriptTakeMore = script("take_more")

// TakeMore moves up to max of the oldest items of the ingest list into the
// worker's processing list, beside what that list holds, and hands over
// just those, oldest first (none when the ingest list is empty; it never
// blocks). A worker calls it for its next batch while the batch in hand is
// being stored, so both are in its processing list and recovered if it
// dies; it calls Take, which hands over whatever else the list holds, as
// soon as it may hold items not in hand (a lost answer, a failed Done).
//
// Each call of the script moves at most ItemsPerCall items. If one fails,
// so does TakeMore: what the calls before it moved is in the processing
// list, not in hand, and the worker's next Take hands it over.
func (c *Client) TakeMore(ctx context.Context, worker string, max int) ([]string, error) {
	var items []string
	for len(items) < max {
		n := min(max-len(items), ItemsPerCall)
		got, err := scriptTakeMore.Exec(ctx, c.rdb,
			[]string{c.keys.Queue(), c.keys.Processing(worker), c.keys.Workers()},
			[]string{strconv.Itoa(n), worker}).AsStrSlice()
		if err != nil && !isNil(err) {
			return nil, fmt.Errorf("queue take more: %w", err)
		}
		items = append(items, got...)
		if len(got) < n {
			break
		}
	}
	return items, nil
}

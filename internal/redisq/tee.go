package redisq

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/rueidis"
)

// Tee puts values on the list key in one pipeline of LPUSHes (all values, in
// order: the first one given is the first a BRPOP consumer gets; at most
// ItemsPerCall per LPUSH) and LTRIM key 0 max-1, so that the list keeps at
// most max entries, the newest, even when nobody reads it. key is used as
// given, without the prefix: it is a list that an outside consumer already
// reads (worker --tee-list). The commands are pipelined, not atomic: if the
// connection fails between them, the list holds up to one batch more than
// max until the next Tee trims it, or only the first part of this one.
func (c *Client) Tee(ctx context.Context, key string, max int, values [][]byte) error {
	if len(values) == 0 {
		return nil
	}
	if max <= 0 {
		return fmt.Errorf("tee %s: max %d must be positive", key, max)
	}
	vals := make([]string, len(values))
	for i, v := range values {
		vals[i] = rueidis.BinaryString(v)
	}
	var cmds rueidis.Commands
	for part := range slices.Chunk(vals, ItemsPerCall) {
		cmds = append(cmds, c.rdb.B().Lpush().Key(key).Element(part...).Build())
	}
	cmds = append(cmds, c.rdb.B().Ltrim().Key(key).Start(0).Stop(int64(max-1)).Build())
	for _, r := range c.rdb.DoMulti(ctx, cmds...) {
		if err := r.Error(); err != nil {
			return fmt.Errorf("tee %s: %w", key, err)
		}
	}
	return nil
}

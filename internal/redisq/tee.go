package redisq

import (
	"context"
	"fmt"

	"github.com/redis/rueidis"
)

// Tee puts values on the list key in one pipeline of LPUSH (all values, in
// order: the first one given is the first a BRPOP consumer gets) and LTRIM
// key 0 max-1, so that the list keeps at most max entries, the newest, even
// when nobody reads it. key is used as given, without the prefix: it is a
// list that an outside consumer already reads (worker --tee-list). The two
// commands are pipelined, not atomic: if the connection fails between them,
// the list holds up to one batch more than max until the next Tee trims it.
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
	res := c.rdb.DoMulti(ctx,
		c.rdb.B().Lpush().Key(key).Element(vals...).Build(),
		c.rdb.B().Ltrim().Key(key).Start(0).Stop(int64(max-1)).Build(),
	)
	for _, r := range res {
		if err := r.Error(); err != nil {
			return fmt.Errorf("tee %s: %w", key, err)
		}
	}
	return nil
}

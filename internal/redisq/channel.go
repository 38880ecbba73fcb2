package redisq

import "context"

// ReceiveChannel calls fn for every message published on channel, a name
// given as is (not under the prefix: it belongs to another producer, such as
// a backend that PUBLISHes positions), until ctx ends, resubscribing after
// connection losses. subscribed, if not nil, is called at each confirmation
// of the subscription: first is true the first time, false after a lost
// connection, when what was published meanwhile is lost; it runs on the
// client's reader and must not block or call Redis.
//
// fn runs on the connection's reader and must not wait for Redis (a Push from
// fn could wait for a reply that this very reader has to read): hand the
// message to another goroutine.
func (c *Client) ReceiveChannel(ctx context.Context, channel string, fn func([]byte), subscribed func(first bool)) {
	c.receive(ctx, channel, fn, subscribed)
}

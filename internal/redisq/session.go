package redisq

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"
)

// sessionKey is the key of a web session: only the SHA-256 of the cookie
// value is stored, so a Redis dump does not hand out sessions.
func (k Keys) sessionKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return k.prefix + ":session:" + hex.EncodeToString(sum[:])
}

// SetSession stores a web session naming user for ttl.
func (c *Client) SetSession(ctx context.Context, id, user string, ttl time.Duration) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Set().Key(c.keys.sessionKey(id)).Value(user).Px(ttl).Build()).Error(); err != nil {
		return fmt.Errorf("session set: %w", err)
	}
	return nil
}

// Session returns the user of a session, "" if there is none.
func (c *Client) Session(ctx context.Context, id string) (string, error) {
	v, err := c.rdb.Do(ctx, c.rdb.B().Get().Key(c.keys.sessionKey(id)).Build()).ToString()
	if isNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("session get: %w", err)
	}
	return v, nil
}

// DeleteSession ends a session.
func (c *Client) DeleteSession(ctx context.Context, id string) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Del().Key(c.keys.sessionKey(id)).Build()).Error(); err != nil {
		return fmt.Errorf("session delete: %w", err)
	}
	return nil
}

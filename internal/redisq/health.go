package redisq

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// StoreOutage is what a worker reports while it cannot write the store, so
// that every gateway's /readyz can say so too.
type StoreOutage struct {
	Worker string `json:"worker"`
	Error  string `json:"error"`
	Since  int64  `json:"since"` // Unix ms
}

// ReportStoreOutage records o for ttl; a worker still in the outage renews
// it at every retry, and it lapses by itself if that worker dies.
func (c *Client) ReportStoreOutage(ctx context.Context, o StoreOutage, ttl time.Duration) error {
	b, err := json.Marshal(o)
	if err != nil {
		return fmt.Errorf("report store outage: %w", err)
	}
	if err := c.rdb.Do(ctx, c.rdb.B().Set().Key(c.keys.StoreOutage()).Value(string(b)).Px(ttl).Build()).Error(); err != nil {
		return fmt.Errorf("report store outage: %w", err)
	}
	return nil
}

// ClearStoreOutage removes the report once the worker that made it wrote to
// the store again; another worker's report stays.
func (c *Client) ClearStoreOutage(ctx context.Context, worker string) error {
	if err := scriptOutageClr.Exec(ctx, c.rdb, []string{c.keys.StoreOutage()}, []string{worker}).Error(); err != nil {
		return fmt.Errorf("clear store outage: %w", err)
	}
	return nil
}

// CurrentStoreOutage returns the outage a worker reports, or nil when none.
func (c *Client) CurrentStoreOutage(ctx context.Context) (*StoreOutage, error) {
	v, err := c.rdb.Do(ctx, c.rdb.B().Get().Key(c.keys.StoreOutage()).Build()).ToString()
	if isNil(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store outage: %w", err)
	}
	var o StoreOutage
	if err := json.Unmarshal([]byte(v), &o); err != nil {
		o = StoreOutage{Error: v}
	}
	return &o, nil
}

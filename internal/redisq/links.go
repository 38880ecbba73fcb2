package redisq

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// LinkValue is the value of a device's entry in the links hash.
func LinkValue(gateway, conn string) string { return gateway + "#" + conn }

// LinkGateway returns the gateway named by a links hash value.
func LinkGateway(value string) string {
	gw, _, _ := strings.Cut(value, "#")
	return gw
}

// SetLink records that conn of gateway holds device and returns the value it
// replaced ("" if none): that older connection must be closed.
func (c *Client) SetLink(ctx context.Context, device, value string) (string, error) {
	old, err := scriptLinkSet.Exec(ctx, c.rdb, []string{c.keys.Links()}, []string{device, value}).ToString()
	if err != nil && !isNil(err) {
		return "", fmt.Errorf("link set %s: %w", device, err)
	}
	return old, nil
}

// EnsureLink sets the link only when the device has none (after Redis lost
// its data, say). It reports whether it set it.
func (c *Client) EnsureLink(ctx context.Context, device, value string) (bool, error) {
	ok, err := c.rdb.Do(ctx, c.rdb.B().Hsetnx().Key(c.keys.Links()).Field(device).Value(value).Build()).AsBool()
	if err != nil {
		return false, fmt.Errorf("link ensure %s: %w", device, err)
	}
	return ok, nil
}

// DeleteLink removes the device's link only if it still is value.
func (c *Client) DeleteLink(ctx context.Context, device, value string) (bool, error) {
	n, err := scriptLinkDel.Exec(ctx, c.rdb, []string{c.keys.Links()}, []string{device, value}).AsInt64()
	if err != nil {
		return false, fmt.Errorf("link delete %s: %w", device, err)
	}
	return n == 1, nil
}

// Links returns the whole links hash: device -> value.
func (c *Client) Links(ctx context.Context) (map[string]string, error) {
	m, err := c.rdb.Do(ctx, c.rdb.B().Hgetall().Key(c.keys.Links()).Build()).AsStrMap()
	if err != nil {
		return nil, fmt.Errorf("links: %w", err)
	}
	return m, nil
}

// GatewayHeartbeat renews a gateway's heartbeat key and reports whether it
// existed before: false after the gateway's first beat or after Redis lost its
// data, when the gateway should assert its links again.
func (c *Client) GatewayHeartbeat(ctx context.Context, gateway string, ttl time.Duration) (bool, error) {
	cmd := c.rdb.B().Set().Key(c.keys.GatewayAlive(gateway)).Value(strconvMS(time.Now())).Get().Px(ttl).Build()
	_, err := c.rdb.Do(ctx, cmd).ToString()
	if isNil(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("gateway heartbeat %s: %w", gateway, err)
	}
	return true, nil
}

// GatewayGone deletes a gateway's heartbeat at a clean shutdown.
func (c *Client) GatewayGone(ctx context.Context, gateway string) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Del().Key(c.keys.GatewayAlive(gateway)).Build()).Error(); err != nil {
		return fmt.Errorf("gateway gone %s: %w", gateway, err)
	}
	return nil
}

// SweepLinks removes the links of gateways whose heartbeat has expired and
// returns the devices it removed.
func (c *Client) SweepLinks(ctx context.Context) ([]string, error) {
	links, err := c.Links(ctx)
	if err != nil {
		return nil, err
	}
	alive := map[string]bool{}
	for _, v := range links {
		alive[LinkGateway(v)] = false
	}
	for gw := range alive {
		n, err := c.rdb.Do(ctx, c.rdb.B().Exists().Key(c.keys.GatewayAlive(gw)).Build()).AsInt64()
		if err != nil {
			return nil, fmt.Errorf("sweep links: %w", err)
		}
		alive[gw] = n == 1
	}
	var removed []string
	for dev, v := range links {
		if alive[LinkGateway(v)] {
			continue
		}
		ok, err := c.DeleteLink(ctx, dev, v)
		if err != nil {
			return removed, fmt.Errorf("sweep links: %w", err)
		}
		if ok {
			removed = append(removed, dev)
		}
	}
	return removed, nil
}

// Link returns the device's link value, "" when it is not connected.
func (c *Client) Link(ctx context.Context, device string) (string, error) {
	v, err := c.rdb.Do(ctx, c.rdb.B().Hget().Key(c.keys.Links()).Field(device).Build()).ToString()
	if isNil(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("link %s: %w", device, err)
	}
	return v, nil
}

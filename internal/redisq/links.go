package redisq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

// A gateway instance is one run of a gateway process: "<id>~<nonce>", its
// configured id and a nonce drawn at start. Links, heartbeat keys and control
// channels name instances, not ids, so that a gateway killed and restarted
// with the same id (a systemd unit with a fixed --id) is told apart from its
// dead predecessor: the newcomer sweeps the predecessor's links at start
// instead of renewing its heartbeat and keeping them forever.
//
// Link values written before instances existed are "<id>#<conn>"; their
// instance is the bare id, which a gateway of that id treats as a
// predecessor like any other.

// NewInstance returns a fresh instance name for gateway id.
func NewInstance(id string) string {
	var b [5]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand)
	return id + "~" + hex.EncodeToString(b[:])
}

// InstanceGateway returns the gateway id of an instance name.
func InstanceGateway(instance string) string {
	id, _, _ := strings.Cut(instance, "~")
	return id
}

// LinkValue is the value of a device's entry in the links hash:
// "<instance>#<conn>".
func LinkValue(instance, conn string) string { return instance + "#" + conn }

// LinkGateway returns the gateway instance named by a links hash value: the
// name of its heartbeat key and of its control channel.
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

// GatewayHeartbeat renews a gateway instance's heartbeat key and reports
// whether it existed before: false after the instance's first beat, after
// Redis lost its data, or after another instance of the same id took over
// its key, when the instance should assert its links again.
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

// GatewayGone deletes a gateway instance's heartbeat: at a clean shutdown, or
// for a dead predecessor whose links a new instance has swept.
func (c *Client) GatewayGone(ctx context.Context, gateway string) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Del().Key(c.keys.GatewayAlive(gateway)).Build()).Error(); err != nil {
		return fmt.Errorf("gateway gone %s: %w", gateway, err)
	}
	return nil
}

// SweepLinks removes the links of dead gateway instances and returns the
// devices it removed. An instance is dead when its heartbeat key is gone, or
// when gone, if not nil, reports true for it (a gateway starting sweeps its
// killed predecessors of the same id this way, without waiting for their
// heartbeats to expire). Each removal is a compare-and-delete: a device that
// reconnected meanwhile keeps its new link.
func (c *Client) SweepLinks(ctx context.Context, gone func(instance string) bool) ([]string, error) {
	links, err := c.Links(ctx)
	if err != nil {
		return nil, fmt.Errorf("sweep links: %w", err)
	}
	dead := map[string]bool{}
	for _, v := range links {
		dead[LinkGateway(v)] = false
	}
	var ask []string
	for gw := range dead {
		if gone != nil && gone(gw) {
			dead[gw] = true
			continue
		}
		ask = append(ask, gw)
	}
	if len(ask) > 0 {
		cmds := make([]rueidis.Completed, len(ask))
		for i, gw := range ask {
			cmds[i] = c.rdb.B().Exists().Key(c.keys.GatewayAlive(gw)).Build()
		}
		for i, r := range c.rdb.DoMulti(ctx, cmds...) {
			n, err := r.AsInt64()
			if err != nil {
				return nil, fmt.Errorf("sweep links: heartbeat of %s: %w", ask[i], err)
			}
			dead[ask[i]] = n == 0
		}
	}
	var removed []string
	for dev, v := range links {
		if !dead[LinkGateway(v)] {
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

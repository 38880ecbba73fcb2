// Package redisq owns all Redis access of devtrack: the ingest list and the
// workers' processing lists, dead letters, device links and gateway
// heartbeats, live channels and last positions. Key names live in keys.go,
// Lua scripts in lua/ (embedded).
package redisq

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/redis/rueidis"
)

//go:embed lua/*.lua
var luaFS embed.FS

func script(name string) *rueidis.Lua {
	src, err := luaFS.ReadFile("lua/" + name + ".lua")
	if err != nil {
		panic(fmt.Sprintf("redisq: missing embedded script %s: %v", name, err))
	}
	return rueidis.NewLuaScript(string(src))
}

var (
	scriptTake      = script("take")
	scriptRecover   = script("recover")
	scriptDone      = script("done")
	scriptDead      = script("dead")
	scriptRequeue   = script("requeue")
	scriptDeadOne   = script("dead_one")
	scriptLinkSet   = script("link_set")
	scriptLinkDel   = script("link_del")
	scriptHsetNewer = script("hset_newer")
	scriptOutageClr = script("outage_clear")
)

// Client is a Redis connection with devtrack's key layout. It is safe for
// concurrent use.
type Client struct {
	rdb  rueidis.Client
	keys Keys
}

// ParseAddr turns the --redis value into client options: "host:port",
// "redis://[user:pass@]host:port[/db]", or several comma-separated addresses
// of a Redis Cluster.
func ParseAddr(addr string) (rueidis.ClientOption, error) {
	addr = strings.TrimSpace(addr)
	if addr == "" {
		return rueidis.ClientOption{}, errors.New("redis address is empty")
	}
	if strings.Contains(addr, "://") {
		opt, err := rueidis.ParseURL(addr)
		if err != nil {
			return opt, fmt.Errorf("redis address %q: %w", addr, err)
		}
		return opt, nil
	}
	var opt rueidis.ClientOption
	for _, a := range strings.Split(addr, ",") {
		a = strings.TrimSpace(a)
		if _, _, err := net.SplitHostPort(a); err != nil {
			return opt, fmt.Errorf("redis address %q: want host:port: %w", a, err)
		}
		opt.InitAddress = append(opt.InitAddress, a)
	}
	return opt, nil
}

// Open connects to Redis. It fails when Redis cannot be reached within the
// context's deadline (or 5 s).
func Open(ctx context.Context, addr, prefix string) (*Client, error) {
	opt, err := ParseAddr(addr)
	if err != nil {
		return nil, err
	}
	opt.DisableCache = true
	// rueidis makes every caller that needs a new connection wait for the
	// one dial in progress, whatever the callers' own deadlines: a
	// subscription redialing without a deadline would hold a request with a
	// 1.5 s deadline for the whole dial timeout. Keep it below the
	// gateway's answer budget (2 s for a frame or a request during a stall).
	opt.Dialer.Timeout = time.Second
	opt.ConnWriteTimeout = 2 * time.Second
	opt.ClientName = "devtrack"
	rdb, err := rueidis.NewClient(opt)
	if err != nil {
		return nil, fmt.Errorf("connect redis %s: %w", addr, err)
	}
	c := &Client{rdb: rdb, keys: NewKeys(prefix)}
	return c, nil
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Do(ctx, c.rdb.B().Ping().Build()).Error(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Keys returns the key layout in use.
func (c *Client) Keys() Keys { return c.keys }

// Redis exposes the underlying client for the few callers (tests, pub/sub
// receivers) that need it.
func (c *Client) Redis() rueidis.Client { return c.rdb }

// Close closes all connections.
func (c *Client) Close() { c.rdb.Close() }

// AttemptKey is the field of an item in the attempts hash: "<device>\n<id>"
// when the item carries both, else the SHA-1 of the raw item. recover.lua
// derives the same key.
func AttemptKey(raw string) string {
	var head struct {
		Device any `json:"device"`
		ID     any `json:"id"`
	}
	if json.Unmarshal([]byte(raw), &head) == nil {
		d, ok1 := head.Device.(string)
		id, ok2 := head.ID.(string)
		if ok1 && ok2 && d != "" && id != "" {
			return d + "\n" + id
		}
	}
	sum := sha1.Sum([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func isNil(err error) bool { return rueidis.IsRedisNil(err) }

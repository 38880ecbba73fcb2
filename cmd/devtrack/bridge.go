package main

import (
	"github.com/devtrack/devtrack/internal/bridge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// bridgeFlags are the flags of devtrack bridge.
type bridgeFlags struct {
	channel, mapping, typ, template, level, id, metrics string
}

func newBridgeCmd(g *globals) *cobra.Command {
	var f bridgeFlags
	cmd := &cobra.Command{
		Use:   "bridge --channel NAME --map device=PATH,lat=PATH,lng=PATH[,...]",
		Short: "Ingest the JSON messages of a Redis channel as frames of registered devices, through a field mapping",
		Long: `Ingest the JSON messages another system publishes on a Redis channel as frames
of registered devices. --map says where each frame field is in a message, as
target=PATH pairs, PATH a dotted JSON path (user.username; points.0.lat).

Locations (--type location, the default): device, lat and lng are required;
id, ts, accuracy, speed, heading, altitude and crs are optional. Numbers may
be JSON numbers or strings holding one. ts is Unix seconds (below 1e11) or
milliseconds, or an RFC 3339 string; without it, the receive time.

Logs (--type log): device, and message=PATH or --message-template 'status
{from} -> {to}' ({PATH} replaced by its value); level=PATH optional, else
--level. Every top-level member no mapping reads is kept in the log's fields.

Ids: a mapped id; else, when ts is mapped, a hash of the message body (the
same message twice is stored once); else a random id. Messages are validated
like device frames; malformed ones and those of unknown or revoked devices
are counted, logged with their reason and never stored. Pub/sub is at most
once: what is published while the bridge is down is lost.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBridge(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.channel, "channel", "", "Redis channel to subscribe to (its name as the publisher spells it, not under --prefix)")
	fl.StringVar(&f.mapping, "map", "", "field mapping: target=PATH pairs, comma-separated (device=user.username,lat=latitude,lng=longitude)")
	fl.StringVar(&f.typ, "type", "location", "frame type the messages become: location or log")
	fl.StringVar(&f.template, "message-template", "", "for --type log without message=PATH: the message, {PATH} replaced by the value at PATH")
	fl.StringVar(&f.level, "level", "info", "for --type log: the level of a message whose level=PATH is unmapped or absent")
	fl.StringVar(&f.id, "id", "", "bridge id, in the items it pushes (default bridge-HOST-PID)")
	fl.StringVar(&f.metrics, "metrics", "", "address to serve Prometheus /metrics on (e.g. :9102); none if empty")
	return cmd
}

func runBridge(cmd *cobra.Command, g *globals, f bridgeFlags) error {
	if f.channel == "" {
		return usagef("--channel is required")
	}
	if f.mapping == "" {
		return usagef("--map is required, e.g. --map device=user.username,lat=latitude,lng=longitude")
	}
	m, err := bridge.ParseMapping(f.mapping, f.typ, f.template, f.level)
	if err != nil {
		return usagef("bridge: %v", err)
	}
	log, err := g.logger()
	if err != nil {
		return err
	}
	defer log.Sync() //nolint:errcheck
	ctx := cmd.Context()
	store, err := g.openStore(ctx, log)
	if err != nil {
		return err
	}
	defer store.Close()
	rdb, err := g.openRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	b, err := bridge.New(bridge.Config{Mapping: m, ID: f.id, Registerer: prometheus.DefaultRegisterer}, rdb, store, log)
	if err != nil {
		return usageError{err}
	}
	stopMetrics, err := serveMetrics(f.metrics, rdb.Ping, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	notifyReady(ctx, log)
	// RunChannel returns after SIGTERM once what it holds is pushed; Redis
	// and the store close after it (defers).
	return b.RunChannel(ctx, rdb, f.channel)
}

package main

import (
	"github.com/devtrack/devtrack/internal/bridge"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
)

// bridgeFlags are the flags of devtrack bridge.
type bridgeFlags struct {
	channel, amqp, queue, mapping, typ, template, level, id, metrics string
	prefetch                                                         int
}

func newBridgeCmd(g *globals) *cobra.Command {
	var f bridgeFlags
	cmd := &cobra.Command{
		Use:   "bridge (--channel NAME | --amqp URL --queue NAME) --map device=PATH,lat=PATH,lng=PATH[,...]",
		Short: "Ingest the JSON messages of a Redis channel or an AMQP queue as frames of registered devices, through a field mapping",
		Long: `Ingest the JSON messages another system publishes on a Redis channel
(--channel), or puts on a RabbitMQ queue (--amqp URL --queue NAME), as frames
of registered devices. --map says where each frame field is in a message, as
target=PATH pairs, PATH a dotted JSON path (user.username; points.0.lat).

Locations (--type location, the default): device, lat and lng are required;
id, ts, accuracy, speed, heading, altitude and crs are optional. Numbers may
be JSON numbers or strings holding one. ts is Unix seconds (below 1e11) or
milliseconds, or an RFC 3339 string; without it, the receive time.

Logs (--type log): device, and message=PATH or --message-template 'status
{from} -> {to}' ({PATH} replaced by its value); level=PATH optional, else
--level. Every top-level member no mapping reads is kept in the log's fields.

Ids: a mapped id; else the AMQP message-id; else, on a queue or when ts is
mapped, a hash of the message body (the same message twice is stored once);
else a random id. Messages are validated like device frames; malformed ones
and those of unknown or revoked devices are counted, logged with their reason
and never stored (on a queue: rejected without requeue).

Delivery: a Redis channel is at most once (what is published while the
bridge is down is lost). An AMQP message is acked once its item is on the
ingest list, so a crash redelivers it, stored once; while Redis is down
messages are nacked and requeued, with backoff.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBridge(cmd, g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.channel, "channel", "", "Redis channel to subscribe to (its name as the publisher spells it, not under --prefix)")
	fl.StringVar(&f.amqp, "amqp", "", "AMQP 0-9-1 broker URL (amqp://user:pass@host:5672/vhost), instead of --channel")
	fl.StringVar(&f.queue, "queue", "", "with --amqp: the queue to consume (it must exist)")
	fl.IntVar(&f.prefetch, "prefetch", bridge.DefaultPrefetch, "with --amqp: messages the broker sends ahead of their acks")
	fl.StringVar(&f.mapping, "map", "", "field mapping: target=PATH pairs, comma-separated (device=user.username,lat=latitude,lng=longitude)")
	fl.StringVar(&f.typ, "type", "location", "frame type the messages become: location or log")
	fl.StringVar(&f.template, "message-template", "", "for --type log without message=PATH: the message, {PATH} replaced by the value at PATH")
	fl.StringVar(&f.level, "level", "info", "for --type log: the level of a message whose level=PATH is unmapped or absent")
	fl.StringVar(&f.id, "id", "", "bridge id, in the items it pushes (default bridge-HOST-PID)")
	fl.StringVar(&f.metrics, "metrics", "", "address to serve Prometheus /metrics on (e.g. :9102); none if empty")
	return cmd
}

func runBridge(cmd *cobra.Command, g *globals, f bridgeFlags) error {
	switch {
	case f.channel == "" && f.amqp == "":
		return usagef("give --channel NAME, or --amqp URL --queue NAME")
	case f.channel != "" && f.amqp != "":
		return usagef("--channel and --amqp exclude each other")
	case f.amqp != "" && f.queue == "":
		return usagef("--amqp needs --queue NAME")
	case f.amqp == "" && f.queue != "":
		return usagef("--queue is for --amqp")
	case f.prefetch < 1:
		return usagef("--prefetch %d: want at least 1", f.prefetch)
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
	store, rdb, closeBoth, err := g.openStoreAndRedis(ctx, log)
	if err != nil {
		return err
	}
	defer closeBoth()
	b, err := bridge.New(bridge.Config{Mapping: m, ID: f.id, Prefetch: f.prefetch, Registerer: prometheus.DefaultRegisterer}, rdb, store, log)
	if err != nil {
		return usageError{err}
	}
	stopMetrics, err := serveMetrics(f.metrics, rdb.Ping, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	notifyReady(ctx, log)
	// Run* return after SIGTERM once what they hold is pushed (and, on a
	// queue, acked); Redis and the store close after them (defers).
	if f.amqp != "" {
		return b.RunAMQP(ctx, f.amqp, f.queue)
	}
	return b.RunChannel(ctx, rdb, f.channel)
}

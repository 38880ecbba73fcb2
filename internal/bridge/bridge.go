package bridge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/internal/devicecache"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ErrUnknownDevice is wrapped by the refusal of a message whose device is
// not registered or is revoked.
var ErrUnknownDevice = errors.New("unknown device")

// Enqueuer puts encoded queue items on the ingest list (redisq.Client).
type Enqueuer interface {
	Push(ctx context.Context, items ...[]byte) error
}

// Devices finds registered devices (storage.Store). Device answers
// storage.ErrNotFound for an unknown id.
type Devices interface {
	Device(ctx context.Context, id string) (storage.Device, error)
}

// Config configures a Bridge. Zero values take the documented defaults.
type Config struct {
	// Mapping turns a message into a frame (ParseMapping). Required.
	Mapping Mapping
	// ID names this bridge in the items it pushes (their "gateway"
	// member). Default bridge-HOST-PID.
	ID string
	// Limits are the frame limits, as the gateway's (zero: the defaults).
	Limits protocol.Limits
	// Timeout bounds one store lookup and one push. Default 5 s.
	Timeout time.Duration
	// ReportEvery is how often the totals are logged when they changed.
	// Default 1 min; negative: never.
	ReportEvery time.Duration
	// Buffer is how many Redis channel messages wait for their push
	// (RunChannel); more are dropped and counted. Default 10,000.
	Buffer int
	// Prefetch is how many AMQP messages the broker sends ahead of their
	// acks (RunAMQP). Default DefaultPrefetch.
	Prefetch int
	// Registerer gets the bridge's metrics; nil registers none.
	Registerer prometheus.Registerer
}

// Device cache bounds, as the worker's: a registered device stays known
// long (devices are revoked, never removed, and a revocation is seen within
// deviceKnownTTL); an unknown one only briefly, so that messages right after
// `devtrack device add` are taken.
const (
	deviceCacheSize  = 100_000
	deviceKnownTTL   = time.Minute
	deviceUnknownTTL = time.Second
)

// Stats are a bridge's totals since it started.
type Stats struct {
	Accepted      int64 // pushed onto the ingest list
	Malformed     int64 // refused: not a valid frame
	UnknownDevice int64 // refused: device not registered or revoked
	Dropped       int64 // Redis channel messages dropped with the buffer full
	Retries       int64 // store or Redis failures, retried
}

// Bridge turns messages into queue items. Its methods are safe for
// concurrent use.
type Bridge struct {
	cfg   Config
	queue Enqueuer
	devs  Devices
	log   *zap.Logger

	accepted, malformed, unknown, dropped, retries atomic.Int64
	m                                              metrics

	devices *devicecache.Cache
}

type metrics struct {
	messages *prometheus.CounterVec
	retries  prometheus.Counter
	lookups  prometheus.Counter
}

// New returns a bridge that pushes onto queue the messages of devices
// found in devs. log may be nil.
func New(cfg Config, queue Enqueuer, devs Devices, log *zap.Logger) (*Bridge, error) {
	if cfg.Mapping.Paths == nil {
		return nil, errors.New("bridge: no mapping")
	}
	if queue == nil || devs == nil {
		return nil, errors.New("bridge: a queue and a device store are required")
	}
	if cfg.ID == "" {
		host, _ := os.Hostname()
		cfg.ID = "bridge-" + host + "-" + strconv.Itoa(os.Getpid())
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.ReportEvery == 0 {
		cfg.ReportEvery = time.Minute
	}
	if cfg.Buffer <= 0 {
		cfg.Buffer = 10_000
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = DefaultPrefetch
	}
	cfg.Limits = cfg.Limits.WithDefaults()
	if log == nil {
		log = zap.NewNop()
	}
	b := &Bridge{cfg: cfg, queue: queue, devs: devs, log: log, devices: devicecache.New(devs, devicecache.Config{
		Size: deviceCacheSize, Known: deviceKnownTTL, Unknown: deviceUnknownTTL, Timeout: cfg.Timeout})}
	b.m = metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "devtrack", Subsystem: "bridge", Name: "messages_total",
			Help: "Bridged messages by result: accepted (on the ingest list), malformed, unknown_device, dropped (Redis channel buffer full).",
		}, []string{"result"}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "devtrack", Subsystem: "bridge", Name: "retries_total",
			Help: "Messages retried because the store or Redis failed.",
		}),
		lookups: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "devtrack", Subsystem: "bridge", Name: "device_lookups_total",
			Help: "Store lookups of a message's device (the rest are answered by the cache).",
		}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{b.m.messages, b.m.retries, b.m.lookups} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("bridge metrics: %w", err)
			}
		}
	}
	return b, nil
}

// Stats returns the totals so far.
func (b *Bridge) Stats() Stats {
	return Stats{Accepted: b.accepted.Load(), Malformed: b.malformed.Load(), UnknownDevice: b.unknown.Load(),
		Dropped: b.dropped.Load(), Retries: b.retries.Load()}
}

// Handle ingests one message. msgID is the transport's id of the message
// (the AMQP message-id), "" if it has none. It returns nil once the item is
// on the ingest list; an error wrapping ErrMalformed or ErrUnknownDevice for
// a refused message (counted and logged here: do not retry it); any other
// error when the store or Redis failed (retry it later).
func (b *Bridge) Handle(ctx context.Context, body []byte, msgID string) error {
	raw, err := b.item(ctx, body, msgID)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		err = b.queue.Push(pctx, raw)
		cancel()
		if err == nil {
			b.accepted.Add(1)
			b.m.messages.WithLabelValues("accepted").Inc()
			return nil
		}
		err = fmt.Errorf("bridge push: %w", err)
	}
	switch {
	case errors.Is(err, ErrMalformed):
		b.malformed.Add(1)
		b.m.messages.WithLabelValues("malformed").Inc()
		b.log.Warn("bridge refused a message", zap.String("reason", err.Error()), zap.ByteString("body", truncate(body, 256)))
	case errors.Is(err, ErrUnknownDevice):
		b.unknown.Add(1)
		b.m.messages.WithLabelValues("unknown_device").Inc()
		b.log.Warn("bridge refused a message", zap.String("reason", err.Error()), zap.ByteString("body", truncate(body, 256)))
	default:
		b.retries.Add(1)
		b.m.retries.Inc()
	}
	return err
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// item validates a message and returns its encoded queue item.
func (b *Bridge) item(ctx context.Context, body []byte, msgID string) ([]byte, error) {
	if len(body) > b.cfg.Limits.MaxFrameBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrMalformed, len(body), b.cfg.Limits.MaxFrameBytes)
	}
	m, err := decodeMessage(body)
	if err != nil {
		return nil, err
	}
	device, err := b.cfg.Mapping.device(m)
	if err != nil {
		return nil, err
	}
	dev, err := b.device(ctx, device)
	if err != nil {
		return nil, err
	}
	id := msgID
	switch {
	case id == "":
		id = bodyID(body)
	case len(id) > b.cfg.Limits.MaxIDLen:
		id = bodyID([]byte(id))
	}
	raw, err := b.cfg.Mapping.build(m, id)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w", device, err)
	}
	now := time.Now()
	// The gateway's parser, as for a frame the device sent itself.
	p := b.cfg.Limits.ParseWith(raw, now, nil, protocol.Options{DefaultCRS: dev.CRS})
	if len(p.Errors) > 0 {
		return nil, fmt.Errorf("device %q: %w: %v", device, ErrMalformed, p.Errors[0])
	}
	if len(p.Items) != 1 {
		return nil, fmt.Errorf("device %q: %w: not a %s frame", device, ErrMalformed, b.cfg.Mapping.Type)
	}
	raws, _, err := protocol.Stamp(device, b.cfg.ID, p.Items, now)
	if err != nil {
		return nil, fmt.Errorf("device %q: %w: %v", device, ErrMalformed, err)
	}
	return raws[0], nil
}

// device returns the registered, unrevoked device id, from the cache or
// the store.
func (b *Bridge) device(ctx context.Context, id string) (storage.Device, error) {
	if len(id) > protocol.MaxDeviceIDLen {
		return storage.Device{}, fmt.Errorf("%w %q: longer than %d bytes", ErrUnknownDevice, id[:32]+"...", protocol.MaxDeviceIDLen)
	}
	d, queried, err := b.devices.Device(ctx, id)
	if queried {
		b.m.lookups.Inc()
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Device{}, fmt.Errorf("%w %q: not registered (devtrack device add %s)", ErrUnknownDevice, id, id)
	case err != nil:
		return storage.Device{}, fmt.Errorf("bridge: look up device %q: %w", id, err)
	case d.RevokedAt != 0:
		return storage.Device{}, fmt.Errorf("%w %q: revoked", ErrUnknownDevice, id)
	}
	return d, nil
}

// report logs the totals every ReportEvery while they change, until ctx
// ends, and once more at the end.
func (b *Bridge) report(ctx context.Context) {
	var last Stats
	logIt := func(msg string) {
		s := b.Stats()
		if s == last && msg != "bridge stopped" {
			return
		}
		last = s
		b.log.Info(msg, zap.Int64("accepted", s.Accepted), zap.Int64("malformed", s.Malformed),
			zap.Int64("unknown_device", s.UnknownDevice), zap.Int64("dropped", s.Dropped), zap.Int64("retries", s.Retries))
	}
	defer logIt("bridge stopped")
	if b.cfg.ReportEvery < 0 {
		<-ctx.Done()
		return
	}
	t := time.NewTicker(b.cfg.ReportEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			logIt("bridge totals")
		}
	}
}

// retryable reports whether Handle's error is worth retrying.
func retryable(err error) bool {
	return err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnknownDevice)
}

// backoff is the wait before retry try (0-based): 100 ms doubling to 5 s.
func backoff(try int) time.Duration {
	d := 100 * time.Millisecond << min(try, 6)
	return min(d, 5*time.Second)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "r-" + hex.EncodeToString(b[:])
}

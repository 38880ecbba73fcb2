package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// globals are the persistent flags every command accepts.
type globals struct {
	redis     string
	store     string
	prefix    string
	logLevel  string
	logFormat string
}

// flagError marks an error from flag parsing (exit 2).
type flagError struct{ error }

func isFlagError(err error) bool {
	var fe flagError
	return errors.As(err, &fe)
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "devtrack",
		Short:         "Device location and log tracking: gateway, worker, archive and live map",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return bindEnv(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return flagError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.redis, "redis", "127.0.0.1:6379", "Redis: host:port, redis://[user:pass@]host:port[/db], or comma-separated cluster addresses")
	pf.StringVar(&g.store, "store", "sqlite://devtrack.db", "archive: sqlite:///abs/path.db, sqlite://rel/path.db or postgres://...")
	pf.StringVar(&g.prefix, "prefix", "devtrack", "Redis key prefix")
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	pf.StringVar(&g.logFormat, "log-format", "auto", "log format: auto (console on a terminal, else JSON), console, json")

	root.AddCommand(
		newGatewayCmd(g),
		newWorkerCmd(g),
		newMigrateCmd(g),
		newDeviceCmd(g),
		newUserCmd(g),
		newLogsCmd(g),
		newQueueCmd(g),
		newSimCmd(g),
		newDemoCmd(g),
		newArchiveCmd(g),
		newBridgeCmd(g),
	)
	return root
}

// bindEnv fills every flag not given on the command line from its
// environment variable: --store-x <- DEVTRACK_STORE_X. Flags win.
func bindEnv(cmd *cobra.Command) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed {
			return
		}
		name := "DEVTRACK_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok {
			if serr := f.Value.Set(v); serr != nil {
				err = usagef("environment %s=%q: %v", name, v, serr)
			}
		}
	})
	return err
}

// logger builds the zap logger: console on a terminal, JSON otherwise.
func (g *globals) logger() (*zap.Logger, error) {
	var level zapcore.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return nil, usagef("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	format := g.logFormat
	if format == "auto" {
		format = "json"
		if fi, err := os.Stderr.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			format = "console"
		}
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.TimeKey = "time"
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	default:
		return nil, usagef("--log-format %q: want auto, console or json", g.logFormat)
	}
	cfg.Level = zap.NewAtomicLevelAt(level)
	cfg.DisableStacktrace = level > zapcore.DebugLevel
	return cfg.Build()
}

// openStore opens and migrates the store. A DSN that does not parse is a
// usage error (exit 2); a store that cannot be opened a runtime one (exit 1).
func (g *globals) openStore(ctx context.Context, log *zap.Logger) (storage.Store, error) {
	s, err := backend.Open(ctx, g.store, log)
	if err != nil {
		if errors.Is(err, backend.ErrBadDSN) {
			return nil, usageError{err}
		}
		return nil, fmt.Errorf("open store %s: %w", redactDSN(g.store), err)
	}
	if err := s.Migrate(ctx); err != nil {
		s.Close()
		if errors.Is(err, storage.ErrSchemaTooNew) {
			return nil, fmt.Errorf("refusing to start on this store: %w", err)
		}
		return nil, fmt.Errorf("migrate store: %w", err)
	}
	return s, nil
}

// openRedis connects to Redis and checks that it answers.
func (g *globals) openRedis(ctx context.Context) (*redisq.Client, error) {
	if _, err := redisq.ParseAddr(g.redis); err != nil {
		return nil, usageError{fmt.Errorf("--redis: %w", err)}
	}
	c, err := redisq.Open(ctx, g.redis, g.prefix)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// redactDSN hides the password of a DSN (postgres://user:pass@host/db) in
// messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return dsn
	}
	return u.Redacted()
}

// openStoreAndRedis opens the store, then Redis, as the long-running roles
// (gateway, worker, bridge) need both; closeBoth closes Redis, then the
// store.
func (g *globals) openStoreAndRedis(ctx context.Context, log *zap.Logger) (storage.Store, *redisq.Client, func(), error) {
	store, err := g.openStore(ctx, log)
	if err != nil {
		return nil, nil, nil, err
	}
	rdb, err := g.openRedis(ctx)
	if err != nil {
		store.Close()
		return nil, nil, nil, err
	}
	return store, rdb, func() { rdb.Close(); store.Close() }, nil
}

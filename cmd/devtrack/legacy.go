package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// legacyFlags are the gateway's flags of the legacy firmware listener.
type legacyFlags struct {
	listen, allow, types, location, reply string
}

func addLegacyFlags(f *pflag.FlagSet, lf *legacyFlags) {
	f.StringVar(&lf.listen, "legacy-listen", "", `address of a listener for legacy firmware: WebSocket on any path, frames {"deviceId":"ID","type":N,"data":{...}}, each accepted one answered with --legacy-reply; a connection needs its device's ?key= (devtrack device legacy-key) unless --legacy-allow; none if empty`)
	f.StringVar(&lf.allow, "legacy-allow", "", "fleet mode: comma-separated CIDRs from which legacy connections need no key and may speak for any registered device (so may anyone on those addresses); connections from other addresses are refused; empty: every connection needs a key")
	f.StringVar(&lf.types, "legacy-types", "4=log", "numeric types of legacy frames: NUMBER=log or NUMBER=location, comma-separated; frames of other types are refused")
	f.StringVar(&lf.location, "legacy-location", "", "data keys of legacy location fields, FIELD=KEY[|KEY...] comma-separated, the first key present wins (default lat=lat|latitude,lng=lng|lon|longitude; accuracy, speed, heading, altitude and crs under their own names)")
	f.StringVar(&lf.reply, "legacy-reply", wsgateway.DefaultLegacyReply, "text message answering each accepted legacy frame")
}

// apply fills cfg from the flags; bad values are usage errors.
func (lf *legacyFlags) apply(cfg *wsgateway.LegacyConfig) error {
	if lf.listen == "" {
		if lf.allow != "" {
			return usagef("--legacy-allow needs --legacy-listen")
		}
		return nil
	}
	cfg.Listen = lf.listen
	var err error
	if cfg.Allow, err = wsgateway.ParseLegacyAllow(lf.allow); err != nil {
		return usagef("--legacy-allow: %v", err)
	}
	if cfg.Types, err = wsgateway.ParseLegacyTypes(lf.types); err != nil {
		return usagef("--legacy-types: %v", err)
	}
	if cfg.Location, err = wsgateway.ParseLegacyLocation(lf.location); err != nil {
		return usagef("--legacy-location: %v", err)
	}
	if lf.reply == "" {
		return usagef("--legacy-reply: the firmware expects a reply; give its text")
	}
	cfg.Reply = lf.reply
	return nil
}

// issueLegacyKey gives the device a new legacy key and returns it; the
// previous key stops working at once.
func issueLegacyKey(ctx context.Context, s storage.Store, id string) (string, error) {
	key := token.New(wsgateway.LegacyKeyPrefix)
	if _, err := s.SetLegacyKey(ctx, id, token.Hash(key)); err != nil {
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return "", fmt.Errorf("no device %q", id)
		case errors.Is(err, storage.ErrRevoked):
			return "", fmt.Errorf("device %q is revoked; add a new device instead", id)
		}
		return "", fmt.Errorf("set legacy key: %w", err)
	}
	return key, nil
}

// printLegacyKey is what device add --legacy-key prints before the token
// line, which stays the last.
func printLegacyKey(out io.Writer, key string) {
	fmt.Fprintf(out, "its legacy key, shown only now (legacy firmware connects with ?key=KEY):\nlegacy key: %s\n", key)
}

func newDeviceLegacyKeyCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "legacy-key ID",
		Short: "Issue a new legacy firmware key (?key= of the legacy listener); prints it alone on the last line (the old key stops working, its connections close within seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				key, err := issueLegacyKey(ctx, s, args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s: new legacy key (any previous one is revoked), shown only now:\n%s\n", safe(args[0]), key)
				return nil
			})
		},
	}
}

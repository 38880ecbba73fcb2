package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/devtrack/devtrack/storage"
)

// newDeviceSetCRSCmd is devtrack device set-crs: the coordinate system of a
// device's locations that name none (storage.Device.CRS), as set by device
// add --crs or the enrolment API.
func newDeviceSetCRSCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "set-crs ID wgs84|gcj02|bd09",
		Short: "Set the coordinate system of a device's locations that name none (a mini-program's are gcj02); gateways apply it to new connections, and to HTTP ingest within --token-cache-ttl",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			crs, ok := storage.ParseDeviceCRS(args[1])
			if !ok {
				return usagef("crs %q: use wgs84, gcj02 or bd09", args[1])
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				if _, err := s.SetDeviceCRS(ctx, args[0], crs); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no device %q", args[0])
					}
					return fmt.Errorf("set crs: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s: locations without crs are read as %s\n", safe(args[0]), args[1])
				return nil
			})
		},
	}
}

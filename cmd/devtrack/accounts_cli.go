package main

// devtrack user edit|passwd and device rename|move|delete: what an admin
// changes in accounts and devices from a shell (the admin API does the same
// over HTTP, wsgateway/users_api.go).

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/devtrack/devtrack/storage"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// parseGroups reads a comma-separated --groups list.
func parseGroups(list string) ([]string, error) {
	gs := []string{}
	for _, gr := range strings.Split(list, ",") {
		if gr = strings.TrimSpace(gr); gr != "" {
			if !storage.ValidName(gr) {
				return nil, usagef("group %q: use 1 to 64 letters, digits and . _ : @ -", gr)
			}
			gs = append(gs, gr)
		}
	}
	return gs, nil
}

// storeRefusal turns the store's ErrInvalid into a message without its
// prefixes: "an operator needs at least one group ...".
func storeRefusal(err error) string {
	msg := strings.TrimSuffix(err.Error(), ": "+storage.ErrInvalid.Error())
	if i := strings.LastIndex(msg, `": `); i >= 0 {
		msg = msg[i+3:]
	}
	return msg
}

func newUserEditCmd(g *globals) *cobra.Command {
	var role, groups string
	cmd := &cobra.Command{
		Use: "edit NAME [--role admin|operator] [--groups g1,g2]",
		Short: "Change a user's role or groups; requests see the change at once, " +
			"open live sockets are closed (4003) within seconds to reconnect with it",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ch storage.UserChange
			if cmd.Flags().Changed("role") {
				if role != storage.RoleAdmin && role != storage.RoleOperator {
					return usagef("--role %q: want admin or operator", role)
				}
				ch.Role = &role
			}
			if cmd.Flags().Changed("groups") {
				gs, err := parseGroups(groups)
				if err != nil {
					return err
				}
				ch.Groups = &gs
			}
			if ch.Role == nil && ch.Groups == nil {
				return usagef("give --role or --groups (or both)")
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				u, err := s.UpdateUser(ctx, args[0], ch)
				switch {
				case errors.Is(err, storage.ErrNotFound):
					return fmt.Errorf("no user %q", args[0])
				case errors.Is(err, storage.ErrInvalid):
					return usagef("%s", storeRefusal(err))
				case err != nil:
					return fmt.Errorf("edit user: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s, groups %q\n", safe(u.Name), u.Role, strings.Join(u.Groups, ","))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", "admin or operator")
	cmd.Flags().StringVar(&groups, "groups", "", "comma-separated groups, replacing the user's (an operator needs one at least)")
	return cmd
}

func newUserPasswdCmd(g *globals) *cobra.Command {
	var clear bool
	cmd := &cobra.Command{
		Use: "passwd NAME",
		Short: "Set or reset a user's web UI password, read from the first line of stdin " +
			"(e.g. echo \"$PW\" | devtrack user passwd ops); --clear removes it. Either ends the user's web sessions " +
			"(their session live sockets close within seconds); the API token stays",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var hash []byte
			if !clear {
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				if hash, err = bcrypt.GenerateFromPassword([]byte(pw), bcrypt.DefaultCost); err != nil {
					return usagef("password: %v", err)
				}
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				err := s.SetUserPassword(ctx, args[0], hash)
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no user %q", args[0])
				}
				if err != nil {
					return fmt.Errorf("set password: %w", err)
				}
				what := "password set"
				if clear {
					what = "password removed (no web UI login)"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: %s\n", safe(args[0]), what)
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&clear, "clear", false, "remove the password instead (the user keeps its API token)")
	return cmd
}

// readPassword reads a password from the first line of r: 8 to 72 bytes
// (bcrypt reads no more), its line ending dropped.
func readPassword(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the password from stdin: %w", err)
	}
	pw := strings.TrimRight(line, "\r\n")
	if len(pw) < 8 || len(pw) > 72 {
		return "", usagef("the password (first line of stdin) must be 8 to 72 bytes, not %d", len(pw))
	}
	return pw, nil
}

// deviceChangeCmd is device rename and device move: one change of a device.
func deviceChangeCmd(g *globals, use, short string, change func(arg string) (storage.DeviceChange, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ch, err := change(args[1])
			if err != nil {
				return err
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				d, err := s.UpdateDevice(ctx, args[0], ch)
				switch {
				case errors.Is(err, storage.ErrNotFound):
					return fmt.Errorf("no device %q", args[0])
				case errors.Is(err, storage.ErrInvalid):
					return usagef("%s", storeRefusal(err))
				case err != nil:
					return fmt.Errorf("change device: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s: name %q, group %q\n", safe(d.ID), d.Name, d.Group)
				return nil
			})
		},
	}
}

func newDeviceRenameCmd(g *globals) *cobra.Command {
	return deviceChangeCmd(g, "rename ID NAME", "Set a device's display name (\"\" for none)",
		func(name string) (storage.DeviceChange, error) {
			if len(name) > 256 {
				return storage.DeviceChange{}, usagef("name is longer than 256 bytes")
			}
			return storage.DeviceChange{Name: &name}, nil
		})
}

func newDeviceMoveCmd(g *globals) *cobra.Command {
	return deviceChangeCmd(g, "move ID GROUP",
		"Move a device to another group (\"\" for none): operators of its old group no longer see it, "+
			"and their open live sockets watching it close (4003) within seconds to reconnect without it",
		func(group string) (storage.DeviceChange, error) {
			if group != "" && !storage.ValidName(group) {
				return storage.DeviceChange{}, usagef("group %q: use 1 to 64 letters, digits and . _ : @ -", group)
			}
			return storage.DeviceChange{Group: &group}, nil
		})
}

func newDeviceDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use: "delete ID",
		Short: "Delete a device with its token, legacy key, share links and whole archive (locations and logs); " +
			"its connections close within seconds. Interrupted, the device stays revoked: run it again to finish",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				res, err := s.DeleteDevice(ctx, args[0])
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no device %q", args[0])
				}
				if err != nil {
					return fmt.Errorf("delete device (it stays revoked; run this again to finish): %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s deleted with %d locations and %d logs\n", safe(args[0]), res.Locations, res.Logs)
				return nil
			})
		},
	}
}

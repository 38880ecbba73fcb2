package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/storage/backend"
	"github.com/spf13/cobra"
	"golang.org/x/crypto/bcrypt"
)

// withStore runs fn with the store open (and migrated).
func (g *globals) withStore(cmd *cobra.Command, fn func(context.Context, storage.Store) error) error {
	log, err := g.logger()
	if err != nil {
		return err
	}
	s, err := g.openStore(cmd.Context(), log)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(cmd.Context(), s)
}

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the store's schema; prints the version before and after",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			defer log.Sync() //nolint:errcheck
			ctx := cmd.Context()
			// Opened without openStore, which migrates: the version before
			// is read first.
			s, err := backend.Open(ctx, g.store, log)
			if err != nil {
				if errors.Is(err, backend.ErrBadDSN) {
					return usageError{err}
				}
				return fmt.Errorf("open store: %w", err)
			}
			defer s.Close()
			before, _, err := s.SchemaVersion(ctx)
			if err != nil {
				// ErrSchemaTooNew says what to do in its own words.
				if errors.Is(err, storage.ErrSchemaTooNew) {
					return err
				}
				return fmt.Errorf("read schema version: %w", err)
			}
			if err := s.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate from schema version %d: %w", before, err)
			}
			after, known, err := s.SchemaVersion(ctx)
			if err != nil {
				return fmt.Errorf("read schema version after migrating: %w", err)
			}
			out := cmd.OutOrStdout()
			if after == before {
				fmt.Fprintf(out, "schema version %d, up to date\n", after)
			} else {
				fmt.Fprintf(out, "schema version %d -> %d (latest %d)\n", before, after, known)
			}
			return nil
		},
	}
}

func newDeviceCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "device", Short: "Register, list, change, revoke and delete devices"}
	var group, name, crs string
	var legacyKey bool
	add := &cobra.Command{
		Use:   "add ID",
		Short: "Register a device; prints its token once, alone on the last line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := args[0]
			if !storage.ValidName(id) {
				return usagef("device id %q: use 1 to 64 letters, digits and . _ : @ - (not first)", id)
			}
			if group != "" && !storage.ValidName(group) {
				return usagef("group %q: use 1 to 64 letters, digits and . _ : @ -", group)
			}
			deviceCRS, ok := storage.ParseDeviceCRS(crs)
			if !ok {
				return usagef("crs %q: use wgs84, gcj02 or bd09", crs)
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				tok := token.New(token.DevicePrefix)
				d := storage.Device{ID: id, Name: name, Group: group, CRS: deviceCRS, CreatedAt: time.Now().UnixMilli()}
				// A revoked id is enrolled again, with the new token.
				_, again, err := s.EnrolDevice(ctx, d, token.Hash(tok))
				if errors.Is(err, storage.ErrExists) {
					return fmt.Errorf("device %q already exists (revoke it first to enrol it again)", id)
				}
				if err != nil {
					return fmt.Errorf("add device: %w", err)
				}
				verb := "added"
				if again {
					verb = "enrolled again"
				}
				var key string
				var keyErr error
				if legacyKey {
					key, keyErr = issueLegacyKey(ctx, s, id)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "device %s %s (group %q); ", id, verb, group)
				if key != "" {
					printLegacyKey(out, key)
				}
				fmt.Fprintf(out, "its token, shown only now:\n%s\n", tok)
				return keyErr
			})
		},
	}
	add.Flags().StringVar(&group, "group", "", "group the device belongs to (operators see their groups' devices)")
	add.Flags().StringVar(&name, "name", "", "display name")
	add.Flags().StringVar(&crs, "crs", "wgs84", "coordinate system of the device's locations that name none: wgs84, gcj02 (a WeChat or uni-app mini-program) or bd09")
	add.Flags().BoolVar(&legacyKey, "legacy-key", false, "also issue a legacy firmware key (?key= of the gateway's legacy listener), printed before the token")

	list := &cobra.Command{
		Use:   "list",
		Short: "List devices",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				devs, err := s.Devices(ctx, nil)
				if err != nil {
					return fmt.Errorf("list devices: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNAME\tGROUP\tCREATED\tSTATUS")
				for _, d := range devs {
					status := "active"
					if d.RevokedAt != 0 {
						status = "revoked " + time.UnixMilli(d.RevokedAt).UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(d.ID), safe(d.Name), safe(d.Group),
						time.UnixMilli(d.CreatedAt).UTC().Format(time.RFC3339), status)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a device's token; its open connections close within 5 s",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				if err := s.RevokeDevice(ctx, args[0]); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no device %q", args[0])
					}
					return fmt.Errorf("revoke device: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s revoked\n", safe(args[0]))
				return nil
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate ID",
		Short: "Replace a device's token; prints the new one alone on the last line (connections with the old one close within seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				tok := token.New(token.DevicePrefix)
				if _, err := s.RotateDeviceToken(ctx, args[0], token.Hash(tok)); err != nil {
					switch {
					case errors.Is(err, storage.ErrNotFound):
						return fmt.Errorf("no device %q", args[0])
					case errors.Is(err, storage.ErrRevoked):
						return fmt.Errorf("device %q is revoked; add a new device instead", args[0])
					}
					return fmt.Errorf("rotate device token: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "device %s: old token revoked; new token, shown only now:\n%s\n", safe(args[0]), tok)
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, revoke, rotate, newDeviceLegacyKeyCmd(g), newDeviceSetCRSCmd(g),
		newDeviceRenameCmd(g), newDeviceMoveCmd(g), newDeviceDeleteCmd(g))
	return cmd
}

func newUserCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users of the API and web UI"}
	var role, groups, password string
	var passwordStdin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Create a user; prints an API token once, alone on the last line",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !storage.ValidName(name) {
				return usagef("user name %q: use 1 to 64 letters, digits and . _ : @ -", name)
			}
			if role != storage.RoleAdmin && role != storage.RoleOperator {
				return usagef("--role %q: want admin or operator", role)
			}
			var gs []string
			for _, gr := range strings.Split(groups, ",") {
				if gr = strings.TrimSpace(gr); gr != "" {
					if !storage.ValidName(gr) {
						return usagef("group %q: use 1 to 64 letters, digits and . _ : @ -", gr)
					}
					gs = append(gs, gr)
				}
			}
			if role == storage.RoleOperator && len(gs) == 0 {
				return usagef("an operator sees only the devices of their groups: give --groups g1,g2")
			}
			if passwordStdin {
				if password != "" {
					return usagef("give --password or --password-stdin, not both")
				}
				pw, err := readPassword(cmd.InOrStdin())
				if err != nil {
					return err
				}
				password = pw
			}
			var pwHash []byte
			if password != "" {
				var err error
				if pwHash, err = bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost); err != nil {
					return usagef("--password: %v", err)
				}
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				tok := token.New(token.UserPrefix)
				u := storage.User{Name: name, Role: role, Groups: gs, CreatedAt: time.Now().UnixMilli()}
				if _, err := s.AddUser(ctx, u, token.Hash(tok), pwHash); err != nil {
					if errors.Is(err, storage.ErrExists) {
						return fmt.Errorf("user %q already exists", name)
					}
					return fmt.Errorf("add user: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s added (%s, groups %q); API token, shown only now:\n%s\n", name, role, strings.Join(gs, ","), tok)
				return nil
			})
		},
	}
	add.Flags().StringVar(&role, "role", storage.RoleOperator, "admin or operator")
	add.Flags().StringVar(&groups, "groups", "", "comma-separated groups an operator may see")
	add.Flags().StringVar(&password, "password", "", "password for the web UI (none if empty); --password-stdin keeps it out of the process list")
	add.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from the first line of stdin (8 to 72 bytes)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				us, err := s.Users(ctx)
				if err != nil {
					return fmt.Errorf("list users: %w", err)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tROLE\tGROUPS\tCREATED\tTOKEN")
				for _, u := range us {
					tokenState := "issued " + time.UnixMilli(u.CreatedAt).UTC().Format(time.RFC3339)
					if u.RevokedAt != 0 {
						tokenState = "replaced " + time.UnixMilli(u.RevokedAt).UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", safe(u.Name), u.Role, safe(strings.Join(u.Groups, ",")),
						time.UnixMilli(u.CreatedAt).UTC().Format(time.RFC3339), tokenState)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke NAME",
		Short: "Revoke a user's API token at once (open live sockets and web sessions end within seconds); " +
			"prints a new token alone on the last line",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				tok := token.New(token.UserPrefix)
				if _, err := s.RevokeUser(ctx, args[0], token.Hash(tok)); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no user %q", args[0])
					}
					return fmt.Errorf("revoke user: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s: old API token revoked, web sessions ended; new API token, shown only now:\n%s\n", safe(args[0]), tok)
				return nil
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user (its token, sessions and open live sockets stop working within seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				if err := s.DeleteUser(ctx, args[0]); err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("no user %q", args[0])
					}
					return fmt.Errorf("delete user: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", safe(args[0]))
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, newUserEditCmd(g), newUserPasswdCmd(g), revoke, del)
	return cmd
}

func newQueueCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "queue", Short: "Inspect the ingest list, in-flight items and dead letters"}
	withRedis := func(cmd *cobra.Command, fn func(context.Context, *redisq.Client) error) error {
		ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
		defer cancel()
		c, err := g.openRedis(ctx)
		if err != nil {
			return err
		}
		defer c.Close()
		return fn(ctx, c)
	}
	stats := &cobra.Command{
		Use: "stats", Short: "Pending, in-flight and dead counts; warns of items on well-known wrong keys", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRedis(cmd, func(ctx context.Context, c *redisq.Client) error {
				st, err := c.Stats(ctx)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "pending: %d\nin_flight: %d\ndead: %d\nworkers: %d\n", st.Pending, st.InFlight, st.Dead, st.Workers)
				for _, k := range slices.Sorted(maps.Keys(st.WrongKeys)) {
					fmt.Fprintf(out, "warning: %d items on %s, a key no worker reads; producers must LPUSH onto %s (the braces are part of the name)\n",
						st.WrongKeys[k], k, c.Keys().Queue())
				}
				return nil
			})
		},
	}
	dead := &cobra.Command{Use: "dead", Short: "Dead letters"}
	var limit int
	deadList := &cobra.Command{
		Use: "list", Short: "List dead letters, newest first, as JSON lines", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRedis(cmd, func(ctx context.Context, c *redisq.Client) error {
				ds, err := c.DeadLetters(ctx, 0, limit)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				for _, d := range ds {
					if err := enc.Encode(d); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	deadList.Flags().IntVar(&limit, "limit", 100, "most entries to list")
	var n int
	requeue := &cobra.Command{
		Use: "requeue", Short: "Put dead letters back on the ingest list, oldest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withRedis(cmd, func(ctx context.Context, c *redisq.Client) error {
				moved, err := c.RequeueDead(ctx, n)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "requeued: %d\n", moved)
				return nil
			})
		},
	}
	requeue.Flags().IntVar(&n, "n", 1000, "most entries to requeue")
	dead.AddCommand(deadList, requeue)
	cmd.AddCommand(stats, dead)
	return cmd
}

package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/devtrack/devtrack/internal/archive"
	"github.com/devtrack/devtrack/storage"
	"github.com/spf13/cobra"
)

func newArchiveCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "archive", Short: "Export old locations and logs to gzip JSONL files, and import them back"}
	cmd.AddCommand(newArchiveExportCmd(g), newArchiveImportCmd(g))
	return cmd
}

func newArchiveExportCmd(g *globals) *cobra.Command {
	var before, to string
	var del bool
	cmd := &cobra.Command{
		Use:   "export --before DATE|RFC3339 --to DIR [--delete]",
		Short: "Write every record older than --before to DIR (one gzip JSONL file per device, day and kind, and manifest.json); a rerun resumes",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if before == "" || to == "" {
				return usagef("archive export needs --before DATE|RFC3339 and --to DIR")
			}
			beforeMS, err := parseBefore(before)
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				cfg := archive.ExportConfig{Dir: to, BeforeMS: beforeMS, Delete: del}
				start := time.Now()
				res, err := archive.Export(ctx, s, cfg, log)
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "archive export: %d files written, %d skipped (already verified), %d records, %d deleted, in %s -> %s\n",
					res.Written, res.Skipped, res.Records, res.Deleted, time.Since(start).Round(time.Millisecond), safe(to))
				if res.Unarchivable > 0 {
					fmt.Fprintf(out, "note: %d records left in the store: they hold strings that are not UTF-8 and JSON cannot carry them\n", res.Unarchivable)
				}
				if !del && res.Undeleted > 0 {
					fmt.Fprintf(out, "note: the records of %d files are still in the store; rerun with --delete to delete them\n", res.Undeleted)
				}
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&before, "before", "", "export records with ts before this: YYYY-MM-DD (midnight UTC) or RFC3339")
	f.StringVar(&to, "to", "", "archive directory (created if missing; a rerun into it resumes)")
	f.BoolVar(&del, "delete", false, "delete each file's records from the store once the file is written, fsynced and verified")
	return cmd
}

func newArchiveImportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import DIR",
		Short: "Store every record of an archive directory (checked against its manifest first); importing twice stores nothing new",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("archive import needs one argument, the archive directory")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			log, err := g.logger()
			if err != nil {
				return err
			}
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				start := time.Now()
				res, err := archive.Import(ctx, s, args[0], log)
				if err != nil {
					// One line, as the contract wants, even when several files are damaged.
					return errors.New(strings.ReplaceAll(err.Error(), "\n", "; "))
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "archive import: %d files, %d records, %d new, %d duplicates, in %s\n",
					res.Files, res.Records, res.Inserted, res.Duplicates, time.Since(start).Round(time.Millisecond))
				if n := len(res.Unregistered); n > 0 {
					fmt.Fprintf(out, "note: %d devices of the archive are not registered here (e.g. %s); their records are imported and can be queried, add them with devtrack device add to let them connect\n",
						n, safe(res.Unregistered[0]))
				}
				return nil
			})
		},
	}
}

// noArgs refuses arguments as a usage error (exit 2).
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

// parseBefore reads --before: a date is midnight UTC of that day.
func parseBefore(s string) (int64, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UnixMilli(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, usagef("--before %q: want YYYY-MM-DD (midnight UTC) or RFC3339 such as 2026-11-30T00:00:00Z", s)
	}
	return t.UnixMilli(), nil
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/storage"
	"github.com/spf13/cobra"
)

func newLogsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "logs", Short: "Browse archived device logs"}
	var q storage.LogQuery
	var since time.Duration
	var format string
	query := &cobra.Command{
		Use:   "query",
		Short: "Print archived logs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "jsonl" {
				return usagef("--format %q: want table or jsonl", format)
			}
			q.Level = strings.ToLower(q.Level)
			if q.Level != "" && !slices.Contains(protocol.Levels, q.Level) {
				return usagef("--level %q: want one of %s", q.Level, strings.Join(protocol.Levels, ", "))
			}
			if since < 0 {
				return usagef("--since must be positive")
			}
			if since > 0 {
				q.FromMS = time.Now().Add(-since).UnixMilli()
			}
			limit := q.Limit
			return g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				out := cmd.OutOrStdout()
				tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
				enc := json.NewEncoder(out)
				if format == "table" {
					fmt.Fprintln(tw, "TIME\tDEVICE\tLEVEL\tMESSAGE\tFIELDS")
				}
				printed := 0
				for printed < limit {
					q.Limit = min(limit-printed, 1000)
					items, next, err := s.Logs(ctx, q)
					if err != nil {
						return fmt.Errorf("query logs: %w", err)
					}
					for _, it := range items {
						if format == "jsonl" {
							if err := enc.Encode(it); err != nil {
								return err
							}
						} else {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", time.UnixMilli(it.TS).UTC().Format("2006-01-02 15:04:05.000"),
								safe(it.Device), it.Level, safe(it.Message), safe(string(it.Fields)))
						}
					}
					printed += len(items)
					if next == "" {
						break
					}
					q.Cursor = next
				}
				return tw.Flush()
			})
		},
	}
	f := query.Flags()
	f.StringVar(&q.Device, "device", "", "only this device")
	f.StringVar(&q.Level, "level", "", "only this level: "+strings.Join(protocol.Levels, ", "))
	f.StringVar(&q.Text, "q", "", "words the message must contain")
	f.DurationVar(&since, "since", 0, "only logs newer than this (e.g. 1h)")
	f.StringVar(&format, "format", "table", "table or jsonl")
	f.IntVar(&q.Limit, "limit", 100, "most lines to print")
	cmd.AddCommand(query)
	return cmd
}

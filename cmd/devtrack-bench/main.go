// Command devtrack-bench runs devtrack's benchmark suite (issue 11) against
// its own redis-server, SQLite files and PostgreSQL, and writes
// BENCHMARKS.md and bench/results.json. scripts/bench builds and runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/devtrack/devtrack/internal/bench"
	"go.uber.org/zap"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devtrack-bench:", err)
		os.Exit(1)
	}
}

func run() error {
	bin := flag.String("devtrack", "", "devtrack binary (required)")
	repo := flag.String("repo", ".", "repository root (for the go test microbenchmarks)")
	quick := flag.Bool("quick", false, "reduced counts, for a run of a few minutes")
	only := flag.String("only", "", "run only these scenarios (comma-separated names; see -list)")
	runs := flag.Int("runs", 3, "runs of each scenario")
	md := flag.String("md", "BENCHMARKS.md", "markdown output")
	js := flag.String("json", "bench/results.json", "JSON output")
	list := flag.Bool("list", false, "list the scenarios and exit")
	keep := flag.Bool("keep", false, "keep the temp dir (process logs, stores) and print its path")
	flag.Parse()
	if *list {
		for _, s := range bench.Scenarios {
			fmt.Printf("%-14s %s\n", s.Name, s.About)
		}
		return nil
	}
	if *bin == "" || *runs < 1 {
		return fmt.Errorf("-devtrack BIN is required and -runs must be positive")
	}
	chosen, err := bench.Select(*only)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log, err := zap.NewDevelopment()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "devtrack-bench-")
	if err != nil {
		return err
	}
	if *keep {
		defer fmt.Println("kept", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	absBin, _ := filepath.Abs(*bin)
	start := time.Now()
	rev := bench.Revision()
	env, err := bench.NewEnv(ctx, absBin, dir, *quick, log)
	if err != nil {
		return err
	}
	defer env.Close()
	res := &bench.Results{}
	var about []string
	for _, s := range chosen {
		log.Sugar().Infof("scenario %s", s.Name)
		t := time.Now()
		if err := s.Run(ctx, env, res, *runs, *repo); err != nil {
			if ctx.Err() != nil {
				return err
			}
			res.Notes = append(res.Notes, fmt.Sprintf("%s failed: %v", s.Name, strings.ReplaceAll(err.Error(), "\n", " ")))
			log.Sugar().Errorf("scenario %s: %v", s.Name, err)
		}
		about = append(about, fmt.Sprintf("`%s` (%s): %s", s.Name, time.Since(t).Round(time.Second), s.About))
	}
	cmd := "scripts/bench"
	if *quick {
		cmd += " --quick"
	}
	if *only != "" {
		cmd += " --only " + *only
	}
	rep := bench.Report{Command: cmd, Revision: rev, Quick: *quick, Runs: *runs, Started: start, Elapsed: time.Since(start), Scenario: about}
	if err := res.WriteJSON(*js); err != nil {
		return err
	}
	if err := res.WriteMarkdown(*md, rep); err != nil {
		return err
	}
	fmt.Print(res.Markdown())
	fmt.Printf("\nwrote %s and %s in %s\n", *md, *js, time.Since(start).Round(time.Second))
	return nil
}

package main

import (
	"context"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/devtrack/devtrack/devclient"
	"github.com/devtrack/devtrack/internal/fleet"
	"github.com/devtrack/devtrack/internal/protocol"
	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
	"github.com/spf13/cobra"
)

// simConfig are the flags of devtrack sim.
type simConfig struct {
	gateway  string
	devices  int
	rate     float64
	duration time.Duration
	prefix   string
	group    string
	logEvery int
}

func newSimCmd(g *globals) *cobra.Command {
	var sc simConfig
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "Simulate devices over the real protocol and report acks and latency",
		Long: `sim registers --devices devices in the store (named <prefix>-0001...), connects
each to the gateway's device socket and sends locations (and every --log-every
frames a log) at --rate frames per second per device for --duration. It prints
sent, acked, errors and ack latency percentiles.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if sc.devices < 1 || sc.rate <= 0 || sc.duration <= 0 {
				return usagef("--devices, --rate and --duration must be positive")
			}
			u, err := url.Parse(sc.gateway)
			if err != nil || u.Host == "" {
				return usagef("--gateway %q: want a URL like http://127.0.0.1:8080", sc.gateway)
			}
			switch u.Scheme {
			case "http", "ws":
				u.Scheme = "ws"
			case "https", "wss":
				u.Scheme = "wss"
			default:
				return usagef("--gateway %q: scheme must be http, https, ws or wss", sc.gateway)
			}
			u.Path = strings.TrimSuffix(u.Path, "/") + "/ws/device"
			if sc.prefix == "" {
				sc.prefix = fmt.Sprintf("sim%d", time.Now().Unix()%1_000_000)
			}
			var tokens []string
			err = g.withStore(cmd, func(ctx context.Context, s storage.Store) error {
				for i := range sc.devices {
					tok := token.New(token.DevicePrefix)
					d := storage.Device{ID: fmt.Sprintf("%s-%04d", sc.prefix, i+1), Name: "simulated", Group: sc.group, CreatedAt: time.Now().UnixMilli()}
					if err := s.AddDevice(ctx, d, token.Hash(tok)); err != nil {
						return fmt.Errorf("register simulated device: %w", err)
					}
					tokens = append(tokens, tok)
				}
				return nil
			})
			if err != nil {
				return err
			}
			rep := runSim(cmd.Context(), sc, u.String(), tokens)
			rep.print(cmd.OutOrStdout())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sc.gateway, "gateway", "http://127.0.0.1:8080", "gateway base URL")
	f.IntVar(&sc.devices, "devices", 10, "simulated devices")
	f.Float64Var(&sc.rate, "rate", 1, "frames per second per device")
	f.DurationVar(&sc.duration, "duration", 10*time.Second, "how long to send")
	f.StringVar(&sc.prefix, "device-prefix", "", "device id prefix (default sim<time>)")
	f.StringVar(&sc.group, "group", "sim", "group of the simulated devices")
	f.IntVar(&sc.logEvery, "log-every", 10, "every Nth frame is a log line (0: none)")
	return cmd
}

// simReport is what sim prints.
type simReport struct {
	sent, acked, errors int64
	unacked             int
	elapsed             time.Duration
	latencies           []time.Duration
}

func (r simReport) print(w interface{ Write([]byte) (int, error) }) {
	slices.Sort(r.latencies)
	pct := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(math.Ceil(p*float64(len(r.latencies))))-1)]
	}
	secs := r.elapsed.Seconds()
	fmt.Fprintf(w, "sent: %d\nacked: %d\nerrors: %d\nunacked: %d\nelapsed: %s\nacked_per_second: %.0f\nack_latency_p50: %s\nack_latency_p99: %s\nack_latency_max: %s\n",
		r.sent, r.acked, r.errors, r.unacked, r.elapsed.Round(time.Millisecond), float64(r.acked)/secs,
		pct(0.50), pct(0.99), pct(1))
}

func runSim(ctx context.Context, sc simConfig, wsURL string, tokens []string) simReport {
	var sent, acked, errs atomic.Int64
	var mu sync.Mutex
	lat := make([]time.Duration, 0, 1024)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	clients := make([]*devclient.Client, len(tokens))
	var wg sync.WaitGroup
	for i, tok := range tokens {
		c := devclient.New(devclient.Config{
			URL: wsURL, Token: tok,
			OnAck: func(_ string, d time.Duration) {
				acked.Add(1)
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			},
			OnError: func(devclient.FrameError) { errs.Add(1) },
		})
		clients[i] = c
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Run(ctx)
		}()
	}
	start := time.Now()
	sendCtx, stopSend := context.WithTimeout(ctx, sc.duration)
	defer stopSend()
	var senders sync.WaitGroup
	for i, c := range clients {
		senders.Add(1)
		go func() {
			defer senders.Done()
			simDevice(sendCtx, sc.rate, sc.logEvery, i, fleet.Shanghai, c, &sent)
		}()
	}
	senders.Wait()
	// Give the last acks a moment to arrive.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && acked.Load()+errs.Load() < sent.Load() && ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cancel()
	wg.Wait()
	unacked := 0
	for _, c := range clients {
		unacked += c.Pending()
	}
	mu.Lock()
	defer mu.Unlock()
	return simReport{sent: sent.Load(), acked: acked.Load(), errors: errs.Load(), unacked: unacked, elapsed: elapsed, latencies: lat}
}

// simDevice drives one simulated courier (internal/fleet) around center:
// one location every 1/rate seconds, and every logEvery-th frame a log line
// (the courier's own, or a checkpoint line); with logEvery 0, the courier's
// log lines as they happen.
func simDevice(ctx context.Context, rate float64, logEvery int, n int, center fleet.Point, c *devclient.Client, sent *atomic.Int64) {
	courier := fleet.NewCourier(uint64(n)+uint64(time.Now().UnixNano()), center, 4000)
	interval := time.Duration(float64(time.Second) / rate)
	t := time.NewTicker(interval)
	defer t.Stop()
	send := func(f devclient.Frame) {
		if _, err := c.Send(f); err == nil {
			sent.Add(1)
		}
	}
	var backlog []protocol.Log
	for i := 1; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		loc := courier.Step(interval)
		backlog = append(backlog, courier.Logs()...)
		switch {
		case logEvery == 0:
			send(devclient.Frame{Type: protocol.TypeLocation, Data: loc})
			for _, l := range backlog {
				send(devclient.Frame{Type: protocol.TypeLog, Data: l})
			}
			backlog = backlog[:0]
		case i%logEvery == 0:
			l := protocol.Log{Level: "info", Message: fmt.Sprintf("checkpoint %d reached", i)}
			if len(backlog) > 0 {
				l, backlog = backlog[0], backlog[1:]
			}
			send(devclient.Frame{Type: protocol.TypeLog, Data: l})
		default:
			send(devclient.Frame{Type: protocol.TypeLocation, Data: loc})
		}
	}
}

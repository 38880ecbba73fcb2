// Command devclient is a small device built on package devclient, the
// starting point for Go firmware: it connects to a devtrack gateway with a
// device token, sends one location and one log line, answers the commands
// "ping" and "echo", prints what the gateway acks and refuses, and stays
// connected until SIGINT or SIGTERM.
//
//	devtrack device add truck-7    # prints the device's token on its last line
//	go run ./examples/devclient -gateway ws://localhost:8080/ws/device -token TOKEN
//
// Then send it a command from the admin UI, or with an admin or operator
// API token:
//
//	curl -H "Authorization: Bearer $API_TOKEN" -d '{"name":"ping"}' \
//	    http://localhost:8080/api/v1/devices/truck-7/commands
//
// The README's "For firmware teams: devclient" section shows the same
// program in short.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/devtrack/devtrack/devclient"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program without its process: it returns the exit code, 0 once
// ctx ends, 1 if the token is refused, 2 for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("devclient", flag.ContinueOnError)
	flags.SetOutput(stderr)
	gateway := flags.String("gateway", "ws://localhost:8080/ws/device", "the gateway's device WebSocket URL")
	token := flags.String("token", "", "the device's token (default $DEVTRACK_DEVICE_TOKEN)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *token == "" {
		*token = os.Getenv("DEVTRACK_DEVICE_TOKEN")
	}
	if *token == "" || flags.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: devclient [-gateway URL] -token TOKEN (or DEVTRACK_DEVICE_TOKEN)")
		return 2
	}
	out := log.New(stdout, "", log.Ltime)

	c := devclient.New(devclient.Config{
		URL:   *gateway,
		Token: *token,
		OnState: func(connected bool, err error) {
			if connected {
				out.Printf("connected to %s", *gateway)
			} else if ctx.Err() == nil {
				out.Printf("disconnected (%v); reconnecting", err)
			}
		},
		OnAck: func(id string, latency time.Duration) {
			out.Printf("acked %s after %s", id, latency.Round(time.Microsecond))
		},
		// Only frames refused for good get here: unavailable and
		// rate_limited ones are resent by the client.
		OnError: func(e devclient.FrameError) {
			out.Printf("refused: %v", e)
		},
		OnCommand: func(cmd devclient.Command) devclient.CommandResult {
			out.Printf("command %s: %s %s", cmd.ID, cmd.Name, cmd.Args)
			switch cmd.Name {
			case "ping":
				return devclient.CommandResult{OK: true, Data: json.RawMessage(`{"pong":true}`)}
			case "echo":
				return devclient.CommandResult{OK: true, Data: cmd.Args}
			default:
				return devclient.CommandResult{Error: fmt.Sprintf("unknown command %q (this device knows ping and echo)", cmd.Name)}
			}
		},
	})

	// Frames sent before Run wait for the connection; each is resent, with
	// its id, until the gateway acks it.
	for _, f := range []devclient.Frame{
		{Type: devclient.TypeLocation, Data: devclient.Location{
			Lat: 31.2304, Lng: 121.4737, Accuracy: new(12.5), Speed: new(3.2), Heading: new(90.0)}},
		{Type: devclient.TypeLog, Data: devclient.Log{
			Level: "warn", Message: "door 2 opened", Fields: map[string]any{"door": 2}}},
	} {
		id, err := c.Send(f)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		out.Printf("sent %s %s", f.Type, id)
	}

	// Run returns nil once ctx ends, or devclient.ErrUnauthorized at once
	// for a wrong or revoked token.
	if err := c.Run(ctx); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	if n := c.Pending(); n > 0 {
		out.Printf("stopped with %d frames not acked (they are not kept across runs)", n)
	} else {
		out.Printf("stopped")
	}
	return 0
}

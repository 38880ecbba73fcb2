// Command legacy-firmware speaks the protocol of hardware that predates
// devtrack and cannot be reflashed: it connects to the gateway's legacy
// listener with its device key, sends {"deviceId":ID,"type":4,"data":{...}}
// log frames (no token, a numeric type, any keys in data) and expects the
// text reply log_upload_response to each, as it did from the PHP socket
// server it replaces. Commands arrive as JSON text; it prints them.
//
//	devtrack device add D123 --legacy-key     # prints "legacy key: dtl_..."
//	devtrack gateway --legacy-listen :9502 ...
//	go run ./examples/legacy-firmware -url 'ws://localhost:9502/?key=dtl_...' -device D123
//
// In fleet mode (devtrack gateway --legacy-allow 10.0.0.0/8) the key is
// left out of the URL. The README's "Legacy firmware" section has the rest.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// frame is what the firmware sends: its own shape, not devtrack's.
type frame struct {
	DeviceID string         `json:"deviceId"`
	Type     int            `json:"type"`
	Data     map[string]any `json:"data"`
}

// run is the program without its process: the exit code, 0 when count logs
// were answered (or ctx ended), 1 when the gateway refused or went away, 2
// for bad flags.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("legacy-firmware", flag.ContinueOnError)
	flags.SetOutput(stderr)
	url := flags.String("url", "ws://localhost:9502/?key=", "the legacy listener's URL, with ?key= of the device")
	device := flags.String("device", "D123", "the device id the firmware puts in every frame")
	count := flags.Int("count", 3, "logs to send, 0 for one every -every until stopped")
	every := flags.Duration("every", time.Second, "time between logs")
	reply := flags.String("reply", "log_upload_response", "the text the firmware expects for each frame")
	if err := flags.Parse(args); err != nil || flags.NArg() > 0 {
		return 2
	}
	ws, resp, err := websocket.DefaultDialer.DialContext(ctx, *url, nil)
	if err != nil {
		if resp != nil {
			fmt.Fprintf(stderr, "connect: %s (HTTP %d): wrong key, or an address outside --legacy-allow\n", err, resp.StatusCode)
		} else {
			fmt.Fprintf(stderr, "connect: %v\n", err)
		}
		return 1
	}
	defer ws.Close()
	go func() { <-ctx.Done(); ws.Close() }()

	answered := make(chan struct{}, 16)
	readDone := make(chan error, 1)
	go func() {
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				readDone <- err
				return
			}
			if string(msg) == *reply {
				answered <- struct{}{}
				continue
			}
			// Anything else is a command: {"type":"command","deviceId",...}.
			var cmd map[string]any
			if json.Unmarshal(msg, &cmd) == nil && cmd["type"] == "command" {
				fmt.Fprintf(stdout, "command %v: %v %v\n", cmd["id"], cmd["name"], cmd["args"])
				continue
			}
			fmt.Fprintf(stdout, "unexpected message %q\n", msg)
		}
	}()

	for i := 1; *count == 0 || i <= *count; i++ {
		f := frame{DeviceID: *device, Type: 4, Data: map[string]any{
			"msg": fmt.Sprintf("door cycle %d", i), "door": i % 4, "battery": fmt.Sprintf("%d%%", 100-i),
		}}
		b, _ := json.Marshal(f)
		if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
			fmt.Fprintf(stderr, "send: %v\n", err)
			return 1
		}
		select {
		case <-answered:
			fmt.Fprintf(stdout, "log %d answered\n", i)
		case err := <-readDone:
			if ctx.Err() != nil {
				return 0
			}
			fmt.Fprintf(stderr, "gateway closed the connection: %v\n", err)
			return 1
		case <-time.After(5 * time.Second):
			fmt.Fprintf(stderr, "log %d: no %q within 5 s (refused: see the gateway's log)\n", i, *reply)
			return 1
		case <-ctx.Done():
			return 0
		}
		if *count == 0 || i < *count {
			select {
			case <-time.After(*every):
			case <-ctx.Done():
				return 0
			}
		}
	}
	return 0
}

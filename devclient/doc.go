// Package devclient is the device side of the devtrack protocol for Go
// programs: firmware, device gateways, simulators. A Client holds one
// device's WebSocket to a devtrack gateway and sends that device's locations
// and logs so that each one is stored exactly once, across disconnects and
// gateway restarts. devtrack sim and devtrack demo use it.
//
// # What a Client guarantees
//
//   - Acks. A frame is delivered when the gateway acks it, which it does only
//     once the frame is durably on the ingest list. Config.OnAck is told, with
//     the time since the frame was last sent.
//   - Resend. A frame stays pending from Send until its ack, and every pending
//     frame is sent again after each reconnect, in the order of Send, with the
//     same id. Frames refused as CodeUnavailable or CodeRateLimited stay
//     pending and are sent again after Config.RetryAfter.
//   - Idempotent ids. Every frame carries an id (Send makes one up when
//     Frame.ID is empty), and the gateway stores a (device, id) once, so a
//     resend never creates a duplicate.
//   - Backoff. A lost connection is dialled again after an exponential
//     backoff from Config.MinBackoff to Config.MaxBackoff, with jitter, so that
//     a fleet that lost its gateway does not come back all at once. A refused
//     token ends Run with ErrUnauthorized instead of retrying.
//
// What it does not do: pending frames are held in memory, without a bound,
// and are lost with the process. A program that must not lose them across a
// restart keeps them itself, with ids of its own, and sends them again on
// start; the ids make that safe. Frames refused for good (CodeInvalidFrame
// and the like) are dropped and reported to Config.OnError. Two clients with
// the same token replace each other's connection (close code 4000), so give
// each device its own token.
//
// # Use
//
//	c := devclient.New(devclient.Config{
//		URL:     "ws://gateway:8080/ws/device",
//		Token:   token,
//		OnError: func(e devclient.FrameError) { log.Print(e) },
//	})
//	go c.Run(ctx) // until ctx ends
//	id, err := c.Send(devclient.Frame{Type: devclient.TypeLocation,
//		Data: devclient.Location{Lat: 31.2304, Lng: 121.4737, Accuracy: new(12.5)}})
//
// Send may be called before Run and from any goroutine: a frame sent while
// the client is disconnected waits, pending, for the next connection.
// Downlink commands are answered by Config.OnCommand.
//
// The callbacks (OnAck, OnError, OnCommand, OnState) are called one at a time
// from the goroutine that runs Run. While one runs, no ack or command is
// read, so they should return quickly; they may call Send and Pending.
//
// The frames themselves are described in the README's "Device protocol"
// section; examples/devclient is a complete program.
package devclient

package wsgateway_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/devtrack/devtrack/wsgateway"
)

// A device socket that answers pings but sends no frame is closed with 4002
// after DeviceIdleTimeout and its link removed; frames keep it open.
func TestDeviceIdleTimeoutClosesASocketWithoutFrames(t *testing.T) {
	const idle = 800 * time.Millisecond
	e := newEnv(t, wsgateway.Config{ID: "gw-a", PingPeriod: 100 * time.Millisecond, PongWait: 5 * time.Second, DeviceIdleTimeout: idle})
	d := e.mustDial(e.addDevice("d1", "g"))
	// Frames every 200 ms for three timeouts: acked, open all along.
	var last time.Time
	for i := range 12 {
		last = time.Now()
		d.send(loc(fmt.Sprintf("m%d", i), 1, 1))
		if r := d.read(); r.Type != "ack" {
			t.Fatalf("frame %d: %+v; want ack", i, r)
		}
		time.Sleep(200 * time.Millisecond) //nolint:forbidigo // the device's pace
	}
	if e.link("d1") == "" {
		t.Fatal("link gone while frames arrive")
	}
	// Then only pongs (ReadMessage answers the pings): closed with 4002.
	_ = d.ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := d.ws.ReadMessage()
	var ce *websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Text == "" {
		t.Fatalf("idle socket: %v; want close 4002 with a reason", err)
	}
	if took := time.Since(last); took < idle {
		t.Errorf("closed %v after the last frame; want about %v", took, idle)
	}
	checkFor(t, 5*time.Second, "link removed", func() bool { return e.link("d1") == "" })
}

package wsgateway

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var devicesIdleClosed = promauto.NewCounter(prometheus.CounterOpts{
	Namespace: "devtrack", Subsystem: "gateway", Name: "devices_idle_closed_total",
	Help: "Device WebSockets closed after DeviceIdleTimeout without a frame (4002).",
})

// closeIdle closes a device socket that sent no frame for
// DeviceIdleTimeout. Pings answered by the device's WebSocket stack (pongs)
// do not count: a socket that lingers without traffic (firmware stuck
// with its TCP connection alive) is closed, its link removed, so the device
// shows offline and offline alerts can fire.
const closeIdle = 4002

// idleCloser closes c after DeviceIdleTimeout without a frame; reset
// re-arms it at each frame, stop ends it. A zero timeout is no closer.
type idleCloser struct{ t *time.Timer }

func (c *deviceConn) startIdleCloser() idleCloser {
	d := c.g.cfg.DeviceIdleTimeout
	if d <= 0 {
		return idleCloser{}
	}
	return idleCloser{time.AfterFunc(d, func() {
		devicesIdleClosed.Inc()
		c.close(closeIdle, "no frame for "+d.String())
	})}
}

func (i idleCloser) reset(d time.Duration) {
	if i.t != nil {
		i.t.Reset(d)
	}
}

func (i idleCloser) stop() {
	if i.t != nil {
		i.t.Stop()
	}
}

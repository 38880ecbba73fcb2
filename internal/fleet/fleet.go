// Package fleet simulates devices that move and log like a courier fleet: each
// one drives along city blocks (east-west, then north-south legs) from stop to
// stop at street speeds, waits at each stop, and logs at several levels as it
// goes (arrivals and deliveries, GPS fixes, a draining battery, the odd
// upload failure). devtrack demo and devtrack sim use it.
package fleet

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/devtrack/devtrack/internal/protocol"
)

// Point is a WGS-84 position.
type Point struct{ Lat, Lng float64 }

// Shanghai is the default centre of the simulated city.
var Shanghai = Point{Lat: 31.2304, Lng: 121.4737}

const metersPerDegLat = 111_320.0

// metersPerDegLng is the length of one degree of longitude at lat.
func metersPerDegLng(lat float64) float64 { return metersPerDegLat * math.Cos(lat*math.Pi/180) }

// Courier is one simulated device. It is not safe for concurrent use.
type Courier struct {
	rng     *rand.Rand
	center  Point
	radius  float64 // meters
	pos     Point
	target  Point
	speed   float64 // m/s on the current leg
	heading float64 // degrees, 0 = north
	wait    time.Duration
	stop    int
	parcel  int
	battery float64 // percent
	pending []protocol.Log
}

// NewCourier places a courier at a random point within radius meters of
// center, with its start logged. seed makes its route repeatable.
func NewCourier(seed uint64, center Point, radius float64) *Courier {
	c := &Courier{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), center: center, radius: radius}
	c.pos = c.randomPoint()
	c.battery = 40 + c.rng.Float64()*60
	c.parcel = 1000 + c.rng.IntN(9000)
	c.nextStop()
	// A courier app logs its start, so a fleet has log lines from its first
	// second (the demo's Logs page, and its test, need not wait for chance).
	c.pending = append(c.pending, protocol.Log{Level: "info",
		Message: fmt.Sprintf("shift started, battery %.0f%%", c.battery), Fields: fields(map[string]any{"battery": math.Round(c.battery)})})
	return c
}

func (c *Courier) randomPoint() Point {
	r := c.radius * math.Sqrt(c.rng.Float64())
	a := c.rng.Float64() * 2 * math.Pi
	return Point{
		Lat: c.center.Lat + r*math.Cos(a)/metersPerDegLat,
		Lng: c.center.Lng + r*math.Sin(a)/metersPerDegLng(c.center.Lat),
	}
}

// nextStop picks the next stop 300 m to 3 km away, inside the area, and a
// street speed between 15 and 50 km/h.
func (c *Courier) nextStop() {
	for range 20 {
		p := c.randomPoint()
		if d := c.distance(c.pos, p); d > 300 && d < 3000 {
			c.target = p
			break
		}
		c.target = p
	}
	c.speed = (15 + c.rng.Float64()*35) / 3.6
	c.stop++
}

func (c *Courier) distance(a, b Point) float64 {
	dy := (b.Lat - a.Lat) * metersPerDegLat
	dx := (b.Lng - a.Lng) * metersPerDegLng(a.Lat)
	return math.Hypot(dx, dy)
}

// Position is where the courier is now.
func (c *Courier) Position() Point { return c.pos }

// Step advances the courier by dt and returns its location report. At a stop
// it stands still (speed 0) for 5 to 30 s, then sets off to the next one.
func (c *Courier) Step(dt time.Duration) protocol.Location {
	c.battery = math.Max(1, c.battery-dt.Seconds()*0.002)
	if c.wait > 0 {
		c.wait -= dt
		if c.wait <= 0 {
			c.nextStop()
		}
		return c.report(0)
	}
	move := c.speed * dt.Seconds() * (0.8 + 0.4*c.rng.Float64())
	// East-west leg first, then north-south: a street grid, not a crow.
	dx := (c.target.Lng - c.pos.Lng) * metersPerDegLng(c.pos.Lat)
	dy := (c.target.Lat - c.pos.Lat) * metersPerDegLat
	switch {
	case math.Abs(dx) > 1:
		step := math.Min(move, math.Abs(dx))
		c.pos.Lng += math.Copysign(step, dx) / metersPerDegLng(c.pos.Lat)
		c.heading = 90
		if dx < 0 {
			c.heading = 270
		}
	case math.Abs(dy) > 1:
		step := math.Min(move, math.Abs(dy))
		c.pos.Lat += math.Copysign(step, dy) / metersPerDegLat
		c.heading = 0
		if dy < 0 {
			c.heading = 180
		}
	default:
		c.arrive()
		return c.report(0)
	}
	return c.report(c.speed)
}

func (c *Courier) arrive() {
	c.wait = time.Duration(5+c.rng.IntN(26)) * time.Second
	c.parcel++
	c.pending = append(c.pending, protocol.Log{Level: "info",
		Message: fmt.Sprintf("arrived at stop %d, delivered parcel P-%d", c.stop, c.parcel),
		Fields:  fields(map[string]any{"stop": c.stop, "parcel": fmt.Sprintf("P-%d", c.parcel)})})
	if c.battery < 20 {
		c.pending = append(c.pending, protocol.Log{Level: "warn",
			Message: fmt.Sprintf("battery low: %.0f%%", c.battery), Fields: fields(map[string]any{"battery": math.Round(c.battery)})})
	}
}

func (c *Courier) report(speed float64) protocol.Location {
	acc := 3 + c.rng.Float64()*12
	h := c.heading
	alt := 4 + c.rng.Float64()*3
	return protocol.Location{Lat: c.pos.Lat, Lng: c.pos.Lng, Accuracy: &acc, Speed: &speed, Heading: &h, Altitude: &alt}
}

// Logs returns the log lines due since the last call: the courier's own
// events, plus now and then a GPS debug line, a weak-signal warning or an
// upload error, so that every level shows up.
func (c *Courier) Logs() []protocol.Log {
	out := c.pending
	c.pending = nil
	switch r := c.rng.Float64(); {
	case r < 0.02:
		out = append(out, protocol.Log{Level: "debug",
			Message: fmt.Sprintf("gps fix: %d satellites, hdop %.1f", 6+c.rng.IntN(8), 0.6+c.rng.Float64()*2)})
	case r < 0.025:
		out = append(out, protocol.Log{Level: "warn",
			Message: fmt.Sprintf("weak cellular signal: %d dBm", -95-c.rng.IntN(20))})
	case r < 0.027:
		out = append(out, protocol.Log{Level: "error",
			Message: "photo upload failed: timeout after 10s, will retry", Fields: fields(map[string]any{"parcel": fmt.Sprintf("P-%d", c.parcel)})})
	}
	return out
}

func fields(m map[string]any) json.RawMessage {
	b, _ := json.Marshal(m)
	return b
}

package fleet

import (
	"testing"
	"time"
)

// A courier drives at street speeds along grid legs, stays inside its area,
// stops at its stops, and logs at more than one level.
func TestCourierMovesPlausibly(t *testing.T) {
	const radius = 3000.0
	c := NewCourier(7, Shanghai, radius)
	prev := c.Position()
	levels := map[string]int{}
	stopped := 0
	for i := range 3600 {
		loc := c.Step(time.Second)
		p := Point{loc.Lat, loc.Lng}
		moved := c.distance(prev, p)
		if moved > 50/3.6*1.2+0.01 {
			t.Fatalf("step %d: moved %.1f m in 1 s, faster than 60 km/h", i, moved)
		}
		if prev.Lat != p.Lat && prev.Lng != p.Lng {
			t.Fatalf("step %d: moved diagonally from %v to %v, want grid legs", i, prev, p)
		}
		if d := c.distance(Shanghai, p); d > radius*1.5 {
			t.Fatalf("step %d: %.0f m from the centre, area radius %.0f m", i, d, radius)
		}
		if *loc.Speed == 0 {
			stopped++
		}
		for _, l := range c.Logs() {
			levels[l.Level]++
			if l.Message == "" {
				t.Fatalf("empty log message")
			}
		}
		prev = p
	}
	if stopped == 0 || stopped == 3600 {
		t.Errorf("stood still %d of 3600 s; want stops between drives", stopped)
	}
	if levels["info"] == 0 || len(levels) < 3 {
		t.Errorf("log levels in an hour: %v; want info and at least two others", levels)
	}
}

// A new courier logs its start at once.
func TestCourierLogsItsStart(t *testing.T) {
	c := NewCourier(1, Shanghai, 2000)
	c.Step(time.Second)
	logs := c.Logs()
	if len(logs) == 0 || logs[0].Level != "info" || logs[0].Message == "" {
		t.Fatalf("first logs %+v; want the start logged at info", logs)
	}
}

// The same seed gives the same route.
func TestCourierIsRepeatable(t *testing.T) {
	a, b := NewCourier(42, Shanghai, 2000), NewCourier(42, Shanghai, 2000)
	for range 100 {
		la, lb := a.Step(time.Second), b.Step(time.Second)
		if la.Lat != lb.Lat || la.Lng != lb.Lng {
			t.Fatalf("same seed, different positions: %v vs %v", la, lb)
		}
	}
}

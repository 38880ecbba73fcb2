package trips

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// drive scripts a track: legs of driving (metres north and east at a speed)
// and waiting, sampled every interval, with GPS jitter up to jitterM.
type drive struct {
	t        *testing.T
	rng      *rand.Rand
	ts       int64 // ms
	lat, lng float64
	interval time.Duration
	jitterM  float64
	accuracy float64
	points   []Point
}

func newDrive(t *testing.T, start time.Time) *drive {
	return &drive{t: t, rng: rand.New(rand.NewPCG(1, 2)), ts: start.UnixMilli(),
		lat: 31.2304, lng: 121.4737, interval: 5 * time.Second, jitterM: 8, accuracy: 10}
}

const metresPerDegree = 6378137 * math.Pi / 180 // orb's Earth radius

func (d *drive) offset(northM, eastM float64) (float64, float64) {
	return d.lat + northM/metresPerDegree, d.lng + eastM/(metresPerDegree*math.Cos(d.lat*math.Pi/180))
}

func (d *drive) record() {
	a := d.rng.Float64() * 2 * math.Pi
	r := d.rng.Float64() * d.jitterM
	lat, lng := d.offset(r*math.Sin(a), r*math.Cos(a))
	d.points = append(d.points, Point{TS: d.ts, Lat: lat, Lng: lng, Accuracy: d.accuracy})
}

// wait stays put for dur, recording every interval (not the first instant:
// the previous leg recorded it).
func (d *drive) wait(dur time.Duration) {
	for end := d.ts + dur.Milliseconds(); d.ts < end; {
		d.ts += d.interval.Milliseconds()
		d.record()
	}
}

// go drives northM then eastM at speed m/s.
func (d *drive) move(northM, eastM, speed float64) {
	dist := math.Hypot(northM, eastM)
	steps := int(math.Ceil(dist / (speed * d.interval.Seconds())))
	for k := 1; k <= steps; k++ {
		f := 1 / float64(steps-k+1) // the rest of the leg, in equal parts
		lat, lng := d.offset(northM*f, eastM*f)
		northM, eastM = northM*(1-f), eastM*(1-f)
		d.lat, d.lng = lat, lng
		d.ts += d.interval.Milliseconds()
		d.record()
	}
}

func within(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %.1f, want %.1f ± %.1f", what, got, want, tol)
	}
}

// The scripted drive of the issue: parked 10 min, drive 2 km (1.2 km north,
// 0.8 km east), stop 10 min, drive 3 km (east then south), park 10 min.
func TestDeriveScriptedDrive(t *testing.T) {
	start := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	d := newDrive(t, start)
	d.record()
	d.wait(10 * time.Minute)
	parkLat, parkLng := d.lat, d.lng
	d.move(1200, 0, 12)
	d.move(0, 800, 12)
	stopLat, stopLng := d.lat, d.lng
	d.wait(10 * time.Minute)
	d.move(0, 1000, 15)
	d.move(-2000, 0, 15)
	endLat, endLng := d.lat, d.lng
	d.wait(10 * time.Minute)

	res := Derive(d.points, Config{})
	if len(res.Stops) != 3 || len(res.Trips) != 2 {
		t.Fatalf("got %d stops and %d trips, want 3 and 2: %+v", len(res.Stops), len(res.Trips), res)
	}
	for i, want := range []struct{ lat, lng, durS float64 }{
		{parkLat, parkLng, 600}, {stopLat, stopLng, 600}, {endLat, endLng, 600},
	} {
		s := res.Stops[i]
		within(t, "stop duration", s.DurationS, want.durS, 10) // up to two samples at its edges
		within(t, "stop offset from the true spot", distance(Point{Lat: s.Lat, Lng: s.Lng}, Point{Lat: want.lat, Lng: want.lng}), 0, 8)
	}
	for i, want := range []struct{ distM, durS float64 }{{2000, 2000.0 / 12}, {3000, 3000.0 / 15}} {
		tr := res.Trips[i]
		within(t, "trip distance", tr.DistanceM, want.distM, 0.02*want.distM)
		within(t, "trip duration", tr.DurationS, want.durS, 12)
		if tr.StartTS != res.Stops[i].EndTS || tr.EndTS != res.Stops[i+1].StartTS {
			t.Errorf("trip %d runs %d..%d, want from the end of stop %d (%d) to the start of the next (%d)",
				i, tr.StartTS, tr.EndTS, i, res.Stops[i].EndTS, res.Stops[i+1].StartTS)
		}
	}

	days := Summarize(res, start.UnixMilli(), d.ts, time.UTC)
	if len(days) != 1 || days[0].Day != "2026-12-01" || days[0].Trips != 2 || days[0].Stops != 3 {
		t.Fatalf("summary = %+v", days)
	}
	within(t, "day distance", days[0].DistanceM, res.Trips[0].DistanceM+res.Trips[1].DistanceM, 1e-6)
	within(t, "day moving time", days[0].MovingS, res.Trips[0].DurationS+res.Trips[1].DurationS, 1e-6)
	within(t, "day stopped time", days[0].StoppedS, 3*600, 30)
}

// Jitter while parked (accuracy 20 m, jitter up to 18 m) is not distance, and
// a red light of two minutes is not a stop.
func TestDeriveJitterAndShortWaits(t *testing.T) {
	d := newDrive(t, time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC))
	d.jitterM, d.accuracy = 18, 20
	d.record()
	d.move(1000, 0, 10)
	d.wait(2 * time.Minute)
	d.move(1000, 0, 10)
	d.wait(6 * time.Minute)
	res := Derive(d.points, Config{})
	if len(res.Stops) != 1 || len(res.Trips) != 1 {
		t.Fatalf("got %d stops and %d trips, want 1 and 1: %+v", len(res.Stops), len(res.Trips), res)
	}
	within(t, "trip distance", res.Trips[0].DistanceM, 2000, 60)
}

// A gap longer than MaxGap splits a trip and is not counted; a parked device
// that goes silent and comes back at the same place is one stop.
func TestDeriveGaps(t *testing.T) {
	start := time.Date(2026, 12, 1, 23, 50, 0, 0, time.UTC)
	d := newDrive(t, start)
	d.jitterM = 0
	d.record()
	d.move(1000, 0, 10)
	d.ts += (30 * time.Minute).Milliseconds() // silence, and it is elsewhere after it
	d.lat += 0.05
	d.record()
	d.move(1000, 0, 10)
	d.wait(time.Minute)
	d.ts += time.Hour.Milliseconds() // parked and off for an hour
	d.record()
	d.wait(time.Minute)
	res := Derive(d.points, Config{})
	if len(res.Trips) != 2 || len(res.Stops) != 1 {
		t.Fatalf("got %d trips and %d stops, want 2 and 1: %+v", len(res.Trips), len(res.Stops), res)
	}
	within(t, "first trip", res.Trips[0].DistanceM, 1000, 1)
	within(t, "second trip", res.Trips[1].DistanceM, 1000, 1)
	within(t, "stop", res.Stops[0].DurationS, 62*60, 10)

	// The first trip starts at 23:50 and lasts 100 s; the rest is on 12-02.
	days := Summarize(res, start.UnixMilli(), d.ts, time.UTC)
	if len(days) != 2 || days[0].Trips != 1 || days[1].Trips != 1 || days[1].Stops != 1 {
		t.Fatalf("summary = %+v", days)
	}
	within(t, "12-01 distance", days[0].DistanceM, 1000, 1)
	within(t, "12-02 distance", days[1].DistanceM, 1000, 1)
}

func TestSummarizeSplitsAtMidnight(t *testing.T) {
	midnight := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixMilli()
	d := newDrive(t, time.UnixMilli(midnight-50_000))
	d.jitterM = 0
	d.record()
	d.move(1000, 0, 10) // 100 s, half of it before midnight
	res := Derive(d.points, Config{})
	days := Summarize(res, midnight-86_400_000, midnight+1, time.UTC)
	if len(days) != 2 {
		t.Fatalf("summary = %+v", days)
	}
	within(t, "before midnight", days[0].DistanceM, 500, 1)
	within(t, "after midnight", days[1].DistanceM, 500, 1)
	within(t, "moving before", days[0].MovingS, 50, 0.01)
	within(t, "moving after", days[1].MovingS, 50, 0.01)
}

// In a zone that skips midnight (Santiago, 2026-09-06: 00:00 -> 01:00),
// that day begins at 01:00 and still holds its own distance.
func TestSummarizeWhereMidnightIsSkipped(t *testing.T) {
	loc, err := time.LoadLocation("America/Santiago")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 9, 5, 23, 59, 10, 0, loc)
	d := newDrive(t, start)
	d.jitterM = 0
	d.record()
	d.move(1000, 0, 10) // 100 s: 50 s on the 5th, 50 s on the 6th
	days := Summarize(Derive(d.points, Config{}), start.UnixMilli(), d.ts, loc)
	if len(days) != 2 || days[0].Day != "2026-09-05" || days[1].Day != "2026-09-06" {
		t.Fatalf("summary = %+v", days)
	}
	within(t, "on the 5th", days[0].DistanceM, 500, 1)
	within(t, "on the 6th", days[1].DistanceM, 500, 1)
}

func TestDeriveDropsBadPoints(t *testing.T) {
	res := Derive([]Point{
		{TS: 0, Lat: math.NaN(), Lng: 0}, {TS: 1, Lat: 91, Lng: 0}, {TS: 2, Lat: 0, Lng: 0, Accuracy: 5000},
	}, Config{})
	if len(res.Trips) != 0 || len(res.Stops) != 0 {
		t.Fatalf("got %+v", res)
	}
}

// FuzzDerive checks the invariants on arbitrary tracks: no panic; stops and
// trips in time order, not overlapping, long enough, with finite non-negative
// numbers; the daily sums match the trips.
func FuzzDerive(f *testing.F) {
	// Santiago skips or repeats an hour around midnight at its DST changes.
	santiago, err := time.LoadLocation("America/Santiago")
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0, 10, 0, 0, 0, 10, 5, 5, 0, 10, 200, 0})
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, data []byte) {
		var pts []Point
		var ts int64
		lat, lng := 52.0, 13.0
		// Each 6 bytes: time step (int16, s; negative steps test sorting),
		// north and east steps (int8, ×10 m), accuracy (m).
		for ; len(data) >= 6; data = data[6:] {
			ts += int64(int16(uint16(data[0])<<8|uint16(data[1]))) * 1000
			lat += float64(int8(data[2])) * 10 / metresPerDegree
			lng += float64(int8(data[3])) * 10 / metresPerDegree
			pts = append(pts, Point{TS: ts, Lat: lat, Lng: lng, Accuracy: float64(data[4])})
		}
		cfg := Config{}.withDefaults()
		res := Derive(pts, cfg)
		for _, s := range res.Stops {
			if s.EndTS-s.StartTS < cfg.StopMinDuration.Milliseconds() || s.Points < 1 {
				t.Fatalf("short stop %+v", s)
			}
		}
		var dist float64
		for _, tr := range res.Trips {
			if tr.EndTS < tr.StartTS || tr.Points < 2 || !(tr.DistanceM >= 0) || math.IsInf(tr.DistanceM, 0) {
				t.Fatalf("bad trip %+v", tr)
			}
			dist += tr.DistanceM
		}
		for i := 1; i < len(res.Stops); i++ {
			if res.Stops[i].StartTS < res.Stops[i-1].EndTS {
				t.Fatalf("stops overlap: %+v", res.Stops)
			}
		}
		for i := 1; i < len(res.Trips); i++ {
			if res.Trips[i].StartTS < res.Trips[i-1].EndTS {
				t.Fatalf("trips overlap: %+v", res.Trips)
			}
		}
		// A trip may touch a stop at a shared point, never reach inside it.
		for _, s := range res.Stops {
			for _, tr := range res.Trips {
				if tr.StartTS < s.EndTS && tr.EndTS > s.StartTS {
					t.Fatalf("trip %+v overlaps stop %+v", tr, s)
				}
			}
		}
		if len(pts) == 0 {
			return
		}
		lo, hi := pts[0].TS, pts[0].TS
		for _, p := range pts {
			lo, hi = min(lo, p.TS), max(hi, p.TS)
		}
		for _, loc := range []*time.Location{time.UTC, santiago} {
			var sum float64
			for _, d := range Summarize(res, lo, hi, loc) {
				sum += d.DistanceM
			}
			if math.Abs(sum-dist) > 1e-6*max(1, dist) {
				t.Fatalf("days in %s sum to %f m, trips to %f m", loc, sum, dist)
			}
		}
	})
}

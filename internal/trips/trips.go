// Package trips derives stops and trips from a device's track and sums them
// up per day. It owns the thresholds (Config) and nothing else: no storage,
// no HTTP. Distances are great-circle (haversine) distances from
// github.com/paulmach/orb/geo on WGS-84 coordinates.
//
// The derivation, in order:
//  1. Points with coordinates outside WGS-84, or an accuracy worse than
//     MaxAccuracyM, are dropped; the rest are sorted by time.
//  2. Stops: a stop starts at a point and lasts while the following points
//     stay within StopRadiusM of it; if that run lasts at least
//     StopMinDuration, it is a stop (its position is the run's centroid).
//     A gap in reporting inside such a run (a parked device switched off)
//     is part of the stop.
//  3. Trips: the points between two stops (or before the first, after the
//     last) are a trip, from the last point of the stop it leaves to the first
//     point of the stop it reaches. A gap longer than MaxGap between two points
//     of a trip ends it and starts a new one after the gap: the route across
//     the gap is unknown, so it counts neither distance nor moving time.
//  4. A stop's edges are trimmed: the run is measured from its first point,
//     which may be the last sample of the approach, up to StopRadiusM short of
//     the spot, and it holds the first samples of the departure. Points
//     farther than StopRadiusM/2 from the stop's centroid at either end go to
//     the trips, as long as the rest still lasts StopMinDuration.
//  5. Distance: a step is counted once the device has moved farther from the
//     last counted point than the two points' accuracies together (their
//     circles of uncertainty no longer overlap; at least MinStepM), so GPS
//     jitter while crawling or waiting at a light is not summed up as
//     distance. A trip with fewer than two points is dropped.
package trips

import (
	"math"
	"slices"
	"time"

	"github.com/paulmach/orb"
	"github.com/paulmach/orb/geo"
)

// Config holds the thresholds. The zero value means the defaults; each field
// documents its own.
type Config struct {
	// StopRadiusM is how far (m) a device may drift and still be stopped.
	// Default 50 m: above the jitter of a phone or tracker outdoors (5-20 m),
	// below a city block.
	StopRadiusM float64
	// StopMinDuration is how long a device must stay within StopRadiusM for a
	// stop. Default 5 minutes: longer than a red light or a traffic jam's
	// crawl, shorter than a delivery.
	StopMinDuration time.Duration
	// MaxGap is the longest silence inside a trip; a longer one splits it.
	// Default 10 minutes.
	MaxGap time.Duration
	// MaxAccuracyM drops points reported with a worse accuracy (m), such as
	// cell-tower fixes. Default 100 m. Points without an accuracy are kept.
	MaxAccuracyM float64
	// MinStepM is the smallest movement counted as distance when the points
	// carry no accuracy. Default 5 m.
	MinStepM float64
}

// Defaults, see Config.
const (
	DefaultStopRadiusM     = 50
	DefaultStopMinDuration = 5 * time.Minute
	DefaultMaxGap          = 10 * time.Minute
	DefaultMaxAccuracyM    = 100
	DefaultMinStepM        = 5
)

func (c Config) withDefaults() Config {
	if c.StopRadiusM <= 0 {
		c.StopRadiusM = DefaultStopRadiusM
	}
	if c.StopMinDuration <= 0 {
		c.StopMinDuration = DefaultStopMinDuration
	}
	if c.MaxGap <= 0 {
		c.MaxGap = DefaultMaxGap
	}
	if c.MaxAccuracyM <= 0 {
		c.MaxAccuracyM = DefaultMaxAccuracyM
	}
	if c.MinStepM <= 0 {
		c.MinStepM = DefaultMinStepM
	}
	return c
}

// Point is one position: Unix milliseconds, WGS-84 degrees, accuracy in
// metres (0 when unknown).
type Point struct {
	TS       int64
	Lat, Lng float64
	Accuracy float64
}

// Stop is a stay: from its first to its last point, at the centroid.
type Stop struct {
	StartTS   int64   `json:"start_ts"`
	EndTS     int64   `json:"end_ts"`
	DurationS float64 `json:"duration_s"`
	Lat       float64 `json:"lat"`
	Lng       float64 `json:"lng"`
	Points    int     `json:"points"`
}

// Trip is the movement between two stops (or the edges of the track, or a gap).
type Trip struct {
	StartTS   int64   `json:"start_ts"`
	EndTS     int64   `json:"end_ts"`
	DurationS float64 `json:"duration_s"`
	DistanceM float64 `json:"distance_m"`
	StartLat  float64 `json:"start_lat"`
	StartLng  float64 `json:"start_lng"`
	EndLat    float64 `json:"end_lat"`
	EndLng    float64 `json:"end_lng"`
	Points    int     `json:"points"`

	steps []step // for Summarize: each counted stretch of the trip
}

// step is a stretch of a trip between two points, with the distance counted
// for it (0 for jitter that has not yet moved past the accuracy).
type step struct {
	fromTS, toTS int64
	distanceM    float64
}

// Result is the derivation of one track, both lists in time order.
type Result struct {
	Trips []Trip `json:"trips"`
	Stops []Stop `json:"stops"`
}

// Derive finds the stops and trips of one device's points (in any order).
func Derive(points []Point, cfg Config) Result {
	cfg = cfg.withDefaults()
	pts := clean(points, cfg)
	res := Result{Trips: []Trip{}, Stops: []Stop{}}
	radius := cfg.StopRadiusM
	minStay := cfg.StopMinDuration.Milliseconds()

	moveStart := 0 // first point of the current movement run
	for i := 0; i < len(pts); {
		j := i + 1
		for j < len(pts) && distance(pts[i], pts[j]) <= radius {
			j++
		}
		if pts[j-1].TS-pts[i].TS < minStay {
			if j == len(pts) {
				break // a later anchor ends there too, sooner: no stop left
			}
			i++
			continue
		}
		i, j = trimStop(pts, i, j, radius/2, minStay)
		// pts[i:j] is a stop. The movement before it ends at its first point.
		res.Trips = appendTrips(res.Trips, pts[moveStart:i+1], cfg)
		res.Stops = append(res.Stops, stopOf(pts[i:j]))
		moveStart = j - 1 // the trip after it leaves from its last point
		i = j
	}
	res.Trips = appendTrips(res.Trips, pts[moveStart:], cfg)
	return res
}

// clean drops unusable points and sorts the rest by time (stable, so equal
// times keep their order).
func clean(points []Point, cfg Config) []Point {
	pts := make([]Point, 0, len(points))
	for _, p := range points {
		if !(p.Lat >= -90 && p.Lat <= 90 && p.Lng >= -180 && p.Lng <= 180) { // also NaN
			continue
		}
		if p.Accuracy > cfg.MaxAccuracyM || math.IsNaN(p.Accuracy) {
			continue
		}
		if p.Accuracy < 0 {
			p.Accuracy = 0
		}
		pts = append(pts, p)
	}
	slices.SortStableFunc(pts, func(a, b Point) int {
		switch {
		case a.TS < b.TS:
			return -1
		case a.TS > b.TS:
			return 1
		}
		return 0
	})
	return pts
}

func distance(a, b Point) float64 {
	return geo.Distance(orb.Point{a.Lng, a.Lat}, orb.Point{b.Lng, b.Lat})
}

// trimStop gives the edges of a stop run pts[i:j] back to the trips: the
// run is measured from its first point, which may be the last sample of the
// approach (up to StopRadiusM short of the spot), and it keeps the first
// samples of the departure. Points farther than edgeM from the run's centroid
// are trimmed from both ends as long as the rest lasts minStay.
func trimStop(pts []Point, i, j int, edgeM float64, minStay int64) (int, int) {
	c := stopOf(pts[i:j])
	centre := Point{Lat: c.Lat, Lng: c.Lng}
	for j-i > 2 && distance(pts[i], centre) > edgeM && pts[j-1].TS-pts[i+1].TS >= minStay {
		i++
	}
	for j-i > 2 && distance(pts[j-1], centre) > edgeM && pts[j-2].TS-pts[i].TS >= minStay {
		j--
	}
	return i, j
}

func stopOf(pts []Point) Stop {
	var lat, lng float64
	for _, p := range pts {
		lat += p.Lat
		lng += p.Lng
	}
	n := float64(len(pts))
	first, last := pts[0], pts[len(pts)-1]
	// The centroid of points within StopRadiusM of each other: a plain mean
	// is fine, except across the antimeridian, where the first point is used.
	c := Stop{StartTS: first.TS, EndTS: last.TS, Lat: lat / n, Lng: lng / n, Points: len(pts)}
	if slices.ContainsFunc(pts, func(p Point) bool { return math.Abs(p.Lng-first.Lng) > 180 }) {
		c.Lng = first.Lng
	}
	c.DurationS = float64(c.EndTS-c.StartTS) / 1000
	return c
}

// appendTrips adds the trips of one movement run: split at gaps longer than
// MaxGap, each with at least two points.
func appendTrips(trips []Trip, pts []Point, cfg Config) []Trip {
	maxGap := cfg.MaxGap.Milliseconds()
	start := 0
	for k := 1; k <= len(pts); k++ {
		if k < len(pts) && pts[k].TS-pts[k-1].TS <= maxGap {
			continue
		}
		if k-start >= 2 {
			trips = append(trips, tripOf(pts[start:k], cfg))
		}
		start = k
	}
	return trips
}

func tripOf(pts []Point, cfg Config) Trip {
	first, last := pts[0], pts[len(pts)-1]
	t := Trip{
		StartTS: first.TS, EndTS: last.TS, DurationS: float64(last.TS-first.TS) / 1000,
		StartLat: first.Lat, StartLng: first.Lng, EndLat: last.Lat, EndLng: last.Lng,
		Points: len(pts),
	}
	ref := first // the last counted point
	prevTS := first.TS
	for k, p := range pts[1:] {
		d := distance(ref, p)
		if d > max(ref.Accuracy+p.Accuracy, cfg.MinStepM) || k == len(pts)-2 {
			// The last point always counts, so the trip ends where its stop
			// begins.
			t.DistanceM += d
			t.steps = append(t.steps, step{prevTS, p.TS, d})
			ref = p
		} else {
			t.steps = append(t.steps, step{prevTS, p.TS, 0})
		}
		prevTS = p.TS
	}
	return t
}

// Day is the summary of one calendar day.
type Day struct {
	Day       string  `json:"day"` // YYYY-MM-DD in the summary's location
	DistanceM float64 `json:"distance_m"`
	MovingS   float64 `json:"moving_s"`  // time in trips
	StoppedS  float64 `json:"stopped_s"` // time in stops
	Trips     int     `json:"trips"`     // trips that started this day
	Stops     int     `json:"stops"`     // stops that started this day
}

// Summarize sums a Result per calendar day in loc, for every day from the one
// holding fromMS to the one holding toMS (days without data are zero). A trip
// or stop over midnight is split at midnight, its distance in proportion to
// time within each step.
func Summarize(r Result, fromMS, toMS int64, loc *time.Location) []Day {
	if loc == nil {
		loc = time.UTC
	}
	days := []Day{}
	index := map[string]int{}
	dayStart := func(ms int64, plusDays int) time.Time {
		return dayStart(time.UnixMilli(ms).In(loc), plusDays)
	}
	at := func(ms int64) *Day {
		key := time.UnixMilli(ms).In(loc).Format(time.DateOnly)
		i, ok := index[key]
		if !ok {
			return nil // outside [from, to]
		}
		return &days[i]
	}
	if fromMS > toMS {
		return days
	}
	for d := dayStart(fromMS, 0); d.UnixMilli() <= toMS; {
		index[d.Format(time.DateOnly)] = len(days)
		days = append(days, Day{Day: d.Format(time.DateOnly)})
		next := dayStart(d.UnixMilli(), 1)
		if len(days) > 3660 || !next.After(d) {
			break // ten years is a caller's bug; a day that does not advance, ours
		}
		d = next
	}
	// spread calls add(day, part, ms of part) for the pieces of [a, b] in
	// each day.
	spread := func(a, b int64, add func(d *Day, frac, ms float64)) {
		total := float64(b - a)
		for a < b {
			end := min(b, dayStart(a, 1).UnixMilli())
			if end <= a {
				end = b // cannot happen (dayStart is after a); never loop on it
			}
			if d := at(a); d != nil {
				add(d, float64(end-a)/total, float64(end-a))
			}
			a = end
		}
	}
	for _, t := range r.Trips {
		if d := at(t.StartTS); d != nil {
			d.Trips++
		}
		for _, s := range t.steps {
			if s.toTS <= s.fromTS {
				if d := at(s.fromTS); d != nil {
					d.DistanceM += s.distanceM
				}
				continue
			}
			spread(s.fromTS, s.toTS, func(d *Day, frac, ms float64) {
				d.DistanceM += s.distanceM * frac
				d.MovingS += ms / 1000
			})
		}
	}
	for _, s := range r.Stops {
		if d := at(s.StartTS); d != nil {
			d.Stops++
		}
		spread(s.StartTS, s.EndTS, func(d *Day, _, ms float64) { d.StoppedS += ms / 1000 })
	}
	return days
}

// dayStart is the first instant of the date of t plus days, in t's location:
// midnight, or where a zone skips midnight (a DST change at 00:00, as in
// Santiago), the end of the skipped hour. time.Date may then answer an
// instant of the day before (it is "correct in one of the two zones"), so
// that case moves to the end of its zone period, the transition.
func dayStart(t time.Time, days int) time.Time {
	y, m, d := t.Date()
	s := time.Date(y, m, d+days, 0, 0, 0, 0, t.Location())
	want := time.Date(y, m, d+days, 12, 0, 0, 0, t.Location()).Format(time.DateOnly)
	if s.Format(time.DateOnly) != want {
		if _, end := s.ZoneBounds(); !end.IsZero() {
			s = end
		}
	}
	return s
}

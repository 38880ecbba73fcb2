package wsgateway

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"time"
	_ "time/tzdata" // report's tz= on hosts without a zoneinfo database (about 450 KB)

	"github.com/devtrack/devtrack/internal/trips"
	"github.com/devtrack/devtrack/storage"
)

// maxTrackPoints bounds what one trips, report or export request reads into
// memory (about 200 bytes a point): a day at one point a second is 86,400.
// A wider range gets a 400 that asks for a narrower one.
const maxTrackPoints = 500_000

// defaultTripsRange is the range of GET .../trips without from: the last day.
const defaultTripsRange = 24 * time.Hour

// track reads every location of a device in [from, to] (Unix ms, 0 = open),
// oldest first. The store pages newest first, so the pages are read in full
// and reversed; more than maxTrackPoints is a bad request.
func (g *Gateway) track(ctx context.Context, device string, from, to int64) ([]storage.Location, error) {
	q := storage.LocationQuery{Device: device, FromMS: from, ToMS: to, Limit: 1000}
	var all []storage.Location
	for {
		items, next, err := g.store.Locations(ctx, q)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if len(all) > maxTrackPoints {
			return nil, badRequest("more than " + strconv.Itoa(maxTrackPoints) + " positions in this range; narrow from and to")
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	slices.Reverse(all)
	return all, nil
}

func tripPoints(locs []storage.Location) []trips.Point {
	pts := make([]trips.Point, len(locs))
	for i, l := range locs {
		pts[i] = trips.Point{TS: l.TS, Lat: l.Lat, Lng: l.Lng}
		if l.Accuracy != nil {
			pts[i].Accuracy = *l.Accuracy
		}
	}
	return pts
}

// listTrips serves GET /api/v1/devices/{id}/trips?from=&to=: the trips and
// stops of the range (default: the last 24 hours), oldest first, derived
// with the default thresholds (internal/trips). A stop or trip that began
// before from starts at from.
func (g *Gateway) listTrips(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	if _, err := g.visibleDevice(r.Context(), u, id); err != nil {
		return err
	}
	from, to, err := timeRange(r)
	if err != nil {
		return err
	}
	if from == 0 {
		end := time.Now()
		if to != 0 {
			end = time.UnixMilli(to)
		}
		from = end.Add(-defaultTripsRange).UnixMilli()
	}
	locs, err := g.track(r.Context(), id, from, to)
	if err != nil {
		return err
	}
	res := trips.Derive(tripPoints(locs), trips.Config{})
	writeJSON(w, http.StatusOK, map[string]any{"device": id, "trips": res.Trips, "stops": res.Stops})
	return nil
}

// maxReportDays bounds GET .../report.
const maxReportDays = 92

// report serves GET /api/v1/devices/{id}/report?day=YYYY-MM-DD (or
// from=YYYY-MM-DD&to=YYYY-MM-DD, both days included; default today) with an
// optional tz (IANA name, default UTC) that sets where days begin: one
// summary per day, distance in metres, times in seconds.
func (g *Gateway) report(w http.ResponseWriter, r *http.Request, u storage.User) error {
	id := r.PathValue("id")
	if _, err := g.visibleDevice(r.Context(), u, id); err != nil {
		return err
	}
	q := r.URL.Query()
	loc := time.UTC
	if tz := q.Get("tz"); tz != "" {
		l, err := time.LoadLocation(tz)
		if err != nil || tz == "Local" {
			return badRequest("tz must be an IANA time zone name, like Asia/Shanghai")
		}
		loc = l
	}
	day := func(name string) (time.Time, error) {
		t, err := time.ParseInLocation(time.DateOnly, q.Get(name), loc)
		if err != nil {
			return t, badRequest(name + " must be a date, like 2026-01-02")
		}
		return t, nil
	}
	var first, last time.Time
	var err error
	switch {
	case q.Get("day") != "":
		if first, err = day("day"); err != nil {
			return err
		}
		last = first
	case q.Get("from") != "" || q.Get("to") != "":
		if first, err = day("from"); err != nil {
			return err
		}
		if last, err = day("to"); err != nil {
			return err
		}
	default:
		now := time.Now().In(loc)
		first = time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
		last = first
	}
	if last.Before(first) {
		return badRequest("from is after to")
	}
	if first.AddDate(0, 0, maxReportDays-1).Before(last) {
		return badRequest("at most " + strconv.Itoa(maxReportDays) + " days in one report")
	}
	fromMS, toMS := first.UnixMilli(), last.AddDate(0, 0, 1).UnixMilli()-1
	locs, err := g.track(r.Context(), id, fromMS, toMS)
	if err != nil {
		return err
	}
	res := trips.Derive(tripPoints(locs), trips.Config{})
	writeJSON(w, http.StatusOK, map[string]any{"device": id, "tz": loc.String(), "days": trips.Summarize(res, fromMS, toMS, loc)})
	return nil
}

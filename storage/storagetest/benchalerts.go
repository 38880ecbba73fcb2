package storagetest

import (
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// BenchTransitions is what a worker proposes for a batch of n locations
// spread over 100 devices in a group with 10 geofences: one transition per
// location and geofence, each device crossing one geofence in and out at
// every location (so a tenth of the transitions flip, each with an event
// and an alert). Batch number round gives later times and new ids. Every
// store's ApplyAlerts benchmark applies these.
func BenchTransitions(n, round int) []storage.Transition {
	const fences = 10
	out := make([]storage.Transition, 0, n*fences)
	for i := range n {
		dev := fmt.Sprintf("dev%03d", i%100)
		loc := fmt.Sprintf("r%04d-%05d", round, i)
		ts := int64(1_700_000_000_000 + round*n + i)
		// This device's step: its crossing fence alternates in and out.
		in := (round*n+i)/100%2 == 0
		for f := range fences {
			on := f == 0 && in
			typ := "exit"
			if on {
				typ = "enter"
			}
			t := storage.Transition{Device: dev, Key: fmt.Sprintf("geofence:f%d", f), On: on, TS: ts,
				Event: &storage.GeofenceEvent{ID: fmt.Sprintf("ev-%s-%d-%s", loc, f, typ), Device: dev, Geofence: fmt.Sprintf("f%d", f),
					Type: typ, TS: ts, Location: loc, Lat: 52, Lng: 13}}
			t.Alerts = []storage.Alert{{ID: fmt.Sprintf("al-%s-%d", loc, f), Rule: "r", Kind: storage.RuleGeofenceEnter,
				Device: dev, Group: "g", TS: ts, Cause: loc, Message: "entered"}}
			out = append(out, t)
		}
	}
	return out
}

package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/devtrack/devtrack/storage"
)

// demoDepotRadiusM is the radius of each demo group's depot geofence. The
// demo couriers drive within 4 km of their group's centre (simDevice), so
// they cross a 1.5 km circle around it often: the Alerts page fills with
// enter and exit events within minutes.
const demoDepotRadiusM = 1500

// seedDemoAlerts gives each demo group a depot geofence at its centre and
// rules raising an alert when a courier enters or leaves it. Fixed ids make
// it idempotent: a rerun on the same --store keeps what it finds.
func seedDemoAlerts(ctx context.Context, s storage.Store, nowMS int64) error {
	for _, gr := range demoGroups {
		fence := storage.Geofence{ID: "depot-" + gr.name, Name: "Depot " + gr.name, Group: gr.name,
			Kind: storage.GeofenceCircle, Lat: gr.center.Lat, Lng: gr.center.Lng, RadiusM: demoDepotRadiusM,
			CreatedAt: nowMS, UpdatedAt: nowMS}
		if _, err := s.CreateGeofence(ctx, fence); err != nil && !errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("demo geofence %s: %w", fence.ID, err)
		}
		for _, r := range []storage.AlertRule{
			{ID: fence.ID + "-enter", Name: "Entered " + fence.Name, Kind: storage.RuleGeofenceEnter},
			{ID: fence.ID + "-exit", Name: "Left " + fence.Name, Kind: storage.RuleGeofenceExit},
		} {
			r.Group, r.Geofence, r.CreatedAt = gr.name, fence.ID, nowMS
			if _, err := s.CreateAlertRule(ctx, r); err != nil && !errors.Is(err, storage.ErrExists) {
				return fmt.Errorf("demo alert rule %s: %w", r.ID, err)
			}
		}
	}
	return nil
}

package testutil

import (
	"context"
	"testing"

	"github.com/devtrack/devtrack/storage"
)

// Archive is the part of a store that StoredLocations and StoredLogs read.
type Archive interface {
	Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error)
	Logs(ctx context.Context, q storage.LogQuery) ([]storage.LogEntry, string, error)
}

// StoredLocations counts the stored locations of device by id, over every
// page: a count above 1 is a record stored twice.
func StoredLocations(t testing.TB, st Archive, device string) map[string]int {
	t.Helper()
	return countPages(t, func(cursor string) ([]string, string, error) {
		page, next, err := st.Locations(context.Background(), storage.LocationQuery{Device: device, Limit: 1000, Cursor: cursor})
		ids := make([]string, len(page))
		for i, l := range page {
			ids[i] = l.ID
		}
		return ids, next, err
	})
}

// StoredLogs counts the stored logs of device by id, over every page.
func StoredLogs(t testing.TB, st Archive, device string) map[string]int {
	t.Helper()
	return countPages(t, func(cursor string) ([]string, string, error) {
		page, next, err := st.Logs(context.Background(), storage.LogQuery{Device: device, Limit: 1000, Cursor: cursor})
		ids := make([]string, len(page))
		for i, e := range page {
			ids[i] = e.ID
		}
		return ids, next, err
	})
}

func countPages(t testing.TB, page func(cursor string) ([]string, string, error)) map[string]int {
	t.Helper()
	got := map[string]int{}
	for cursor := ""; ; {
		ids, next, err := page(cursor)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			got[id]++
		}
		if next == "" {
			return got
		}
		cursor = next
	}
}

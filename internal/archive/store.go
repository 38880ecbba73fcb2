package archive

import (
	"context"

	"github.com/devtrack/devtrack/storage"
)

// Store is what export and import need of the archive store.
type Store interface {
	// Devices lists every device, revoked ones too (groups nil).
	Devices(ctx context.Context, groups []string) ([]storage.Device, error)
	// Locations and Logs page newest first, with cursors.
	Locations(ctx context.Context, q storage.LocationQuery) ([]storage.Location, string, error)
	Logs(ctx context.Context, q storage.LogQuery) ([]storage.LogEntry, string, error)
	// DeleteRecords removes records of one device by id (export --delete).
	DeleteRecords(ctx context.Context, kind storage.Kind, device string, ids []string) (int64, error)
	// SaveBatch stores records, idempotent on (device, id) (import).
	SaveBatch(ctx context.Context, b storage.Batch) (storage.SaveResult, error)
}

var _ Store = storage.Store(nil)

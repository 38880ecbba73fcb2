package sqlite

// Placeholders for the methods that issue 8 adds to storage.Store, so that
// the tree builds while they are written; each is replaced by its real
// implementation (and this file deleted) before the issue is closed.

import (
	"context"
	"errors"

	"github.com/devtrack/devtrack/storage"
)

var errTODO = errors.New("sqlite: not implemented yet")

// SchemaVersion is a placeholder.
func (s *Store) SchemaVersion(ctx context.Context) (int64, int64, error) {
	ms, err := migrations()
	if err != nil {
		return 0, 0, err
	}
	v, err := schemaVersion(ctx, s.rdb)
	return int64(v), int64(ms[len(ms)-1].version), err
}

// Purge is a placeholder.
func (s *Store) Purge(context.Context, storage.Kind, int64, int) (int64, error) { return 0, errTODO }

// DeleteRecords is a placeholder.
func (s *Store) DeleteRecords(context.Context, storage.Kind, string, []string) (int64, error) {
	return 0, errTODO
}

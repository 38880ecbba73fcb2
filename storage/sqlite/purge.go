package sqlite

// Placeholders for Purge and DeleteRecords (issue 8), replaced by the real
// implementations before the issue is closed.

import (
	"context"
	"errors"

	"github.com/devtrack/devtrack/storage"
)

var errTODO = errors.New("sqlite: not implemented yet")

// Purge is a placeholder.
func (s *Store) Purge(context.Context, storage.Kind, int64, int) (int64, error) { return 0, errTODO }

// DeleteRecords is a placeholder.
func (s *Store) DeleteRecords(context.Context, storage.Kind, string, []string) (int64, error) {
	return 0, errTODO
}

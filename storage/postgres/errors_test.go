package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/devtrack/devtrack/storage"
)

func TestOneLine(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"failed to connect to `user=u database=d`:\n\t127.0.0.1:1 (localhost): dial error: refused\n\t[::1]:1 (localhost): dial error: refused",
			"failed to connect to `user=u database=d`: 127.0.0.1:1 (localhost): dial error: refused; [::1]:1 (localhost): dial error: refused"},
		{"a\n\n  b  \r\nc: \n\n", "a; b; c:"},
		{" x:\r\n\ty", "x: y"},
	} {
		cause := errors.New(tc.in)
		err := oneLine(cause)
		if err.Error() != tc.want || !errors.Is(err, cause) {
			t.Errorf("oneLine(%q) = %q, want %q wrapping the cause", tc.in, err, tc.want)
		}
	}
	if one := errors.New("one line: as it is"); oneLine(one) != one {
		t.Errorf("oneLine changed an error of one line")
	}
	if oneLine(nil) != nil {
		t.Errorf("oneLine(nil) is not nil")
	}
}

// TestOpenErrorOneLine: pgconn lists each host it tried on a line of its
// own; Open's error says the same on one line, and is still an outage
// with the pgconn error inside.
func TestOpenErrorOneLine(t *testing.T) {
	// Nothing listens on ports 1 and 2: both refuse at once.
	_, err := Open(context.Background(), "postgres://devtrack@127.0.0.1:1,127.0.0.1:2/devtrack?sslmode=disable", nil)
	var ce *pgconn.ConnectError
	if !errors.As(err, &ce) || !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open: %v; want an ErrUnavailable wrapping a pgconn.ConnectError", err)
	}
	if !strings.Contains(ce.Error(), "\n") {
		t.Logf("pgconn's error is one line already: %q", ce)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") || !strings.Contains(msg, "127.0.0.1:1") || !strings.Contains(msg, "127.0.0.1:2") {
		t.Errorf("Open: %q; want one line naming both hosts", msg)
	}
}

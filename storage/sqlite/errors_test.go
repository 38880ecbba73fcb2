package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/devtrack/devtrack/storage"
)

// A full disk fails writes as storage.ErrUnavailable (the worker then waits
// instead of blaming the records), and the same store writes again once
// there is space.
func TestFullDiskIsUnavailableNotInvalid(t *testing.T) {
	dir := testutil.Tmpfs(t, "2m")
	ctx := context.Background()
	st := openTemp(t, filepath.Join(dir, "devtrack.db"))
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	filler := testutil.Fill(t, dir)
	var b storage.Batch
	for i := range 5000 {
		b.Locations = append(b.Locations, storage.Location{Device: "d1", ID: fmt.Sprintf("m%d", i), TS: int64(i + 1), Lat: 1, Lng: 2})
	}
	_, err := st.SaveBatch(ctx, b)
	if !errors.Is(err, storage.ErrUnavailable) || errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("SaveBatch on a full disk: %v; want ErrUnavailable", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if res, err := st.SaveBatch(ctx, b); err != nil || res.Inserted != 5000 {
		t.Fatalf("SaveBatch after space came back: %+v, %v", res, err)
	}
	if err := st.CheckWrite(ctx); err != nil {
		t.Fatalf("CheckWrite: %v", err)
	}
}

func TestClassify(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, c := range []struct {
		err  error
		want bool
	}{
		{ctx.Err(), false}, // unclassified: CheckWrite decides
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), false},
		{fmt.Errorf("wrapped: %w", sql.ErrConnDone), true},
		{fmt.Errorf("bad: %w", storage.ErrInvalid), false},
		{errors.New("something unknown"), false},
	} {
		if got := errors.Is(classify(c.err), storage.ErrUnavailable); got != c.want {
			t.Errorf("classify(%v) unavailable = %v, want %v", c.err, got, c.want)
		}
	}
}

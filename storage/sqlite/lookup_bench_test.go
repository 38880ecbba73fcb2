package sqlite

import (
	"context"
	"fmt"
	"testing"

	"github.com/devtrack/devtrack/internal/token"
	"github.com/devtrack/devtrack/storage"
)

// BenchmarkHandshakeLookups is the store's share of a viewer handshake
// subscribing to one device: the user by token hash (with its groups),
// then the device by id. One op is both.
func BenchmarkHandshakeLookups(b *testing.B) {
	ctx := context.Background()
	st := openBenchStore(b)
	const devices = 1000
	for i := range devices {
		if err := st.AddDevice(ctx, storage.Device{ID: fmt.Sprintf("d%04d", i), Group: "g"}, token.Hash(fmt.Sprint("dev", i))); err != nil {
			b.Fatal(err)
		}
	}
	tok := token.Hash("viewer-token")
	if _, err := st.AddUser(ctx, storage.User{Name: "op", Role: storage.RoleOperator, Groups: []string{"g"}}, tok, nil); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := st.UserByTokenHash(ctx, tok); err != nil {
			b.Fatal(err)
		}
		if _, err := st.Device(ctx, fmt.Sprintf("d%04d", i%devices)); err != nil {
			b.Fatal(err)
		}
	}
}

package pgtest

import (
	"os"
	"sync"
	"testing"
)

// shared is the one server of a test binary (Shared), stopped by Main.
var shared struct {
	mu   sync.Mutex
	srv  *Server
	main bool // Main runs the tests and stops the server at the end
}

// Main runs a package's tests (call it from TestMain) and then stops the
// server that Shared started, if any.
//
//	func TestMain(m *testing.M) { pgtest.Main(m) }
func Main(m *testing.M) {
	shared.mu.Lock()
	shared.main = true
	shared.mu.Unlock()
	code := m.Run()
	shared.mu.Lock()
	if shared.srv != nil {
		shared.srv.destroy()
		shared.srv = nil
	}
	shared.mu.Unlock()
	os.Exit(code)
}

// Shared returns the package's one server, starting it on first use: tests
// that only need a database of their own (NewDB) share it. A test must not
// stop, kill or pause a shared server; one that does wants Start. Without
// Main in TestMain the server is stopped at the end of the test that
// started it, and the next test starts another.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.srv != nil {
		return shared.srv
	}
	s, err := newServer(t, Options{})
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	// s.t is the first test; Stop and friends are not for a shared server.
	if !shared.main {
		t.Cleanup(func() {
			shared.mu.Lock()
			defer shared.mu.Unlock()
			s.destroy()
			shared.srv = nil
		})
	}
	shared.srv = s
	return s
}

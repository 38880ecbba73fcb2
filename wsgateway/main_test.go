package wsgateway_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"go.uber.org/goleak"
)

// Every goroutine a test's gateway, clients and Redis connections started
// has ended once the tests are done.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// goroutinesIn returns how many goroutines have fn on their stack.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	return strings.Count(string(buf), fn)
}

// When Serve returns, the hub's subscriptions have ended: the caller may
// close Redis at once.
func TestServeReturnsAfterItsHubSubscriptionsEnded(t *testing.T) {
	e := newEnv(t, wsgateway.Config{})
	e.addDevice("d1", "g")
	e.addDevice("d2", "g")
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	if err := ws.WriteMessage(1, []byte(`{"type":"subscribe","devices":["d1","d2"]}`)); err != nil {
		t.Fatal(err)
	}
	e.subscribed("d1")
	e.subscribed("d2")
	const receive = "wsgateway.(*hub).receive("
	if n := goroutinesIn(receive); n != 2 {
		t.Fatalf("%d hub subscriptions running, want 2", n)
	}
	e.stop()
	if n := goroutinesIn(receive); n != 0 {
		t.Fatalf("%d hub subscriptions still running after Serve returned", n)
	}
}

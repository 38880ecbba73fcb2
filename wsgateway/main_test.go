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
// close Redis at once. They are held by one goroutine, however many
// devices are watched.
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
	const run = "redisq.(*LiveSubscriber).Run("
	if n := goroutinesIn(run); n != 1 {
		t.Fatalf("%d live subscribers running, want 1", n)
	}
	e.stop()
	if n := goroutinesIn(run); n != 0 {
		t.Fatalf("%d live subscribers still running after Serve returned", n)
	}
}

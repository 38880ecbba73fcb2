package bridge

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test's bridge, worker, Redis and AMQP connections
// started has ended once the tests are done.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

package wsgateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
)

// gatedQueue is a Queue whose pushes wait for a value on answer (the
// error to return) and record what each LPUSH held; entered is told of
// each push as it begins.
type gatedQueue struct {
	Queue
	entered chan struct{}
	answer  chan error
	mu      sync.Mutex
	pushes  [][]string
}

func (q *gatedQueue) Push(ctx context.Context, items ...[]byte) error {
	q.entered <- struct{}{}
	var err error
	select {
	case err = <-q.answer:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err == nil {
		var got []string
		for _, it := range items {
			got = append(got, string(it))
		}
		q.mu.Lock()
		q.pushes = append(q.pushes, got)
		q.mu.Unlock()
	}
	return err
}

func newGatedQueue() *gatedQueue {
	return &gatedQueue{entered: make(chan struct{}, 100), answer: make(chan error)}
}

func items(caller string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", caller, i)
	}
	return out
}

// What arrives while a push is in flight goes to Redis in one LPUSH, each
// caller's items together, and every caller is answered by the result of
// the LPUSH holding its items.
func TestPushGroupCommitsWhatArrivesDuringAPush(t *testing.T) {
	var p pushGroup
	q := newGatedQueue()
	deadline := time.Now().Add(time.Minute)
	first := make(chan error, 1)
	go func() { first <- p.push(q, deadline, items("first", 2)) }()
	<-q.entered // the first LPUSH is in flight

	const callers = 10
	errs := make(chan error, callers)
	for c := range callers {
		go func() { errs <- p.push(q, deadline, items(fmt.Sprint("c", c), 3)) }()
	}
	testutil.CheckFor(t, 5*time.Second, "the callers wait", func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		return len(p.pending) == callers
	})
	select {
	case <-first:
		t.Fatal("the first caller was answered before Redis confirmed")
	default:
	}
	q.answer <- nil
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	<-q.entered // the second round: all the others
	q.answer <- errors.New("redis down")
	for range callers {
		if err := <-errs; err == nil || !strings.Contains(err.Error(), "redis down") {
			t.Fatalf("a caller of the failed round got %v", err)
		}
	}
	if len(q.pushes) != 1 || len(q.pushes[0]) != 2 {
		t.Fatalf("confirmed pushes %q, want the first caller's 2 items", q.pushes)
	}

	// The next round works again, and holds its caller's items in order.
	done := make(chan error, 1)
	go func() { done <- p.push(q, deadline, items("last", 3)) }()
	<-q.entered
	q.answer <- nil
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(q.pushes[1]); got != "[last-0 last-1 last-2]" {
		t.Fatalf("second confirmed push %s", got)
	}
}

// A caller whose deadline passed while it waited is answered at once,
// without Redis, and the others of its round are pushed with their own
// deadline, whichever of them queued first. Queued first, the expired
// caller is handed the lead: it pushes nothing and hands its round to the
// oldest live caller (it used to push the others' round and wait for their
// LPUSH, up to their deadline).
func TestPushGroupAnswersAnExpiredCallerAtOnce(t *testing.T) {
	for _, expiredFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired first %v", expiredFirst), func(t *testing.T) {
			var p pushGroup
			q := newGatedQueue()
			first := make(chan error, 1)
			go func() { first <- p.push(q, time.Now().Add(time.Minute), items("first", 1)) }()
			<-q.entered
			expired, other := make(chan error, 1), make(chan error, 1)
			callers := []func(){
				func() { expired <- p.push(q, time.Now(), items("late", 1)) },
				func() { other <- p.push(q, time.Now().Add(time.Minute), items("other", 1)) },
			}
			if !expiredFirst {
				callers[0], callers[1] = callers[1], callers[0]
			}
			for i, c := range callers {
				go c()
				testutil.CheckFor(t, 5*time.Second, "the callers queue in order", func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return len(p.pending) == i+1
				})
			}
			q.answer <- nil
			if err := <-first; err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-expired:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("expired caller got %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the expired caller waited for the others' LPUSH")
			}
			<-q.entered
			q.answer <- nil
			if err := <-other; err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(q.pushes); got != "[[first-0] [other-0]]" {
				t.Fatalf("confirmed pushes %s", got)
			}
		})
	}
}

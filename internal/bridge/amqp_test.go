package bridge

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/testutil"
	"github.com/google/go-cmp/cmp"
	amqp "github.com/rabbitmq/amqp091-go"
)

// storedLogs counts the stored logs of device by id.
func (e *env) storedLogs(device string) map[string]int {
	e.t.Helper()
	return testutil.StoredLogs(e.t, e.store, device)
}

// lostReplies is an ingest list whose next few pushes succeed but report a
// failure, as when Redis took the LPUSH and the reply was lost.
type lostReplies struct {
	Enqueuer
	n atomic.Int32
}

func (q *lostReplies) Push(ctx context.Context, items ...[]byte) error {
	err := q.Enqueuer.Push(ctx, items...)
	if err == nil && q.n.Add(-1) >= 0 {
		return errors.New("reply lost")
	}
	return err
}

// The Go service's RabbitMQ queue of {"from","to","vehicleId"} status
// messages, consumed by the bridge from a real RabbitMQ node: 1,000 become
// 1,000 stored logs, each once, although ten are delivered twice (same
// message-id, or same body without one); malformed messages and an unknown
// vehicle are rejected and counted; while Redis is stalled messages are
// nacked, requeued and stored once it is back; pushes whose reply was lost
// are redelivered and stored once; at the end the queue is
// empty, nothing left unacked.
func TestAMQPBridgeStoresEachStatusMessageOnce(t *testing.T) {
	devices := []string{"van-1", "van-2", "van-3"}
	e := newEnv(t, devices...)
	rmq := startRabbit(t)
	conn, err := amqp.Dial(rmq.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	const queue = "vehicle.status"
	if _, err := ch.QueueDeclare(queue, true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	publish := func(body, msgID string) {
		t.Helper()
		err := ch.PublishWithContext(context.Background(), "", queue, false, false,
			amqp.Publishing{ContentType: "application/json", MessageId: msgID, Body: []byte(body)})
		if err != nil {
			t.Fatal(err)
		}
	}
	want := map[string]map[string]int{}
	type msg struct{ body, id string }
	var msgs []msg
	status := func(i int) msg {
		d := devices[i%len(devices)]
		m := msg{body: fmt.Sprintf(`{"from":"s%d","to":"s%d","vehicleId":%q,"seq":%d}`, i, i+1, d, i)}
		if i%2 == 0 {
			m.id = fmt.Sprintf("st-%d", i)
		}
		id := m.id
		if id == "" {
			id = bodyID([]byte(m.body))
		}
		if want[d] == nil {
			want[d] = map[string]int{}
		}
		want[d][id] = 1
		return m
	}
	const n = 1000
	for i := range n {
		m := status(i)
		msgs = append(msgs, m)
		if i < 10 {
			msgs = append(msgs, m) // a redelivery
		}
	}
	bad := []string{
		`not json`,
		`{"from":"a","to":"b"}`, // no vehicleId
		`{"from":"a","to":"b","vehicleId":{"id":1}}`,          // an object
		`{"from":"a","to":"b","vehicleId":"van-1","sev":"?"}`, // not a level (the parser)
		`{"from":"a","to":"b","vehicleId":"van-1","sev":7}`,   // not a level
	}
	for i, b := range bad {
		msgs = append(msgs[:200*i+100], append([]msg{{body: b}}, msgs[200*i+100:]...)...)
	}
	msgs = append(msgs, msg{body: `{"from":"a","to":"b","vehicleId":"ghost"}`})
	for _, m := range msgs {
		publish(m.body, m.id)
	}

	mp, err := ParseMapping("device=vehicleId,level=sev", "log", "status {from} -> {to}", "")
	if err != nil {
		t.Fatal(err)
	}
	q := &lostReplies{Enqueuer: e.rdb}
	b, err := New(Config{Mapping: mp, ID: "bridge-amqp-test", ReportEvery: -1, Timeout: 300 * time.Millisecond}, q, e.store, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := b.RunAMQP(ctx, rmq.url, queue); err != nil {
			t.Errorf("RunAMQP: %v", err)
		}
	})
	stop := func() { cancel(); wg.Wait() }
	defer stop()
	wantStats := Stats{Accepted: n + 10, Malformed: int64(len(bad)), UnknownDevice: 1}
	checkFor(t, 60*time.Second, "every message handled", func() bool { return b.Stats() == wantStats })

	// Redis stalls: the next messages are nacked and requeued, not lost.
	e.srv.Pause()
	const more = 20
	for i := n; i < n+more; i++ {
		m := status(i)
		publish(m.body, m.id)
	}
	checkFor(t, 10*time.Second, "a retry while Redis stalls", func() bool { return b.Stats().Retries > 0 })
	e.srv.Resume()
	wantStats.Accepted += more
	checkFor(t, 20*time.Second, "the requeued messages handled", func() bool {
		s := b.Stats()
		return s.Accepted == wantStats.Accepted && s.Malformed == wantStats.Malformed && s.UnknownDevice == 1
	})

	// Pushed, but the bridge saw an error: nacked, redelivered, pushed
	// again with the same id.
	q.n.Store(5)
	retries := b.Stats().Retries
	for i := n + more; i < n+more+5; i++ {
		m := status(i)
		publish(m.body, m.id)
	}
	checkFor(t, 20*time.Second, "the messages whose reply was lost handled", func() bool {
		return b.Stats().Accepted == wantStats.Accepted+5
	})
	if r := b.Stats().Retries - retries; r != 5 {
		t.Errorf("%d retries for 5 lost replies", r)
	}
	const total = n + more + 5
	checkFor(t, 20*time.Second, "1,025 logs stored", func() bool {
		got := 0
		for _, d := range devices {
			got += len(e.storedLogs(d))
		}
		return got == total
	})
	for _, d := range devices {
		if diff := cmp.Diff(want[d], e.storedLogs(d)); diff != "" {
			t.Errorf("stored logs of %s (-want +got):\n%s", d, diff)
		}
	}
	if got := e.storedLogs("ghost"); len(got) != 0 {
		t.Errorf("unknown device stored %d logs", len(got))
	}
	stop()
	qi, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if qi.Messages != 0 {
		t.Errorf("%d messages left on the queue; want 0 (all acked or rejected)", qi.Messages)
	}
	t.Logf("stats %+v", b.Stats())
}

package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// The Django/PHP API's message: {"user":{...},"latitude","longitude"}, here
// with a time in seconds so that ids are stable.
func legacyMessage(device string, i int, sec int64) string {
	return fmt.Sprintf(`{"uid":%d,"user":{"username":%q,"name":"Driver %d"},"latitude":%v,"longitude":"%v","time":%d}`,
		i, device, i, 31+float64(i)/10000, 121.47, sec)
}

// 1,000 legacy messages on a Redis channel become 1,000 stored locations,
// each once (the first ten are published twice: same body, same id);
// malformed messages and one of an unknown device are counted, not stored.
func TestRedisChannelBridgeStoresEachLegacyMessageOnce(t *testing.T) {
	devices := []string{"van-1", "van-2", "van-3", "van-4"}
	e := newEnv(t, devices...)
	m, err := ParseMapping("device=user.username,lat=latitude,lng=longitude,ts=time", "", "", "")
	if err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.InfoLevel)
	reg := prometheus.NewRegistry()
	b, err := New(Config{Mapping: m, ID: "bridge-test", ReportEvery: 50 * time.Millisecond, Registerer: reg}, e.rdb, e.store, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	const channel = "legacy:positions"
	e.goUntilCleanup("bridge", func(ctx context.Context) error { return b.RunChannel(ctx, e.rdb, channel) })
	r := e.rdb.Redis()
	checkFor(t, 5*time.Second, "the bridge's subscription", func() bool {
		v, err := r.Do(context.Background(), r.B().PubsubNumsub().Channel(channel).Build()).ToArray()
		if err != nil || len(v) != 2 {
			return false
		}
		n, _ := v[1].AsInt64()
		return n == 1
	})

	const n = 1000
	sec := time.Now().Unix() - 60
	want := map[string]map[string]int{}
	var msgs []string
	for i := range n {
		d := devices[i%len(devices)]
		msg := legacyMessage(d, i, sec+int64(i%60))
		if want[d] == nil {
			want[d] = map[string]int{}
		}
		want[d][bodyID([]byte(msg))] = 1
		msgs = append(msgs, msg)
		if i < 10 {
			msgs = append(msgs, msg)
		}
		if i%100 == 50 {
			msgs = append(msgs, malformed[(i/100)%len(malformed)])
		}
	}
	msgs = append(msgs, legacyMessage("ghost", 1, sec)) // not registered
	for _, msg := range msgs {
		if err := r.Do(context.Background(), r.B().Publish().Channel(channel).Message(msg).Build()).Error(); err != nil {
			t.Fatal(err)
		}
	}
	wantStats := Stats{Accepted: n + 10, Malformed: 10, UnknownDevice: 1}
	checkFor(t, 10*time.Second, "every message handled", func() bool { return b.Stats() == wantStats })
	checkFor(t, 10*time.Second, "1,000 locations stored", func() bool {
		total := 0
		for _, d := range devices {
			total += len(e.stored(d))
		}
		return total == n
	})
	for _, d := range devices {
		if diff := cmp.Diff(want[d], e.stored(d)); diff != "" {
			t.Errorf("stored locations of %s (-want +got):\n%s", d, diff)
		}
	}
	if got := e.stored("ghost"); len(got) != 0 {
		t.Errorf("unknown device stored %d locations", len(got))
	}
	if s := b.Stats(); s != wantStats {
		t.Errorf("stats %+v; want %+v", s, wantStats)
	}
	for result, want := range map[string]int64{"accepted": n + 10, "malformed": 10, "unknown_device": 1} {
		var mm dto.Metric
		if err := b.m.messages.WithLabelValues(result).Write(&mm); err != nil {
			t.Fatal(err)
		}
		if got := mm.GetCounter().GetValue(); got != float64(want) {
			t.Errorf("devtrack_bridge_messages_total{result=%q} = %v; want %d", result, got, want)
		}
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	if diff := cmp.Diff([]string{"devtrack_bridge_device_lookups_total", "devtrack_bridge_messages_total", "devtrack_bridge_retries_total"}, names); diff != "" {
		t.Errorf("registered metrics (-want +got):\n%s", diff)
	}
	// Every refusal logged with its reason; the totals logged periodically.
	if got := logs.FilterMessage("bridge refused a message").Len(); got != 11 {
		t.Errorf("%d refusals logged; want 11", got)
	}
	checkFor(t, 2*time.Second, "the totals logged", func() bool {
		for _, l := range logs.FilterMessage("bridge totals").All() {
			if l.ContextMap()["accepted"] == int64(n+10) && l.ContextMap()["malformed"] == int64(10) {
				return true
			}
		}
		return false
	})
}

// malformed are messages that cannot be a frame of van-1, each for its own
// reason.
var malformed = []string{
	`not json`,
	`[1,2,3]`,
	`{"user":{"username":"van-1"},"longitude":121}`,                            // no latitude
	`{"user":{"username":"van-1"},"latitude":95,"longitude":121}`,              // out of range (the parser)
	`{"user":{"username":"van-1"},"latitude":{"v":1},"longitude":121}`,         // an object
	`{"user":{"username":"van-1"},"latitude":"north","longitude":121}`,         // not a number
	`{"user":{},"latitude":31,"longitude":121}`,                                // no device
	`{"user":{"username":["van-1"]},"latitude":31,"longitude":121}`,            // device an array
	`{"user":{"username":"van-1"},"latitude":31,"longitude":121,"time":-5}`,    // negative ts
	`{"user":{"username":"van-1"},"latitude":31,"longitude":121,"time":99999}`, // 1970: too old (the parser)
}

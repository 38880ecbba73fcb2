package bridge

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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
	b, err := New(Config{Mapping: m, ID: "bridge-test", ReportEvery: -1}, e.rdb, e.store, nil)
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

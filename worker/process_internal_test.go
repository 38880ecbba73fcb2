package worker

import (
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
)

// process decodes each item once and takes its attempt key from the decoded
// device and id: that key must be the one redisq.AttemptKey reads from the
// raw item (the gateway's and the dead letters' view), or a counted attempt
// would be lost and an item dead-lettered under another key.
func TestAttemptKeyOfDecodedItem(t *testing.T) {
	now := time.Now().UnixMilli()
	for _, raw := range []string{
		`{"v":1,"device":"d1","id":"m1","type":"location","ts":1700000000000,"data":{"lat":1,"lng":2}}`,
		`{"device":"d\u00e9\"x","id":"m\\1","type":"log","received_at":1700000000000,"data":{"level":"info","message":"hi"}}`,
		`{"id":"m2","device":"\u6f22\u5b57","type":"location","received_at":1700000000000,"data":{"lat":1,"lng":2}}`,
		`{"Device":"d2","ID":"m3","type":"location","received_at":1700000000000,"data":{"lat":1,"lng":2}}`,
	} {
		var e entry
		e.raw = raw
		if err := e.decode(now); err != nil {
			t.Fatalf("decode %s: %v", raw, err)
		}
		if got, want := e.item.Device+"\n"+e.item.ID, redisq.AttemptKey(raw); got != want {
			t.Errorf("%s: key from the decoded item %q, AttemptKey %q", raw, got, want)
		}
	}
}

package redisq_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/google/go-cmp/cmp"
)

// DeviceStatesOf agrees with DeviceStates for the devices asked for, and
// only those, across its 1,000-field chunks.
func TestDeviceStatesOfReadsOnlyTheGivenDevices(t *testing.T) {
	c, _ := open(t)
	ctx := context.Background()
	var msgs []redisq.LiveMessage
	for i := range 3000 {
		d := fmt.Sprintf("d%04d", i)
		msgs = append(msgs, redisq.LiveMessage{Device: d, IsLocation: true, TS: int64(1000 + i), ReceivedAt: int64(2000 + i),
			Payload: []byte(fmt.Sprintf(`{"type":"location","device":%q,"id":"m","ts":%d,"data":{"lat":1,"lng":1}}`, d, 1000+i))})
	}
	if err := c.PublishLive(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetLink(ctx, "d0007", "gw~x#1"); err != nil {
		t.Fatal(err)
	}
	all, err := c.DeviceStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ask []string
	for i := 0; i < 3000; i += 2 { // 1,500 asked: two chunks
		ask = append(ask, fmt.Sprintf("d%04d", i))
	}
	ask = append(ask, "d0007", "unknown")
	got, err := c.DeviceStatesOf(ctx, ask)
	if err != nil {
		t.Fatalf("DeviceStatesOf: %v", err)
	}
	want := map[string]redisq.DeviceState{"unknown": {}}
	for _, d := range ask[:len(ask)-1] {
		want[d] = all[d]
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("DeviceStatesOf (-want +got):\n%s", diff)
	}
	if got["d0007"].Link == "" || got["d0008"].Location == nil {
		t.Fatalf("link or location missing: %+v %+v", got["d0007"], got["d0008"])
	}
}

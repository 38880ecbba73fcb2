package wsgateway_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// A location published the moment a viewer has its snapshot reaches the
// viewer: the snapshot is sent only once the gateway's Redis subscription
// to the device is confirmed, so nothing falls between the two.
func TestLocationPublishedRightAfterTheSnapshotArrives(t *testing.T) {
	e := newEnv(t, wsgateway.Config{ViewerSubscribeRate: 1000, ViewerSubscribeBurst: 1000})
	ws := e.dialLive(e.addUser("root", storage.RoleAdmin))
	for i := range 40 {
		dev := fmt.Sprintf("race%d", i)
		e.addDevice(dev, "g")
		subscribe(t, ws, dev)
		if s := readSnapshot(t, ws); s.Type != "snapshot" {
			t.Fatalf("subscribe %s: got %s, want a snapshot", dev, s.Type)
		}
		id := fmt.Sprintf("m-%d", i)
		e.publish(dev, id, 0)
		_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		var m liveMsg
		if err := ws.ReadJSON(&m); err != nil {
			t.Fatalf("round %d: the location %s published right after %s's snapshot never arrived: %v", i, id, dev, err)
		}
		if m.Type != "location" || m.Device != dev || m.ID != id {
			t.Fatalf("round %d: got %+v, want location %s of %s", i, m, id, dev)
		}
	}
}

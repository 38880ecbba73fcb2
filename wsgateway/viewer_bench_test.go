package wsgateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
)

// BenchmarkLiveFanout measures how long a location published by a worker
// takes to reach every viewer of a gateway: 100 viewers subscribed to all of
// 200 devices, one message at a time. It reports the median and p99 of the
// time until the last viewer has it.
//
//	go test -run '^$' -bench LiveFanout -benchtime 2000x ./wsgateway/
func BenchmarkLiveFanout(b *testing.B) {
	const viewers, devices = 100, 200
	// One user holds every viewer socket: past the default per-user cap.
	e := newEnv(b, wsgateway.Config{ViewerMaxSockets: viewers})
	admin := e.addUser("root", storage.RoleAdmin)
	for i := range devices {
		e.addDevice(fmt.Sprintf("d%03d", i), "g")
	}
	var current atomic.Int64
	current.Store(-1)
	var got sync.WaitGroup
	for range viewers {
		ws := e.dialLive(admin)
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "all": true})
		go func() {
			for {
				_, raw, err := ws.ReadMessage()
				if err != nil {
					return
				}
				var m struct{ Type, ID string }
				if json.Unmarshal(raw, &m) == nil && m.Type == "location" && m.ID == strconv.FormatInt(current.Load(), 10) {
					got.Done()
				}
			}
		}()
	}
	for i := range devices {
		e.subscribed(fmt.Sprintf("d%03d", i))
	}
	time.Sleep(200 * time.Millisecond) // let the snapshots drain

	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		device := fmt.Sprintf("d%03d", i%devices)
		payload := fmt.Sprintf(`{"type":"location","device":%q,"id":"%d","ts":%d,"data":{"lat":31.2,"lng":121.4}}`,
			device, i, time.Now().UnixMilli())
		got.Add(viewers)
		current.Store(int64(i))
		start := time.Now()
		if err := e.rdb.PublishLive(context.Background(), []redisq.LiveMessage{{Device: device, Payload: []byte(payload), IsLocation: true}}); err != nil {
			b.Fatal(err)
		}
		got.Wait()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

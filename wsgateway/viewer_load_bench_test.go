package wsgateway_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/devtrack/devtrack/internal/redisq"
	"github.com/devtrack/devtrack/storage"
	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// BenchmarkLiveFanoutRate is issue 11's fan-out row: 100 viewers watching
// one device that publishes at a steady rate (messages per second, in
// batches every millisecond, as a worker does). It reports deliveries per
// second, the p99 of publish-to-read latency over every delivery, and the
// share of messages delivered (every viewer reads as fast as it can, so
// anything below 100% was coalesced away for a viewer that kept up).
//
//	go test -run '^$' -bench LiveFanoutRate -benchtime 6000x ./wsgateway/
func BenchmarkLiveFanoutRate(b *testing.B) {
	for _, rate := range []int{2000, 3000, 5000} {
		b.Run("rate="+strconv.Itoa(rate), func(b *testing.B) { benchFanoutRate(b, 100, rate) })
	}
}

func benchFanoutRate(b *testing.B, viewers, rate int) {
	e := newEnv(b, wsgateway.Config{ViewerMaxSockets: viewers})
	admin := e.addUser("root", storage.RoleAdmin)
	e.addDevice("d0", "g")
	var (
		mu        sync.Mutex
		lat       []time.Duration
		delivered atomic.Int64
		readers   sync.WaitGroup
	)
	conns := make([]*websocket.Conn, 0, viewers)
	for range viewers {
		ws := e.dialLive(admin)
		conns = append(conns, ws)
		_ = ws.WriteJSON(map[string]any{"type": "subscribe", "devices": []string{"d0"}})
		if _, raw, err := ws.ReadMessage(); err != nil || !bytes.Contains(raw, []byte(`"snapshot"`)) {
			b.Fatalf("snapshot: %s %v", raw, err)
		}
	}
	e.subscribed("d0")
	marker := []byte(`"sent":`)
	for _, ws := range conns {
		readers.Add(1)
		go func() {
			defer readers.Done()
			mine := make([]time.Duration, 0, b.N)
			defer func() {
				mu.Lock()
				lat = append(lat, mine...)
				mu.Unlock()
			}()
			for {
				_, raw, err := ws.ReadMessage()
				if err != nil {
					return
				}
				if bytes.Contains(raw, []byte(`"id":"end"`)) {
					return
				}
				i := bytes.Index(raw, marker)
				if i < 0 {
					continue
				}
				j := i + len(marker) + bytes.IndexByte(raw[i+len(marker):], ',')
				sent, _ := strconv.ParseInt(string(raw[i+len(marker):j]), 10, 64)
				mine = append(mine, time.Duration(time.Now().UnixNano()-sent))
				delivered.Add(1)
			}
		}()
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; {
		<-tick.C
		// Publish whatever the rate has made due by now, in one batch.
		due := min(b.N, int(time.Since(start).Seconds()*float64(rate))+1)
		msgs := make([]redisq.LiveMessage, 0, due-i)
		for ; i < due; i++ {
			payload := fmt.Sprintf(`{"type":"location","device":"d0","id":"%d","sent":%d,"ts":%d,"data":{"lat":31.2,"lng":121.4,"speed":12.5}}`,
				i, time.Now().UnixNano(), time.Now().UnixMilli())
			msgs = append(msgs, redisq.LiveMessage{Device: "d0", Payload: []byte(payload), IsLocation: true, TS: int64(i)})
		}
		if len(msgs) == 0 {
			continue
		}
		if err := e.rdb.PublishLive(context.Background(), msgs); err != nil {
			b.Fatal(err)
		}
	}
	// A notice (not coalesced, not a location) tells each reader the run ended.
	if err := e.rdb.PublishLive(context.Background(), []redisq.LiveMessage{{Device: "d0", Notice: true,
		Payload: []byte(`{"type":"event","device":"d0","id":"end"}`)}}); err != nil {
		b.Fatal(err)
	}
	waited := make(chan struct{})
	go func() { readers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		for _, ws := range conns {
			ws.Close()
		}
		<-waited
	}
	elapsed := time.Since(start)
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) == 0 {
		b.Fatal("nothing delivered")
	}
	b.ReportMetric(float64(delivered.Load())/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(100*float64(delivered.Load())/float64(b.N*viewers), "delivered-%")
}

// BenchmarkViewerIdle is issue 11's idle-memory and connect-time rows on a
// smaller scale: n viewers, each subscribed at the handshake to its own
// device (?subscribe=), with `state` devices known to Redis (last
// location, last seen, link). It reports the gateway's Go heap and stacks
// per connection once they are idle, and the time from the first dial to
// the last snapshot read (50 dialers at once). The clients are raw TCP
// sockets that keep no buffers, so what is measured is the gateway's.
//
//	go test -run '^$' -bench ViewerIdle -benchtime 1x ./wsgateway/
func BenchmarkViewerIdle(b *testing.B) {
	for _, state := range []int{0, 10_000, 100_000} {
		b.Run("state="+strconv.Itoa(state), func(b *testing.B) { benchViewerIdle(b, 2000, state) })
	}
}

func benchViewerIdle(b *testing.B, n, state int) {
	e := newEnv(b, wsgateway.Config{ViewerMaxSockets: 1 << 20})
	admin := e.addUser("root", storage.RoleAdmin)
	for i := range n {
		e.addDevice(fmt.Sprintf("d%05d", i), "g")
	}
	r := e.rdb.Redis()
	k := e.rdb.Keys()
	for start := 0; start < state; start += 1000 {
		var last, seen, links []string
		for i := start; i < min(start+1000, state); i++ {
			d := fmt.Sprintf("d%05d", i)
			last = append(last, d, fmt.Sprintf(`{"type":"location","device":%q,"id":"x","ts":1,"data":{"lat":31.2,"lng":121.4}}`, d))
			seen = append(seen, d, "1700000000000")
			links = append(links, d, "gw-other")
		}
		for _, kv := range []struct {
			key string
			fv  []string
		}{{k.LastLocation(), last}, {k.LastSeen(), seen}, {k.Links(), links}} {
			cmd := r.B().Hset().Key(kv.key).FieldValue()
			for j := 0; j < len(kv.fv); j += 2 {
				cmd = cmd.FieldValue(kv.fv[j], kv.fv[j+1])
			}
			if err := r.Do(context.Background(), cmd.Build()).Error(); err != nil {
				b.Fatal(err)
			}
		}
	}
	addr := strings.TrimPrefix(e.base, "http://")
	for range b.N {
		before := goMemory()
		conns := make([]net.Conn, n)
		if f := os.Getenv("VIEWER_IDLE_CPUPROFILE"); f != "" {
			stop := startCPUProfile(b, f)
			defer stop()
		}
		start := time.Now()
		var wg sync.WaitGroup
		next := atomic.Int64{}
		errs := make(chan error, 50)
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := int(next.Add(1) - 1)
					if i >= n {
						return
					}
					c, err := dialRawViewer(addr, admin, fmt.Sprintf("d%05d", i))
					if err != nil {
						errs <- err
						return
					}
					conns[i] = c
				}
			}()
		}
		wg.Wait()
		connect := time.Since(start)
		pprof.StopCPUProfile()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		time.Sleep(500 * time.Millisecond) // let the handshake garbage go
		after := goMemory()
		if f := os.Getenv("VIEWER_IDLE_HEAPPROFILE"); f != "" {
			writeHeapProfile(b, f)
		}
		b.ReportMetric(connect.Seconds(), "connect-s")
		b.ReportMetric(float64(int64(after.heap+after.stack)-int64(before.heap+before.stack))/float64(n)/1024, "KB/conn")
		b.ReportMetric(float64(int64(after.stack)-int64(before.stack))/float64(n)/1024, "stack-KB/conn")
		b.ReportMetric(float64(runtime.NumGoroutine())/float64(n), "goroutines/conn")
		for _, c := range conns {
			c.Close()
		}
	}
}

// startCPUProfile profiles the CPU into file until the returned func.
func startCPUProfile(b *testing.B, file string) func() {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// writeHeapProfile writes the heap profile to file.
func writeHeapProfile(b *testing.B, file string) {
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}

// goMemory is the heap and stack memory in use after a GC.
func goMemory() (m struct{ heap, stack uint64 }) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.heap, m.stack = ms.HeapInuse, ms.StackInuse
	return m
}

// dialRawViewer opens /ws/live?subscribe=device on a bare TCP socket and
// reads until the snapshot arrived; it keeps no buffer afterwards.
func dialRawViewer(addr, tok, device string) (net.Conn, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	req := "GET /ws/live?subscribe=" + device + " HTTP/1.1\r\nHost: " + addr +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer " +
		tok + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		c.Close()
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(c, 4096)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("dial %s: HTTP %d", device, resp.StatusCode)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(`"snapshot"`)) {
		n, err := br.Read(buf)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("snapshot of %s: %w", device, err)
		}
		got = append(got, buf[:n]...)
	}
	_ = c.SetReadDeadline(time.Time{})
	return c, nil
}

package wsgateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/devtrack/devtrack/wsgateway"
)

// BenchmarkIdleDevices measures what an idle device connection holds in the
// gateway: INGEST_IDLE (default 2000) devices connect and send nothing; it
// reports the growth of the Go heap and stacks in use (heap-B/conn, after a
// GC; stack-B/conn the stacks alone) and of the process's resident set
// (rss-B/conn), per connection. The
// devices are bare TCP connections that did the WebSocket handshake by hand
// (no goroutine, no buffers), so what the client side adds is a few hundred
// bytes of the process's own net.Conn. b.N is ignored: one round.
//
//	go test -run '^$' -bench IdleDevices -benchtime 1x ./wsgateway/
func BenchmarkIdleDevices(b *testing.B) {
	n := benchEnvInt("INGEST_IDLE", 2000)
	e := newEnv(b, wsgateway.Config{})
	toks := make([]string, n)
	for i := range n {
		toks[i] = e.addDevice(fmt.Sprintf("i%05d", i), "g")
	}
	addr := strings.TrimPrefix(e.base, "http://")
	// One connection first: warm-up (pools, the token cache's first query).
	warm := handshake(b, addr, e.addDevice("warm", "g"))
	defer warm.Close()
	heap0, stack0, rss0 := memNow()
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for _, tok := range toks {
		conns = append(conns, handshake(b, addr, tok))
	}
	checkFor(b, 10*time.Second, "all devices registered", func() bool {
		return e.metric("devtrack_gateway_devices_connected") >= float64(n+1)
	})
	time.Sleep(time.Second) // let the presence publications end
	heap1, stack1, rss1 := memNow()
	b.ReportMetric(float64(heap1-heap0)/float64(n), "heap-B/conn")
	b.ReportMetric(float64(stack1-stack0)/float64(n), "stack-B/conn")
	b.ReportMetric(float64(rss1-rss0)/float64(n), "rss-B/conn")
	if p := os.Getenv("INGEST_IDLE_HEAPPROFILE"); p != "" {
		f, err := os.Create(p)
		if err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
}

// memNow returns the heap and stacks in use after a GC (heap counts both),
// the stacks alone, and the resident set.
func memNow() (heap, stack, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	heap = int64(ms.HeapInuse + ms.StackInuse)
	stack = int64(ms.StackInuse)
	raw, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			rss = kb * 1024
		}
	}
	return heap, stack, rss
}

// handshake opens a device WebSocket by hand and returns its TCP
// connection, read past the 101 response.
func handshake(b testing.TB, addr, tok string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	req := "GET /ws/device HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer " + tok + "\r\n\r\n"
	if _, err := c.Write([]byte(req)); err != nil {
		b.Fatal(err)
	}
	br := bufio.NewReaderSize(c, 512)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		b.Fatalf("handshake: %v %v", resp, err)
	}
	if br.Buffered() > 0 {
		b.Fatal("bytes after the handshake")
	}
	return c
}

package wsgateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/devtrack/devtrack/wsgateway"
	"github.com/gorilla/websocket"
)

// benchEnvInt reads a benchmark knob from the environment.
func benchEnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuNow returns the CPU time used so far by this process and by the
// test's redis-server.
func (e *env) cpuNow() (proc, redis time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	proc = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	info, _ := e.redis.Do("INFO", "cpu")
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_user" || k == "used_cpu_sys") {
			f, _ := strconv.ParseFloat(v, 64)
			redis += time.Duration(f * float64(time.Second))
		}
	}
	return proc, redis
}

// reportCPU reports the CPU time per frame since (proc0, redis0).
func (e *env) reportCPU(b *testing.B, frames int, proc0, redis0 time.Duration) {
	proc, redis := e.cpuNow()
	if frames > 0 {
		b.ReportMetric(float64((proc-proc0).Nanoseconds())/1000/float64(frames), "proc-cpu-us/frame")
		b.ReportMetric(float64((redis-redis0).Nanoseconds())/1000/float64(frames), "redis-cpu-us/frame")
	}
}

// trimQueue empties the ingest list between rounds: no worker drains it here.
func (e *env) trimQueue() {
	q := e.rdb.Keys().Queue()
	_ = e.rdb.Redis().Do(context.Background(), e.rdb.Redis().B().Del().Key(q).Build()).Error()
}

// BenchmarkIngestWS measures device frames acked through /ws/device: N
// devices (INGEST_DEVICES, default 1000) each keep up to 4 frames unacked
// (closed loop: the ceiling), or, with INGEST_RATE frames/s in total, send
// on a fixed schedule (open loop: latency at that rate). It reports acked
// frames/s and the ack latency p50/p99, from the write of a frame to the
// read of its ack.
//
//	go test -run '^$' -bench IngestWS -benchtime 200000x ./wsgateway/
//	INGEST_RATE=20000 go test -run '^$' -bench IngestWS -benchtime 200000x ./wsgateway/
func BenchmarkIngestWS(b *testing.B) {
	devices := benchEnvInt("INGEST_DEVICES", 1000)
	rate := benchEnvInt("INGEST_RATE", 0)
	e := newEnv(b, wsgateway.Config{FrameRate: 100_000, FrameBurst: 100_000})
	conns := make([]*websocket.Conn, devices)
	for i := range devices {
		tok := e.addDevice(fmt.Sprintf("d%04d", i), "g")
		ws, _, err := e.dial(tok)
		if err != nil {
			b.Fatal(err)
		}
		defer ws.Close()
		conns[i] = ws
	}
	per := max(b.N/devices, 1)
	e.runIngest(b, devices, 1, "acked/s", func(d int) []time.Duration {
		return ingestDevice(b, conns[d], per, rate, devices)
	})
}

// runIngest runs client(i) for i < clients on goroutines of their own,
// each returning the latency of its requests of perRequest frames, and
// reports frames/s (as unit), p50 and p99 of the latencies and the CPU per
// frame of this process and the test's redis-server; the ingest list is
// emptied afterwards.
func (e *env) runIngest(b *testing.B, clients, perRequest int, unit string, client func(i int) []time.Duration) {
	lats := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	proc0, redis0 := e.cpuNow()
	b.ResetTimer()
	start := time.Now()
	for i := range clients {
		wg.Go(func() { lats[i] = client(i) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	e.reportCPU(b, len(all)*perRequest, proc0, redis0)
	e.trimQueue()
	slices.Sort(all)
	b.ReportMetric(float64(len(all)*perRequest)/elapsed.Seconds(), unit)
	if len(all) > 0 {
		b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds())/1000, "p99-ms")
	}
}

// ingestDevice sends n frames on ws and returns each one's ack latency.
func ingestDevice(b *testing.B, ws *websocket.Conn, n, rate, devices int) []time.Duration {
	const window = 4
	sent := make([]time.Time, n)
	lat := make([]time.Duration, 0, n)
	slots := make(chan struct{}, window)
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ack struct {
			Type string   `json:"type"`
			IDs  []string `json:"ids"`
		}
		for len(lat) < n {
			_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, raw, err := ws.ReadMessage()
			if err != nil {
				b.Errorf("read: %v", err)
				return
			}
			ack.IDs = ack.IDs[:0]
			if err := json.Unmarshal(raw, &ack); err != nil || ack.Type != "ack" {
				b.Errorf("reply %s", raw)
				return
			}
			now := time.Now()
			for _, id := range ack.IDs {
				i, _ := strconv.Atoi(id)
				lat = append(lat, now.Sub(sent[i]))
				if rate == 0 {
					<-slots
				}
			}
		}
	}()
	var interval time.Duration
	next := time.Now()
	if rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(devices) / float64(rate))
		next = next.Add(time.Duration(int64(interval) * int64(len(sent)%97) / 97))
	}
	var buf []byte
	for i := range n {
		if rate > 0 {
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
			next = next.Add(interval)
		} else {
			select {
			case slots <- struct{}{}:
			case <-done:
				return lat
			}
		}
		buf = buf[:0]
		buf = append(buf, `{"type":"location","id":"`...)
		buf = strconv.AppendInt(buf, int64(i), 10)
		buf = append(buf, `","ts":`...)
		buf = strconv.AppendInt(buf, time.Now().UnixMilli(), 10)
		buf = append(buf, `,"data":{"lat":31.2304,"lng":121.4737,"speed":12.5}}`...)
		sent[i] = time.Now()
		if err := ws.WriteMessage(websocket.TextMessage, buf); err != nil {
			b.Errorf("write: %v", err)
			break
		}
	}
	<-done
	return lat
}

// BenchmarkIngestHTTP measures POST /api/v1/ingest with batches of
// INGEST_BATCH frames (default 50) from INGEST_CLIENTS concurrent clients
// (default 32), each its own device. It reports frames/s and the request
// latency p50/p99.
//
//	go test -run '^$' -bench IngestHTTP -benchtime 4000x ./wsgateway/
func BenchmarkIngestHTTP(b *testing.B) {
	batch := benchEnvInt("INGEST_BATCH", 50)
	clients := benchEnvInt("INGEST_CLIENTS", 32)
	e := newEnv(b, wsgateway.Config{FrameRate: 1_000_000, FrameBurst: 1_000_000})
	toks := make([]string, clients)
	for i := range clients {
		toks[i] = e.addDevice(fmt.Sprintf("h%03d", i), "g")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	per := max(b.N/clients, 1)
	e.runIngest(b, clients, batch, "frames/s", func(c int) []time.Duration {
		lat := make([]time.Duration, 0, per)
		var body bytes.Buffer
		for r := range per {
			body.Reset()
			body.WriteByte('[')
			for f := range batch {
				if f > 0 {
					body.WriteByte(',')
				}
				fmt.Fprintf(&body, `{"type":"location","id":"%d-%d","ts":%d,"data":{"lat":31.2304,"lng":121.4737,"speed":12.5}}`,
					r, f, time.Now().UnixMilli())
			}
			body.WriteByte(']')
			req, _ := http.NewRequest("POST", e.base+"/api/v1/ingest", bytes.NewReader(body.Bytes()))
			req.Header.Set("Authorization", "Bearer "+toks[c])
			req.Header.Set("Content-Type", "application/json")
			t0 := time.Now()
			resp, err := hc.Do(req)
			if err != nil {
				b.Errorf("post: %v", err)
				return lat
			}
			var out struct{ Accepted int }
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 200 || out.Accepted != batch {
				b.Errorf("status %d, accepted %d, %v", resp.StatusCode, out.Accepted, err)
				return lat
			}
			lat = append(lat, time.Since(t0))
		}
		return lat
	})
}

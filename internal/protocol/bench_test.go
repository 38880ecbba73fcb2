package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func BenchmarkParseLocation(b *testing.B) {
	raw := []byte(`{"type":"location","id":"m-17","ts":1763900000000,"data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8,"crs":"wgs84"}}`)
	var l Limits
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p := l.Parse(raw, testNow, nil)
		if len(p.Items) != 1 {
			b.Fatal(p.Errors)
		}
	}
}

func BenchmarkParseLog(b *testing.B) {
	raw := []byte(`{"type":"log","id":"m-18","ts":1763900000123,"data":{"level":"warn","message":"door 2 opened","fields":{"door":2}}}`)
	var l Limits
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p := l.Parse(raw, testNow, nil)
		if len(p.Items) != 1 {
			b.Fatal(p.Errors)
		}
	}
}

// BenchmarkParseBatch parses a batch of 100 frames (90 locations, 10 logs);
// frames/s is the figure to compare with the 50,000 frames/s target.
func BenchmarkParseBatch(b *testing.B) {
	const n = 100
	var sb strings.Builder
	sb.WriteString(`{"type":"batch","items":[`)
	for i := range n {
		if i > 0 {
			sb.WriteByte(',')
		}
		if i%10 == 9 {
			fmt.Fprintf(&sb, `{"type":"log","id":"m-%d","ts":1763900000123,"data":{"level":"info","message":"tick %d","fields":{"n":%d}}}`, i, i, i)
			continue
		}
		fmt.Fprintf(&sb, `{"type":"location","id":"m-%d","ts":1763900000000,"data":{"lat":31.%04d,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90}}`, i, i)
	}
	sb.WriteString(`]}`)
	raw := []byte(sb.String())
	var l Limits
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p := l.Parse(raw, testNow, nil)
		if len(p.Items) != n {
			b.Fatal(p.Errors)
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "frames/s")
}

func BenchmarkDecodeItem(b *testing.B) {
	raw := []byte(`{"v":1,"device":"dev-1","id":"m-17","type":"location","ts":1763900000000,"received_at":1763900000100,"gateway":"gw-1","data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeItem(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLiveEncode compares AppendLive with the json.Marshal it replaces
// in the worker (one live message per stored item).
func BenchmarkLiveEncode(b *testing.B) {
	raw := []byte(`{"v":1,"device":"dev-1","id":"m-17","type":"location","ts":1763900000000,"received_at":1763900000100,"gateway":"gw-1","data":{"lat":31.2304,"lng":121.4737,"accuracy":12.5,"speed":3.2,"heading":90,"altitude":8}}`)
	it, err := DecodeItem(raw)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("AppendLive", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, 512)
		for b.Loop() {
			buf = AppendLive(buf[:0], it)
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(LiveOf(it)); err != nil {
				b.Fatal(err)
			}
		}
	})
}

package redisq_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// 2,500 devices subscribed at once are confirmed, held on one connection
// and delivered; unsubscribed, Redis no longer counts them; subscribed,
// unsubscribed and subscribed again in a row, a device ends subscribed.
func TestLiveSubscriberHoldsManyDevicesOnOneConnection(t *testing.T) {
	c, srv := open(t)
	var mu sync.Mutex
	got := map[string]string{}
	s := c.NewLiveSubscriber(func(device string, msg []byte) {
		mu.Lock()
		got[device] = string(msg)
		mu.Unlock()
	}, nil, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	defer func() { cancel(); <-done }()

	devices := make([]string, 2500)
	for i := range devices {
		devices[i] = fmt.Sprintf("dev-%04d", i)
	}
	wait := func(chs []<-chan struct{}) {
		t.Helper()
		for _, ch := range chs {
			select {
			case <-ch:
			case <-time.After(10 * time.Second):
				t.Fatal("subscription not confirmed in 10 s")
			}
		}
	}
	wait(s.Subscribe(devices))
	subscribers := func() int {
		r := c.Redis()
		out, err := r.Do(context.Background(), r.B().ClientList().Build()).ToString()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if i := strings.Index(l, " sub="); i >= 0 {
				if v, _ := strconv.Atoi(strings.Fields(l[i+5:])[0]); v > 0 {
					n++
				}
			}
		}
		return n
	}
	if n := subscribers(); n != 1 {
		t.Fatalf("%d connections hold subscriptions, want 1", n)
	}
	pub := func(device, msg string) {
		t.Helper()
		if _, err := srv.Do("PUBLISH", "devtrack:live:"+device, msg); err != nil {
			t.Fatal(err)
		}
	}
	pub("dev-2499", "last")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		m := got["dev-2499"]
		mu.Unlock()
		if m == "last" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message on dev-2499 not delivered")
		}
		time.Sleep(10 * time.Millisecond)
	}

	numsub := func(device string) string {
		r, ch := c.Redis(), "devtrack:live:"+device
		m, err := r.Do(context.Background(), r.B().PubsubNumsub().Channel(ch).Build()).AsIntMap()
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(m[ch], 10)
	}
	s.Unsubscribe(devices[:2000])
	deadline = time.Now().Add(5 * time.Second)
	for numsub("dev-1999") != "0" || numsub("dev-0000") != "0" {
		if time.Now().After(deadline) {
			t.Fatal("unsubscribed devices still subscribed in Redis")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := numsub("dev-2000"); n != "1" {
		t.Fatalf("dev-2000 has %s subscribers, want 1 (still wanted)", n)
	}
	if n := s.Subscribed(); n != 500 {
		t.Fatalf("%d wanted, want 500", n)
	}

	for range 50 {
		s.Subscribe([]string{"flip"})
		s.Unsubscribe([]string{"flip"})
	}
	wait(s.Subscribe([]string{"flip"}))
	if n := numsub("flip"); n != "1" {
		t.Fatalf("flip has %s subscribers after subscribe, unsubscribe ... subscribe, want 1", n)
	}
}

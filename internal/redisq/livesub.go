package redisq

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/redis/rueidis"
)

// LiveSubscriber holds a gateway's subscriptions to device live channels on
// one connection of its own, subscribing and unsubscribing as viewers come
// and go. One Receive per device, as the gateway had, costs a goroutine and
// a rueidis subscription per watched device: 2 goroutines and 7.5 KB of
// stack per idle viewer (BenchmarkViewerIdle), and a Receive never
// unsubscribed when it ended. Here every command goes out in order on one
// connection, so an UNSUBSCRIBE and a later SUBSCRIBE of the same channel
// cannot overtake each other, and consecutive requests are sent together:
// 10,000 viewers connecting at once make a few SUBSCRIBEs of many channels.
//
// After a lost connection, Run connects again, subscribes to every channel
// still wanted and calls renewed with their devices once Redis confirms
// them: what was published meanwhile is lost, so the gateway sends those
// devices' viewers a fresh snapshot.
type LiveSubscriber struct {
	c       *Client
	prefix  string // of the live channels: prefix + device
	message func(device string, msg []byte)
	renewed func(devices []string)
	lost    func(err error)
	wake    chan struct{}

	mu     sync.Mutex
	wanted map[string]*liveSub // channel -> its subscription
	ops    []liveOp            // not yet sent, in order
	// unconfirmed counts, per channel, the SUBSCRIBEs queued or sent on the
	// current connection and not yet confirmed: only the confirmation of
	// the last one confirms the channel's subscription (one sent before an
	// UNSUBSCRIBE says nothing about the SUBSCRIBE after it).
	unconfirmed map[string]int
	gen         uint64 // of the current connection; a late hook of an old one is ignored
}

type liveSub struct {
	device    string
	confirmed chan struct{} // closed at the first confirmation
	done      bool          // confirmed is closed
	renewing  bool          // subscribed again after a lost connection
}

type liveOp struct {
	subscribe bool
	channel   string
}

// liveChunk is the most channels one SUBSCRIBE or UNSUBSCRIBE names.
const liveChunk = 1000

// NewLiveSubscriber returns a subscriber that calls message for every
// message on a subscribed device's live channel and renewed as described on
// LiveSubscriber. Both run on the connection's reader, one at a time, and
// must not block or call Redis. lost, if not nil, is called (on Run's
// goroutine) when a connection that worked fails, once per loss, not at
// every attempt while Redis stays away. Nothing is subscribed until Run
// runs.
func (c *Client) NewLiveSubscriber(message func(device string, msg []byte), renewed func(devices []string), lost func(err error)) *LiveSubscriber {
	return &LiveSubscriber{c: c, prefix: c.keys.LiveChannel(""), message: message, renewed: renewed, lost: lost,
		wake: make(chan struct{}, 1), wanted: map[string]*liveSub{}, unconfirmed: map[string]int{}}
}

// Subscribe adds the devices' live channels and returns, for each device in
// order, a channel closed once Redis has confirmed its subscription: from
// then on nothing published on it is missed. It does not wait for Redis.
func (s *LiveSubscriber) Subscribe(devices []string) []<-chan struct{} {
	out := make([]<-chan struct{}, len(devices))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, d := range devices {
		ch := s.prefix + d
		ls := s.wanted[ch]
		if ls == nil {
			ls = &liveSub{device: d, confirmed: make(chan struct{})}
			s.wanted[ch] = ls
			s.ops = append(s.ops, liveOp{subscribe: true, channel: ch})
			s.unconfirmed[ch]++
		}
		out[i] = ls.confirmed
	}
	s.signal()
	return out
}

// Unsubscribe drops the devices' live channels.
func (s *LiveSubscriber) Unsubscribe(devices []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range devices {
		ch := s.prefix + d
		if s.wanted[ch] == nil {
			continue
		}
		delete(s.wanted, ch)
		s.ops = append(s.ops, liveOp{channel: ch})
	}
	s.signal()
}

// Subscribed is the number of channels wanted.
func (s *LiveSubscriber) Subscribed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.wanted)
}

func (s *LiveSubscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run holds the connection and sends the subscription changes until ctx
// ends, connecting again (backing off up to 2 s) after a loss.
func (s *LiveSubscriber) Run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for first := true; ctx.Err() == nil; first = false {
		if s.connected(ctx, first) {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// connected runs one connection until it fails or ctx ends, and reports
// whether Redis answered a command on it (else Run backs off longer).
func (s *LiveSubscriber) connected(ctx context.Context, first bool) (answered bool) {
	s.mu.Lock()
	s.gen++
	gen := s.gen
	s.mu.Unlock()
	dc, release := s.c.rdb.Dedicate()
	defer release()
	lost := dc.SetPubSubHooks(rueidis.PubSubHooks{
		OnMessage: func(m rueidis.PubSubMessage) {
			if d, ok := strings.CutPrefix(m.Channel, s.prefix); ok {
				s.message(d, []byte(m.Message))
			}
		},
		OnSubscription: func(sub rueidis.PubSubSubscription) { s.confirm(gen, sub) },
	})
	// Everything wanted is subscribed anew on this connection; the queued
	// changes are in it already.
	s.mu.Lock()
	clear(s.unconfirmed)
	s.ops = s.ops[:0]
	for ch, ls := range s.wanted {
		ls.renewing = !first
		s.ops = append(s.ops, liveOp{subscribe: true, channel: ch})
		s.unconfirmed[ch] = 1
	}
	s.mu.Unlock()
	s.signal()
	for {
		var err error
		select {
		case <-ctx.Done():
			return answered
		case err = <-lost:
		case <-s.wake:
			if err = s.send(ctx, dc); err == nil {
				answered = true
				continue
			}
		}
		if answered && ctx.Err() == nil && s.lost != nil {
			if err == nil {
				err = errors.New("connection closed")
			}
			s.lost(err)
		}
		return answered
	}
}

// send sends the queued changes, consecutive ones of a kind in one command.
func (s *LiveSubscriber) send(ctx context.Context, dc rueidis.DedicatedClient) error {
	s.mu.Lock()
	ops := s.ops
	s.ops = nil
	s.mu.Unlock()
	for len(ops) > 0 {
		n := 1
		for n < len(ops) && n < liveChunk && ops[n].subscribe == ops[0].subscribe {
			n++
		}
		chs := make([]string, n)
		for i := range n {
			chs[i] = ops[i].channel
		}
		var cmd rueidis.Completed
		if ops[0].subscribe {
			cmd = dc.B().Subscribe().Channel(chs...).Build()
		} else {
			cmd = dc.B().Unsubscribe().Channel(chs...).Build()
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := dc.Do(cctx, cmd).Error()
		cancel()
		if err != nil {
			// The connection is closed by release; the next one subscribes
			// to everything wanted.
			return err
		}
		ops = ops[n:]
	}
	return nil
}

// confirm is the connection's subscription hook.
func (s *LiveSubscriber) confirm(gen uint64, sub rueidis.PubSubSubscription) {
	if sub.Kind != "subscribe" {
		return
	}
	s.mu.Lock()
	var renewed []string
	if gen != s.gen {
		// A hook of a connection given up.
	} else if s.unconfirmed[sub.Channel] > 1 {
		s.unconfirmed[sub.Channel]--
	} else {
		delete(s.unconfirmed, sub.Channel)
		if ls := s.wanted[sub.Channel]; ls != nil {
			if !ls.done {
				ls.done = true
				close(ls.confirmed)
			} else if ls.renewing {
				renewed = append(renewed, ls.device)
			}
			ls.renewing = false
		}
	}
	s.mu.Unlock()
	if len(renewed) > 0 && s.renewed != nil {
		s.renewed(renewed)
	}
}

package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The tests of a Consumer serving several queues by priority that depend on
// timing run here, in synctest bubbles against fake queues; the ones on the
// real wire are in multiqueue_test.go.

// Names of the two queues of these tests, highest priority first.
const (
	realtimeName = "pcsync-realtime"
	bulkName     = "pcsync-bulk"
)

// TestPriorityReadyLanes: a free worker takes the ready lane of the highest
// priority, lanes of one priority in the order they became ready, and a
// lane a higher-priority message joins moves up, behind the lanes already
// at that priority.
func TestPriorityReadyLanes(t *testing.T) {
	r := newReadyLanes(3, 16)
	lanes := map[string]*lane{}
	for _, k := range []string{"b1", "b2", "m1", "b3", "r1", "m2"} {
		lanes[k] = &lane{key: k}
	}
	prio := map[byte]int{'r': 0, 'm': 1, 'b': 2}
	for _, k := range []string{"b1", "b2", "m1", "b3", "r1", "m2"} {
		r.push(lanes[k], prio[k[0]])
	}
	r.raise(lanes["b3"], 1) // now behind m1 and m2
	r.raise(lanes["m2"], 2) // lower: stays where it is
	r.raise(lanes["b2"], 0) // behind r1
	r.remove(lanes["b1"])   // the shutdown took it away
	var got []string
	for l := r.pop(); l != nil; l = r.pop() {
		if l.queued {
			t.Errorf("lane %s: still marked queued after pop", l.key)
		}
		got = append(got, l.key)
	}
	if want := []string{"r1", "b2", "m1", "m2", "b3"}; !slices.Equal(got, want) {
		t.Errorf("lanes in the order workers take them: got %v, want %v", got, want)
	}
	if n := len(r.tokens); n != 6 {
		t.Errorf("tokens: got %d, want one per push (6): a worker that takes a removed lane's token finds nothing", n)
	}
}

// twoFakeQueues makes a realtime and a bulk fake queue, with the visibility
// timeouts given, and the Consumer config that serves them in that order.
func twoFakeQueues(rtVT, bulkVT time.Duration) (rt, bulk *fakeSQS, client fakeQueues, queues []Source) {
	rt = newNamedFakeSQS(realtimeName, rtVT)
	bulk = newNamedFakeSQS(bulkName, bulkVT)
	return rt, bulk, newFakeQueues(rt, bulk), []Source{{URL: rt.url}, {URL: bulk.url}}
}

// TestPriorityStart: with one worker busy and bulk messages waiting in many
// lanes, a realtime message that arrives is started next, before any
// waiting bulk lane; and a realtime message that joins a waiting bulk lane
// of its key moves that lane up: the lane runs next (its bulk message
// first, in receive order, then the realtime one), before the other bulk
// lanes.
func TestPriorityStart(t *testing.T) {
	for _, tc := range []struct {
		name string
		rt   string   // the realtime message, sent while b0:x runs
		want []string // the first handled, in order
	}{
		{"new lane", "rt:1", []string{"b0:x", "rt:1", "b1:x", "b2:x"}},
		{"lane moves up", "b7:rt", []string{"b0:x", "b7:x", "b7:rt", "b1:x"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rt, bulk, client, queues := twoFakeQueues(30*time.Second, 30*time.Second)
				var bodies []string
				for i := range 10 {
					bodies = append(bodies, fmt.Sprintf("b%d:x", i))
				}
				bulk.send(bodies...)

				var mu sync.Mutex
				var order []string
				var wrong []string
				log, _ := newLogger(t)
				c, err := NewConsumer(client, Config{
					Queues: queues, Workers: 1, Pollers: 1, WaitTime: time.Second, Logger: log,
				}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
					mu.Lock()
					for _, m := range batch {
						order = append(order, m.Body)
						wantQueue, wantPrio := bulkName, 1
						if m.Body == tc.rt {
							wantQueue, wantPrio = realtimeName, 0
						}
						if m.Queue != wantQueue || m.Priority != wantPrio {
							wrong = append(wrong, fmt.Sprintf("%s: Queue %q Priority %d, want %q %d", m.Body, m.Queue, m.Priority, wantQueue, wantPrio))
						}
					}
					mu.Unlock()
					pause(ctx, time.Second)
					return ackAll(batch)
				}})
				if err != nil {
					t.Fatal(err)
				}
				r := startConsumer(t, c)
				handled := func() int {
					mu.Lock()
					defer mu.Unlock()
					return len(order)
				}
				settleUntil(t, time.Minute, "b0:x started with every bulk message held", func() bool {
					return handled() == 1 && c.Held() == len(bodies)
				})
				sent := time.Now()
				rt.send(tc.rt)
				settleUntil(t, time.Second, "the realtime message received", func() bool { return c.Held() == len(bodies)+1 })
				if time.Since(sent) >= time.Second {
					t.Fatalf("realtime message received %v after it was sent, after b0:x ended; the test shows nothing", time.Since(sent))
				}
				settleUntil(t, time.Minute, "the first messages handled", func() bool { return handled() >= len(tc.want) })
				if err := r.stop(t); err != nil {
					t.Fatalf("Run: got %v, want nil", err)
				}
				mu.Lock()
				defer mu.Unlock()
				if got := order[:len(tc.want)]; !slices.Equal(got, tc.want) {
					t.Errorf("handling order: got %v, want %v first", order, tc.want)
				}
				for _, w := range wrong {
					t.Error(w)
				}
			})
		})
	}
}

// TestPriorityFullBulkPrefetch: MaxHeld is per queue. With the bulk queue's
// prefetch full (one bulk message running, the rest of its lane waiting), a
// realtime message is received and handled at once by the free worker, and
// the bulk queue is not asked for more.
func TestPriorityFullBulkPrefetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const maxHeld = 4
		rt, bulk, client, queues := twoFakeQueues(30*time.Second, 30*time.Second)
		var bodies []string
		for i := range 30 {
			bodies = append(bodies, fmt.Sprintf("bulk:%d", i)) // one lane
		}
		bulk.send(bodies...)

		release := make(chan struct{})
		var mu sync.Mutex
		var bulkStarted int
		var rtHandled time.Time
		log, _ := newLogger(t)
		c, err := NewConsumer(client, Config{
			Queues: queues, Workers: 2, Pollers: 1, MaxHeld: maxHeld, WaitTime: time.Second, Logger: log,
		}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
			if batch[0].Queue == bulkName {
				mu.Lock()
				bulkStarted++
				mu.Unlock()
				select {
				case <-release:
				case <-ctx.Done():
				}
				return ackAll(batch)
			}
			mu.Lock()
			rtHandled = time.Now()
			mu.Unlock()
			return ackAll(batch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		t.Cleanup(func() {
			select {
			case <-release:
			default:
				close(release)
			}
		})
		settleUntil(t, time.Minute, "the bulk prefetch full and one bulk message running", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return bulkStarted == 1 && c.Held() == maxHeld
		})
		// Long enough for a bulk poller to try again if it could.
		advance(5 * time.Second)
		bulkReceives := len(bulk.receiveStarts())

		sent := time.Now()
		rt.send("rt:1")
		settleUntil(t, time.Second, "the realtime message handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !rtHandled.IsZero()
		})
		if took := rtHandled.Sub(sent); took != 0 {
			t.Errorf("realtime message handled %v after it was sent, want at once", took)
		}
		if got := len(bulk.receiveStarts()); got != bulkReceives {
			t.Errorf("bulk receives while its prefetch was full: got %d more, want 0", got-bulkReceives)
		}
		if got := len(bulk.message(t, "bulk:4").received); got != 0 {
			t.Errorf("bulk:4 received %d times, want never: the bulk prefetch holds %d", got, maxHeld)
		}
		close(release)
		settleUntil(t, time.Minute, "every bulk message handled", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return bulkStarted == len(bodies)
		})
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
	})
}

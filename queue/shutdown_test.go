package queue

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// testConsumerShutdown cancels a busy consumer on the real wire and checks
// what the shutdown order written on Run leaves behind: nothing starts after
// cancellation, what never started is handed back at once (before any
// running handler returns), running handlers finish or are cancelled at the
// drain deadline, a handler that ignores cancellation has its messages
// abandoned, deletes are done when Run returns, and every message that was
// not deleted is back on the queue exactly once.
//
// Nothing here is measured on the wall clock, so a busy machine cannot fail
// it: the handlers return when the test lets them (proceed), and the
// deadlines below are generous bounds on waits for conditions. How long
// each step takes is checked in TestConsumerShutdownTiming, in a synctest
// bubble.
func testConsumerShutdown(t *testing.T, endpoint string) {
	const total, workers, maxHeld = 40, 4, 20
	// patience bounds every wait for a condition; on a healthy machine each
	// takes well under a second.
	const patience = time.Minute
	for _, tc := range []struct {
		name         string
		vt           int // seconds
		drainTimeout time.Duration
		// handle is the handler's body after it has been counted as
		// started; proceed is closed by the test once the unstarted
		// messages are released (or, with abandoned, once every message
		// is back on the queue).
		handle func(ctx context.Context, proceed <-chan struct{}) Outcome
		// acked is how many messages end deleted.
		acked int
		// cancelled is how many handlers find their context cancelled
		// when they return.
		cancelled int
		// abandoned: the running handlers outlast the drain deadline and
		// its grace, so their messages reappear while they still run.
		abandoned bool
	}{
		{
			// The drain timeout is far longer than the test waits: the
			// handlers return because they are done, not at the deadline.
			// The visibility timeout is far longer too, so a message is
			// back in time only if the consumer handed it back.
			name: "running handlers finish", vt: 300, drainTimeout: 10 * time.Minute,
			handle: func(ctx context.Context, proceed <-chan struct{}) Outcome {
				select {
				case <-proceed:
					return Ack()
				case <-ctx.Done():
					return RetryAfter(0)
				}
			},
			acked: workers, cancelled: 0,
		},
		{
			name: "drain deadline cancels handlers", vt: 300, drainTimeout: 300 * time.Millisecond,
			handle: func(ctx context.Context, _ <-chan struct{}) Outcome {
				pause(ctx, 10*time.Minute)
				return RetryAfter(0) // cancelled: hand it back at once
			},
			acked: 0, cancelled: workers,
		},
		{
			name: "handler ignores cancellation", vt: 2, drainTimeout: 300 * time.Millisecond,
			handle: func(_ context.Context, proceed <-chan struct{}) Outcome {
				<-proceed
				return Ack() // too late: ignored, the message reappears
			},
			acked: 0, cancelled: workers, abandoned: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			counter := newRequestCounter()
			client := newClient(endpoint, counter)
			admin := newClient(endpoint, nil)
			url := createQueue(t, admin, queueName(t, ""), map[string]string{"VisibilityTimeout": fmt.Sprint(tc.vt)})
			bodies := make([]string, total)
			for i := range bodies {
				bodies[i] = fmt.Sprintf("m%d:x", i)
			}
			sendBodies(t, admin, url, bodies, nil)

			rec := newRecorder()
			var mu sync.Mutex
			started := map[string]bool{}
			var finished, cancelled atomic.Int64
			proceed := make(chan struct{})
			log, _ := newLogger(t)
			c, err := NewConsumer(client, Config{
				QueueURL: url, Workers: workers, Pollers: 1, MaxHeld: maxHeld, WaitTime: time.Second,
				DrainTimeout: tc.drainTimeout, Observer: rec, Logger: log,
			}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
				mu.Lock()
				started[batch[0].Body] = true
				mu.Unlock()
				o := tc.handle(ctx, proceed)
				if ctx.Err() != nil {
					cancelled.Add(1)
				}
				finished.Add(1)
				return []Outcome{o}
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, c)
			// A failed check must not leave the handlers blocked.
			var once sync.Once
			letGo := func() { once.Do(func() { close(proceed) }) }
			t.Cleanup(letGo)
			waitFor(t, patience, "all workers busy and the prefetch full", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(started) == workers && c.Held() == maxHeld
			})

			r.cancel()
			waitFor(t, patience, "Draining to report true", c.Draining)
			waitFor(t, patience, "the unstarted messages released", func() bool { return rec.released.Load() >= maxHeld-workers })
			if tc.acked > 0 {
				// These handlers cannot return before proceed is closed
				// (the drain deadline is far away): the release did not
				// wait for them.
				if got := finished.Load(); got != 0 {
					t.Errorf("handlers returned before the unstarted messages were released: got %d, want 0", got)
				}
			}

			seen := map[string]int{}
			if tc.abandoned {
				// The handlers still run, and Run waits for them; their
				// messages are no longer extended and reappear meanwhile.
				for _, m := range receiveAll(t, admin, url, total, patience) {
					seen[*m.Body]++
				}
				select {
				case <-r.finished:
					t.Errorf("Run returned while handlers were still running, want it to wait for them")
				default:
				}
			}
			letGo()
			if err := r.wait(t, patience); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			// Every delete is done before Run returns, and nothing is
			// deleted afterwards (a late Ack is ignored).
			if got := rec.acked.Load(); got != int64(tc.acked) {
				t.Errorf("acked when Run returned: got %d, want %d", got, tc.acked)
			}
			if got := counter.count(OpDeleteMessageBatch); tc.acked == 0 && got != 0 {
				// A late Ack is not even tried: by then another consumer
				// may hold the message.
				t.Errorf("DeleteMessageBatch calls: got %d, want 0 (nothing acked in time)", got)
			}
			if got := finished.Load(); got != workers {
				t.Errorf("handlers returned when Run returned: got %d, want all %d", got, workers)
			}
			if got := cancelled.Load(); got != int64(tc.cancelled) {
				t.Errorf("handlers that found their context cancelled: got %d, want %d", got, tc.cancelled)
			}
			mu.Lock()
			if len(started) != workers {
				t.Errorf("handlers started: got %d, want %d (nothing starts after cancellation)", len(started), workers)
			}
			mu.Unlock()
			if got := rec.released.Load(); got != maxHeld-workers {
				t.Errorf("released unstarted: got %d, want %d", got, maxHeld-workers)
			}

			// Every message not deleted is back on the queue, once. With
			// a visibility timeout of minutes, "back" means handed back.
			if !tc.abandoned {
				for _, m := range receiveAll(t, admin, url, total-tc.acked, patience) {
					seen[*m.Body]++
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for _, b := range bodies {
				deleted := started[b] && tc.acked > 0
				switch {
				case deleted && seen[b] != 0:
					t.Errorf("%s: acked but back on the queue", b)
				case !deleted && seen[b] != 1:
					t.Errorf("%s: on the queue %d times within %v, want once", b, seen[b], patience)
				}
			}
		})
	}
}

// TestConsumerShutdownTiming runs the shutdown of testConsumerShutdown in a
// synctest bubble, against a fake SQS, to check when each step happens:
// the clock there moves only when every goroutine waits, so the times are
// exact whatever the load. Run returns as soon as the running handlers are
// done, at the drain deadline when they obey its cancellation, or, when
// they ignore it, once they return, their messages having been abandoned
// (no longer extended) at the deadline plus abandonGrace. Unstarted
// messages are handed back at the instant of cancellation, and no receive
// starts after it.
func TestConsumerShutdownTiming(t *testing.T) {
	const total, workers, maxHeld = 40, 4, 20
	type fate int
	const (
		deleted    fate = iota // acked, deleted before Run returns
		handedBack             // retried with no delay at the drain deadline
		abandoned              // left to reappear when its visibility runs out
	)
	for _, tc := range []struct {
		name         string
		vt           time.Duration
		drainTimeout time.Duration
		handle       func(ctx context.Context) Outcome
		// runFor is how long Run takes after cancellation.
		runFor time.Duration
		// running is what becomes of the running handlers' messages.
		running fate
	}{
		{
			name: "running handlers finish", vt: 30 * time.Second, drainTimeout: 10 * time.Second,
			handle: func(ctx context.Context) Outcome {
				pause(ctx, time.Second)
				return Ack()
			},
			runFor: time.Second, running: deleted,
		},
		{
			name: "drain deadline cancels handlers", vt: 30 * time.Second, drainTimeout: 300 * time.Millisecond,
			handle: func(ctx context.Context) Outcome {
				pause(ctx, time.Minute)
				return RetryAfter(0)
			},
			runFor: 300 * time.Millisecond, running: handedBack,
		},
		{
			name: "handler ignores cancellation", vt: 2 * time.Second, drainTimeout: 300 * time.Millisecond,
			handle: func(context.Context) Outcome {
				pause(context.Background(), 2500*time.Millisecond)
				return Ack()
			},
			runFor: 2500 * time.Millisecond, running: abandoned,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				q := newFakeSQS(tc.vt)
				bodies := make([]string, total)
				for i := range bodies {
					bodies[i] = fmt.Sprintf("m%d:x", i)
				}
				q.send(bodies...)

				rec := newRecorder()
				var mu sync.Mutex
				started := map[string]bool{}
				log, _ := newLogger(t)
				c, err := NewConsumer(q, Config{
					QueueURL: q.url, Workers: workers, Pollers: 1, MaxHeld: maxHeld, WaitTime: time.Second,
					DrainTimeout: tc.drainTimeout, Observer: rec, Logger: log,
				}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
					mu.Lock()
					started[batch[0].Body] = true
					mu.Unlock()
					return []Outcome{tc.handle(ctx)}
				}})
				if err != nil {
					t.Fatal(err)
				}
				r := startConsumer(t, c)
				settleUntil(t, time.Minute, "all workers busy and the prefetch full", func() bool {
					mu.Lock()
					defer mu.Unlock()
					return len(started) == workers && c.Held() == maxHeld
				})

				// Every goroutine waits now: no receive is on its way in.
				receives := len(q.receiveStarts())
				cancelled := time.Now()
				r.cancel()
				synctest.Wait()
				if !c.Draining() {
					t.Errorf("Draining right after cancellation: got false, want true")
				}
				if err := r.wait(t, time.Hour); err != nil {
					t.Fatalf("Run: got %v, want nil", err)
				}
				returned := time.Now()
				if took := returned.Sub(cancelled); took != tc.runFor {
					t.Errorf("Run returned %v after cancellation, want %v", took, tc.runFor)
				}

				if got := len(q.receiveStarts()) - receives; got != 0 {
					t.Errorf("receives started after cancellation: got %d, want 0", got)
				}
				wantAcked := int64(0)
				if tc.running == deleted {
					wantAcked = workers
				}
				if got := rec.acked.Load(); got != wantAcked {
					t.Errorf("acked: got %d, want %d", got, wantAcked)
				}
				if got := rec.released.Load(); got != maxHeld-workers {
					t.Errorf("released unstarted: got %d, want %d", got, maxHeld-workers)
				}

				abandonedAt := cancelled.Add(tc.drainTimeout + abandonGrace)
				mu.Lock()
				defer mu.Unlock()
				if len(started) != workers {
					t.Errorf("handlers started: got %d, want %d (nothing starts after cancellation)", len(started), workers)
				}
				for _, b := range bodies {
					m := q.message(t, b)
					last := visChange{seconds: -1} // none
					if n := len(m.changes); n > 0 {
						last = m.changes[n-1]
					}
					switch {
					case len(m.received) == 0:
						// Never received: left alone on the queue.
						if len(m.changes) != 0 || !m.deletedAt.IsZero() {
							t.Errorf("%s: never received, but changed %d times, deleted at %v", b, len(m.changes), m.deletedAt)
						}
					case len(m.received) > 1:
						t.Errorf("%s: handed out %d times, want once", b, len(m.received))
					case !started[b]:
						// Held, never started: handed back at the instant
						// of cancellation.
						if last.seconds != 0 || !last.at.Equal(cancelled) {
							t.Errorf("%s: unstarted, its last visibility change was %s, want 0s at once", b, last.since(cancelled))
						}
					case tc.running == deleted:
						if m.deletedAt.IsZero() || m.deletedAt.After(returned) {
							t.Errorf("%s: acked, deleted at %v after cancellation, want before Run returned (%v)",
								b, m.deletedAt.Sub(cancelled), tc.runFor)
						}
					case tc.running == handedBack:
						if !m.deletedAt.IsZero() || last.seconds != 0 || !last.at.Equal(cancelled.Add(tc.drainTimeout)) {
							t.Errorf("%s: cancelled handler's message: last visibility change %s (deleted %v), want 0s at the drain deadline (%v after cancellation)",
								b, last.since(cancelled), !m.deletedAt.IsZero(), tc.drainTimeout)
						}
					case tc.running == abandoned:
						if !m.deletedAt.IsZero() {
							t.Errorf("%s: abandoned, but deleted (a late Ack applied)", b)
						}
						if last.at.After(abandonedAt) {
							t.Errorf("%s: last visibility change %s, want none after it was abandoned (%v after cancellation)",
								b, last.since(cancelled), abandonedAt.Sub(cancelled))
						}
						if m.visibleAt.After(abandonedAt.Add(tc.vt)) {
							t.Errorf("%s: visible again %v after cancellation, want within a visibility timeout (%v) of being abandoned (%v)",
								b, m.visibleAt.Sub(cancelled), tc.vt, abandonedAt.Sub(cancelled))
						}
					}
				}
			})
		})
	}
}

// since describes a visibility change for a failure message of
// TestConsumerShutdownTiming, its time counted from the cancellation; seconds
// -1 stands for no change at all.
func (c visChange) since(cancelled time.Time) string {
	if c.seconds < 0 {
		return "none"
	}
	return fmt.Sprintf("to %ds, %v after cancellation", c.seconds, c.at.Sub(cancelled))
}

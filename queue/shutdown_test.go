package queue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testConsumerShutdown cancels a busy consumer and checks the shutdown
// order written on Run: stop receiving, release what never started, let
// running handlers finish (or cancel them at the deadline), flush, return;
// and that no message is lost or handled twice.
func testConsumerShutdown(t *testing.T, endpoint string) {
	const total, workers, maxHeld = 40, 4, 20
	for _, tc := range []struct {
		name         string
		vt           int // seconds
		drainTimeout time.Duration
		// handle is the handler's body after it has been counted as started.
		handle func(ctx context.Context) Outcome
		// acked is how many messages end deleted.
		acked int
		// backWithin bounds how soon every undeleted message is on the
		// queue again after Run returns.
		backWithin time.Duration
		// runWithin bounds how long Run takes after cancellation.
		runWithin time.Duration
	}{
		{
			name: "running handlers finish", vt: 30, drainTimeout: 10 * time.Second,
			handle: func(ctx context.Context) Outcome {
				pause(ctx, time.Second)
				return Ack()
			},
			acked: workers, backWithin: 3 * time.Second, runWithin: 3 * time.Second,
		},
		{
			name: "drain deadline cancels handlers", vt: 30, drainTimeout: 300 * time.Millisecond,
			handle: func(ctx context.Context) Outcome {
				pause(ctx, time.Minute)
				return RetryAfter(0) // cancelled: hand it back at once
			},
			acked: 0, backWithin: 3 * time.Second, runWithin: 2 * time.Second,
		},
		{
			name: "handler ignores cancellation", vt: 2, drainTimeout: 300 * time.Millisecond,
			handle: func(context.Context) Outcome {
				pause(context.Background(), 2500*time.Millisecond)
				return Ack() // too late: ignored, the message reappears
			},
			acked: 0, backWithin: 5 * time.Second, runWithin: 3 * time.Second,
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
			var finished atomic.Int64
			log, _ := newLogger(t)
			c, err := NewConsumer(client, Config{
				QueueURL: url, Workers: workers, Pollers: 1, MaxHeld: maxHeld, WaitTime: time.Second,
				DrainTimeout: tc.drainTimeout, Observer: rec, Logger: log,
			}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
				mu.Lock()
				started[batch[0].Body] = true
				mu.Unlock()
				o := tc.handle(ctx)
				rec.note("handler returned")
				finished.Add(1)
				return []Outcome{o}
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, c)
			waitFor(t, 10*time.Second, "all workers busy and the prefetch full", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return len(started) == workers && rec.held.Load() == maxHeld
			})

			cancelled := time.Now()
			r.cancel()
			waitFor(t, time.Second, "Draining to report true", c.Draining)
			if err := r.wait(t, 30*time.Second); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			returned := time.Now()
			if took := returned.Sub(cancelled); took > tc.runWithin {
				t.Errorf("Run returned %v after cancellation, want within %v", took, tc.runWithin)
			}
			// Late handlers log through the test's output: wait for them.
			waitFor(t, 10*time.Second, "every started handler to return", func() bool { return finished.Load() == workers })

			mu.Lock()
			if len(started) != workers {
				t.Errorf("handlers started: got %d, want %d (nothing starts after cancellation)", len(started), workers)
			}
			mu.Unlock()
			if got := rec.acked.Load(); got != int64(tc.acked) {
				t.Errorf("acked: got %d, want %d", got, tc.acked)
			}
			if got := rec.released.Load(); got != maxHeld-workers {
				t.Errorf("released unstarted: got %d, want %d", got, maxHeld-workers)
			}

			// Every message not deleted is back on the queue, once.
			back := receiveAll(t, admin, url, total-tc.acked, tc.backWithin)
			seen := map[string]int{}
			for _, m := range back {
				seen[*m.Body]++
			}
			for _, b := range bodies {
				mu.Lock()
				deleted := started[b] && tc.acked > 0
				mu.Unlock()
				switch {
				case deleted && seen[b] != 0:
					t.Errorf("%s: acked but back on the queue", b)
				case !deleted && seen[b] != 1:
					t.Errorf("%s: on the queue %d times within %v, want once", b, seen[b], tc.backWithin)
				}
			}

			// The order: releases come before any running handler returns
			// (in the first case), every delete before Run returns, and no
			// receive starts after the grace.
			releases, returns, acks := rec.eventsNamed("released"), rec.eventsNamed("handler returned"), rec.eventsNamed("acked")
			if len(releases) == 0 {
				t.Fatalf("no release event")
			}
			if tc.acked > 0 && slices.MaxFunc(releases, time.Time.Compare).After(slices.MinFunc(returns, time.Time.Compare)) {
				t.Errorf("unstarted messages released after a running handler returned, want before")
			}
			if len(acks) > 0 && slices.MaxFunc(acks, time.Time.Compare).After(returned) {
				t.Errorf("a delete finished after Run returned, want before")
			}
			counter.mu.Lock()
			receives := counter.times[OpReceiveMessage]
			counter.mu.Unlock()
			if last := slices.MaxFunc(receives, time.Time.Compare); last.After(cancelled.Add(receiveStopGrace)) {
				t.Errorf("a receive started %v after cancellation, want none after %v", last.Sub(cancelled), receiveStopGrace)
			}
		})
	}
}

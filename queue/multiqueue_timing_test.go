package queue

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The timing tests of a Consumer serving several queues: what happens per
// queue (visibility, release, dead letters, logs), in synctest bubbles
// against fake queues (see priority_test.go for the priorities themselves).

// TestMultiQueueHeartbeatTiming: the heartbeat keeps every held message of
// every queue invisible, each queue with its own visibility timeout (2 s and
// 6 s, discovered from the queues), whether the message runs or waits in a
// lane behind a message of its key from the other queue; each extension is
// by the message's own queue's timeout. The fakes hand a message out again
// the instant its visibility runs out and refuse late extensions, and each
// fake only knows its own receipt handles, so a call that mixed queues
// would fail the test too.
func TestMultiQueueHeartbeatTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt, bulk, client, queues := twoFakeQueues(2*time.Second, 6*time.Second)
		byQueue := map[*fakeSQS][]string{
			rt:   {"pair:rt", "r0:x", "r1:x", "r2:x", "r3:x", "r4:x", "r5:x", "r6:x", "r7:x", "r8:x", "r9:x", "r10:x"},
			bulk: {"pair:bulk", "b0:x", "b1:x", "b2:x", "b3:x"},
		}
		hold := map[*fakeSQS]time.Duration{rt: 3 * time.Second, bulk: 9 * time.Second} // 1.5 visibility timeouts
		for q, bodies := range byQueue {
			q.send(bodies...)
		}
		var mu sync.Mutex
		calls := map[string]int{}
		rec := newRecorder()
		log, _ := newLogger(t)
		c, err := NewConsumer(client, Config{
			Queues: queues, Workers: 20, WaitTime: time.Second, Observer: rec, Logger: log,
		}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
			m := batch[0]
			mu.Lock()
			calls[m.Body]++
			mu.Unlock()
			d := hold[bulk]
			switch {
			case bodyKey(m) == "pair":
				d = 7 * time.Second // longer than both timeouts: the other pair message waits that long
			case m.Queue == realtimeName:
				d = hold[rt]
			}
			pause(ctx, d)
			return ackAll(batch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		total := len(byQueue[rt]) + len(byQueue[bulk])
		if !settle(time.Minute, func() bool { return rec.acked.Load() == int64(total) }) {
			t.Errorf("acked after a minute: got %d, want %d", rec.acked.Load(), total)
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		for q, bodies := range byQueue {
			vt := int32(q.vt / time.Second)
			for _, body := range bodies {
				m := q.message(t, body)
				if calls[body] != 1 || len(m.received) != 1 {
					t.Errorf("%s: handled %d times, handed out %d times; want 1 and 1 (no redelivery)", body, calls[body], len(m.received))
				}
				if m.deletedAt.IsZero() {
					t.Errorf("%s: not deleted from its queue", body)
				}
				if len(m.changes) == 0 {
					t.Errorf("%s: never extended, want extended while held past its visibility timeout", body)
				}
				for _, ch := range m.changes {
					if ch.seconds != vt {
						t.Errorf("%s: extended to %ds, want its queue's visibility timeout (%ds)", body, ch.seconds, vt)
					}
				}
				for _, at := range m.late {
					t.Errorf("%s: extension refused at %v: its visibility had run out", body, at)
				}
			}
		}
	})
}

// TestMultiQueueShutdownTiming: at cancellation, the unstarted messages of
// both queues are handed back to their own queue at that instant; the
// running ones (realtime: they came first) finish and are deleted; nothing
// is received afterwards.
func TestMultiQueueShutdownTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const perQueue, workers, maxHeld = 15, 2, 10
		rt, bulk, client, queues := twoFakeQueues(30*time.Second, 30*time.Second)
		bodies := map[*fakeSQS][]string{}
		for _, q := range []*fakeSQS{rt, bulk} {
			for i := range perQueue {
				bodies[q] = append(bodies[q], fmt.Sprintf("%s-%d:x", q.url[strings.LastIndex(q.url, "/")+1:], i))
			}
		}
		rt.send(bodies[rt]...)
		var mu sync.Mutex
		started := map[string]bool{}
		rec := newRecorder()
		log, _ := newLogger(t)
		c, err := NewConsumer(client, Config{
			Queues: queues, Workers: workers, Pollers: 1, MaxHeld: maxHeld, WaitTime: time.Second,
			Observer: rec, Logger: log,
		}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
			mu.Lock()
			started[batch[0].Body] = true
			mu.Unlock()
			pause(ctx, time.Second)
			return ackAll(batch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		settleUntil(t, time.Minute, "the realtime prefetch full", func() bool { return c.Held() == maxHeld })
		bulk.send(bodies[bulk]...)
		settleUntil(t, time.Minute, "both prefetches full and the workers busy", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(started) == workers && c.Held() == 2*maxHeld
		})
		receives := len(rt.receiveStarts()) + len(bulk.receiveStarts())
		cancelled := time.Now()
		r.cancel()
		if err := r.wait(t, time.Hour); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		if took := time.Since(cancelled); took != time.Second {
			t.Errorf("Run returned %v after cancellation, want 1s (the running handlers)", took)
		}
		if got := len(rt.receiveStarts()) + len(bulk.receiveStarts()) - receives; got != 0 {
			t.Errorf("receives after cancellation: got %d, want 0", got)
		}
		if got := rec.released.Load(); got != 2*maxHeld-workers {
			t.Errorf("released: got %d, want %d", got, 2*maxHeld-workers)
		}
		mu.Lock()
		defer mu.Unlock()
		for q, bs := range bodies {
			for _, b := range bs {
				m := q.message(t, b)
				switch {
				case started[b] && q != rt:
					t.Errorf("%s: a bulk message started while realtime ones waited", b)
				case started[b]:
					if m.deletedAt.IsZero() {
						t.Errorf("%s: ran and was acked, but not deleted", b)
					}
				case len(m.received) == 0:
					if len(m.changes) != 0 {
						t.Errorf("%s: never received, but changed", b)
					}
				default:
					last := m.changes[len(m.changes)-1]
					if len(m.received) != 1 || last.seconds != 0 || !last.at.Equal(cancelled) {
						t.Errorf("%s: held, never started: received %d times, last change %s; want once, 0s at once",
							b, len(m.received), last.since(cancelled))
					}
				}
			}
		}
	})
}

// TestMultiQueueFIFORetryReleasesOwnQueue: when a message of a FIFO queue
// goes back with RetryAfter, the messages of its lane from that FIFO queue
// go back with it (they must not overtake it), at that instant; a message
// of the same key from a standard queue keeps its place and runs next.
func TestMultiQueueFIFORetryReleasesOwnQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fifo := newNamedFakeSQS("pcsync-realtime.fifo", 30*time.Second)
		bulk := newNamedFakeSQS(bulkName, 30*time.Second)
		client := newFakeQueues(fifo, bulk)
		fifo.send("g:1")

		proceed := make(chan struct{})
		var mu sync.Mutex
		var order []string
		var retriedAt time.Time
		rec := newRecorder()
		log, _ := newLogger(t)
		c, err := NewConsumer(client, Config{
			Queues: []Source{{URL: fifo.url}, {URL: bulk.url}}, Workers: 2, WaitTime: time.Second,
			Observer: rec, Logger: log,
		}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
			m := batch[0]
			mu.Lock()
			order = append(order, m.Body)
			first := len(order) == 1
			mu.Unlock()
			if first {
				select {
				case <-proceed:
				case <-ctx.Done():
				}
				mu.Lock()
				retriedAt = time.Now()
				mu.Unlock()
				return []Outcome{RetryAfter(10 * time.Second)}
			}
			return ackAll(batch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		settleUntil(t, time.Minute, "g:1 running", func() bool { return c.Busy() == 1 })
		fifo.send("g:2", "g:3")
		settleUntil(t, time.Minute, "g:2 and g:3 waiting", func() bool { return c.Held() == 3 })
		bulk.send("g:b")
		settleUntil(t, time.Minute, "g:b waiting too", func() bool { return c.Held() == 4 })
		advance(time.Second)
		close(proceed)
		settleUntil(t, time.Minute, "g:b handled and the released messages back and handled", func() bool {
			return rec.acked.Load() == 3
		})
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}

		mu.Lock()
		defer mu.Unlock()
		if len(order) < 2 || order[1] != "g:b" {
			t.Errorf("handling order: got %v, want g:b right after g:1 (it keeps its place)", order)
		}
		for _, b := range []string{"g:2", "g:3"} {
			m := fifo.message(t, b)
			if len(m.changes) == 0 || m.changes[0].seconds != 0 || !m.changes[0].at.Equal(retriedAt) {
				t.Errorf("%s: changes %v, want handed back (0s) when g:1 was retried, at %v", b, m.changes, retriedAt)
			}
		}
		if m := bulk.message(t, "g:b"); len(m.changes) != 0 || len(m.received) != 1 || m.deletedAt.IsZero() {
			t.Errorf("g:b: changed %d times, received %d times, deleted %v; want kept, handled once and deleted",
				len(m.changes), len(m.received), !m.deletedAt.IsZero())
		}
		if got := rec.released.Load(); got != 2 {
			t.Errorf("released: got %d, want 2 (g:2 and g:3)", got)
		}
	})
}

// TestMultiQueueStartLog: the start log lists the queues in priority order
// with their dead-letter queues; a message's logs name its queue.
func TestMultiQueueStartLog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt, bulk, client, _ := twoFakeQueues(30*time.Second, 30*time.Second)
		rtDLQ, bulkDLQ := newNamedFakeSQS("pcsync-realtime-dlq", time.Minute), newNamedFakeSQS("pcsync-bulk-dlq", time.Minute)
		client[rtDLQ.url], client[bulkDLQ.url] = rtDLQ, bulkDLQ
		bulk.send("k:x")
		var buf bytes.Buffer
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{mu: &mu, w: &buf}, nil))
		rec := newRecorder()
		c, err := NewConsumer(client, Config{
			Queues:  []Source{{URL: rt.url, DLQURL: rtDLQ.url}, {URL: bulk.url, DLQURL: bulkDLQ.url}},
			Workers: 1, WaitTime: time.Second, Observer: rec, Logger: log,
		}, handlerFuncs{handle: func(context.Context, []*Message) []Outcome { return []Outcome{DeadLetter("test", "why")} }})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		settleUntil(t, time.Minute, "the message dead-lettered", func() bool { return rec.acked.Load() == 1 })
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		mu.Lock()
		defer mu.Unlock()
		var start, dead string
		for line := range strings.Lines(buf.String()) {
			switch {
			case strings.Contains(line, `msg="consumer started"`):
				start = line
			case strings.Contains(line, `msg="message dead-lettered"`):
				dead = line
			}
		}
		for _, want := range []string{
			"queues.0.name=" + realtimeName, "queues.0.url=" + rt.url, "queues.0.dlq=" + rtDLQ.url,
			"queues.1.name=" + bulkName, "queues.1.url=" + bulk.url, "queues.1.dlq=" + bulkDLQ.url,
		} {
			if !strings.Contains(start, want) {
				t.Errorf("start log %q: want %s", start, want)
			}
		}
		if strings.Index(start, "queues.0.") > strings.Index(start, "queues.1.") {
			t.Errorf("start log %q: want the queues in priority order", start)
		}
		if !strings.Contains(dead, "queue="+bulkName) || !strings.Contains(dead, "dlq="+bulkDLQ.url) {
			t.Errorf("dead-letter log %q: want queue=%s and dlq=%s", dead, bulkName, bulkDLQ.url)
		}
	})
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

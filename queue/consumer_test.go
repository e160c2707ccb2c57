package queue

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// cpuTime is the CPU time (user + system) used by this process so far.
func cpuTime(t testing.TB) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// testConsumerThroughput runs 5,000 messages through 32 workers and checks
// that each is handled and deleted, the queue ends empty, and the consumer
// needed few SQS requests per message.
func testConsumerThroughput(t *testing.T, endpoint string) {
	const n = 5000
	admin := newClient(endpoint, nil)
	url := createQueue(t, admin, queueName(t, ""), map[string]string{"VisibilityTimeout": "5"})
	bodies := make([]string, n)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("k%d:%d", i%500, i)
	}
	sendBodies(t, admin, url, bodies, nil)

	counter := newRequestCounter()
	rec := newRecorder()
	var mu sync.Mutex
	handled := make(map[string]int, n)
	distinct := atomic.Int64{}
	log, _ := newLogger(t)
	c, err := NewConsumer(newClient(endpoint, counter), Config{
		QueueURL: url, Workers: 32, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(_ context.Context, batch []*Message) []Outcome {
		mu.Lock()
		for _, m := range batch {
			handled[m.Body]++
			if handled[m.Body] == 1 {
				distinct.Add(1)
			}
		}
		mu.Unlock()
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}

	cpu0, wall0 := cpuTime(t), time.Now()
	r := startConsumer(t, c)
	waitFor(t, 45*time.Second, "all messages handled and acked", func() bool {
		return distinct.Load() == n && rec.acked.Load() >= n
	})
	wall, cpu := time.Since(wall0), cpuTime(t)-cpu0
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}

	if got := rec.acked.Load(); got != n {
		t.Errorf("acked: got %d, want %d (each message deleted once)", got, n)
	}
	for _, b := range bodies {
		if handled[b] == 0 {
			t.Fatalf("message %s: never handled", b)
		}
	}
	if v, f := depth(t, admin, url); v != 0 || f != 0 {
		t.Errorf("queue after the run: got %d visible and %d in flight, want 0 and 0", v, f)
	}
	perMsg := float64(counter.total.Load()) / n
	t.Logf("%d messages, 32 workers: %.3f SQS requests per message %s; %.0f msg/s; %.1f µs CPU per message (whole process: consumer, SDK, in-process kumo, race detector if on)",
		n, perMsg, counter.summary(), n/wall.Seconds(), float64(cpu.Microseconds())/n)
	if perMsg > 0.25 {
		t.Errorf("SQS requests per message: got %.3f, want <= 0.25", perMsg)
	}
}

// testConsumerKeyLanes checks that messages of one key never overlap and
// are handled in receive order, while different keys run in parallel.
func testConsumerKeyLanes(t *testing.T, endpoint string) {
	for _, tc := range []struct {
		name     string
		maxBatch int
	}{
		{"one at a time", 1},
		{"batches of up to 5", 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			const keys, perKey = 12, 20
			client := newClient(endpoint, nil)
			url := createQueue(t, client, queueName(t, ""), map[string]string{"VisibilityTimeout": "5"})
			// Each key's messages go out in runs of 5, keys taking turns, so
			// receives bring several messages of a key and several keys.
			var bodies []string
			for run := 0; run < perKey/5; run++ {
				for k := range keys {
					for s := run * 5; s < run*5+5; s++ {
						bodies = append(bodies, fmt.Sprintf("key%d:%d", k, s))
					}
				}
			}
			sendBodies(t, client, url, bodies, nil)

			var mu sync.Mutex
			inflight := map[string]int{}
			last := map[string]int{}
			var overlaps, disorder, mixed []string
			done, biggest, parallel := 0, 0, 0
			rec := newRecorder()
			log, _ := newLogger(t)
			c, err := NewConsumer(client, Config{
				QueueURL: url, Workers: 6, Pollers: 1, MaxBatch: tc.maxBatch, WaitTime: time.Second,
				Observer: rec, Logger: log,
			}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
				key := bodyKey(batch[0])
				mu.Lock()
				inflight[key]++
				if inflight[key] > 1 {
					overlaps = append(overlaps, key)
				}
				parallel = max(parallel, len(inflight))
				biggest = max(biggest, len(batch))
				for _, m := range batch {
					if bodyKey(m) != key {
						mixed = append(mixed, m.Body)
					}
					seq, err := strconv.Atoi(strings.SplitN(m.Body, ":", 2)[1])
					if err != nil {
						mixed = append(mixed, m.Body+" (no sequence number)")
					}
					// A redelivered message (a receive response lost on
					// loopback) legitimately comes late: only first
					// deliveries are checked for order.
					if m.ReceiveCount == 1 {
						if prev, ok := last[key]; ok && seq <= prev {
							disorder = append(disorder, fmt.Sprintf("%s after seq %d", m.Body, prev))
						}
						last[key] = seq
					}
				}
				mu.Unlock()
				pause(ctx, 3*time.Millisecond)
				mu.Lock()
				if inflight[key]--; inflight[key] == 0 {
					delete(inflight, key)
				}
				done += len(batch)
				mu.Unlock()
				return ackAll(batch)
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, c)
			waitFor(t, 30*time.Second, "all messages handled", func() bool {
				mu.Lock()
				defer mu.Unlock()
				return done >= keys*perKey && rec.acked.Load() >= keys*perKey
			})
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(overlaps) > 0 {
				t.Errorf("same-key handlers overlapped for keys %v, want never", overlaps)
			}
			if len(disorder) > 0 {
				t.Errorf("out of receive order: %v", disorder)
			}
			if len(mixed) > 0 {
				t.Errorf("batch mixed keys: %v", mixed)
			}
			if parallel < 2 {
				t.Errorf("most keys handled at once: got %d, want >= 2", parallel)
			}
			if biggest > tc.maxBatch {
				t.Errorf("largest batch: got %d, want <= %d", biggest, tc.maxBatch)
			}
			if tc.maxBatch > 1 && biggest < 2 {
				t.Errorf("largest batch: got %d, want waiting messages of a key handed over together", biggest)
			}
		})
	}
}

// testConsumerHeartbeat: on the real wire, handlers slower than the
// visibility timeout, and a message waiting behind one in its lane, are
// never delivered again. Enough messages are held that a heartbeat round
// needs several calls.
//
// The visibility timeout is 6 s, so that the heartbeat's extensions go out
// with 1.5 s to 3 s of visibility left: a busy machine would have to stall
// the consumer for seconds to make a message reappear. How close to the
// limit the heartbeat works, with a 2 s timeout, is checked in
// TestConsumerHeartbeatTiming, where the clock does not depend on the load.
func testConsumerHeartbeat(t *testing.T, endpoint string) {
	const vt = 6 * time.Second
	// hold outlasts the visibility timeout by half of it: each message
	// must be extended at least once, most twice.
	const hold = vt + vt/2
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), map[string]string{"VisibilityTimeout": fmt.Sprint(int(vt / time.Second))})
	bodies := heartbeatBodies()
	sendBodies(t, client, url, bodies, nil)

	var mu sync.Mutex
	calls := map[string]int{}
	counts := map[string]int{}
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 28, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		m := batch[0]
		mu.Lock()
		calls[m.Body]++
		counts[m.Body] = max(counts[m.Body], m.ReceiveCount)
		mu.Unlock()
		// pair:b has waited behind pair:a for longer than the
		// visibility timeout already; it is done at once.
		if m.Body != "pair:b" {
			pause(ctx, hold)
		}
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, time.Minute, "every message acked", func() bool { return rec.acked.Load() == int64(len(bodies)) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	for _, body := range bodies {
		if calls[body] != 1 || counts[body] != 1 {
			t.Errorf("%s: handled %d times, highest ReceiveCount %d; want 1 and 1 (no redelivery)", body, calls[body], counts[body])
		}
	}
	if got := rec.extended.Load(); got < int64(len(bodies)) {
		t.Errorf("visibility extensions: got %d, want at least one per message (%d)", got, len(bodies))
	}
	if v, f := depth(t, client, url); v != 0 || f != 0 {
		t.Errorf("queue after the run: got %d visible and %d in flight, want 0 and 0", v, f)
	}
}

// heartbeatBodies are the messages of the heartbeat tests: one slow message
// alone, two of one key (the second waits behind the first), and enough
// others that a heartbeat round needs three calls.
func heartbeatBodies() []string {
	bodies := []string{"solo:x", "pair:a", "pair:b"}
	for i := range 24 {
		bodies = append(bodies, fmt.Sprintf("many%d:x", i))
	}
	return bodies
}

// TestConsumerHeartbeatTiming: with a 2 s visibility timeout, handlers that
// take 3 s and 6 s, and a message that waits 3 s behind another of its key,
// are never delivered again: the heartbeat extends every held message before
// its visibility runs out. It runs in a synctest bubble against a fake SQS
// that hands a message out again the instant its visibility runs out and
// refuses to extend it after that, so an extension that comes too late
// fails the test, and a busy machine cannot.
func TestConsumerHeartbeatTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const vt = 2 * time.Second
		q := newFakeSQS(vt)
		bodies := heartbeatBodies()
		q.send(bodies...)

		var mu sync.Mutex
		calls := map[string]int{}
		counts := map[string]int{}
		rec := newRecorder()
		startedAt := map[string]time.Time{}
		log, _ := newLogger(t)
		start := time.Now()
		c, err := NewConsumer(q, Config{
			QueueURL: q.url, Workers: 28, WaitTime: time.Second, Observer: rec, Logger: log,
		}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
			m := batch[0]
			mu.Lock()
			calls[m.Body]++
			counts[m.Body] = max(counts[m.Body], m.ReceiveCount)
			startedAt[m.Body] = time.Now()
			mu.Unlock()
			d := 3 * time.Second // one and a half visibility timeouts
			if bodyKey(m) == "solo" {
				d = 6 * time.Second // three
			}
			pause(ctx, d)
			return ackAll(batch)
		}})
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		// The longest hold is 6 s; the checks below say what went wrong
		// when the acks do not come.
		if !settle(time.Minute, func() bool { return rec.acked.Load() == int64(len(bodies)) }) {
			t.Errorf("acked after a minute: got %d, want %d", rec.acked.Load(), len(bodies))
		}
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}
		// The test is only as good as this: pair:b waited in its lane for
		// longer than its visibility timeout.
		if waited := startedAt["pair:b"].Sub(q.message(t, "pair:b").received[0]); waited <= vt {
			t.Errorf("pair:b waited %v behind pair:a, want longer than the visibility timeout (%v)", waited, vt)
		}
		for _, body := range bodies {
			m := q.message(t, body)
			if calls[body] != 1 || counts[body] != 1 || len(m.received) != 1 {
				t.Errorf("%s: handled %d times, highest ReceiveCount %d, handed out %d times; want 1, 1 and 1 (no redelivery)",
					body, calls[body], counts[body], len(m.received))
			}
			if m.deletedAt.IsZero() {
				t.Errorf("%s: not deleted", body)
			}
			if len(m.changes) == 0 {
				t.Errorf("%s: never extended, want extended while held past its visibility timeout", body)
			}
			for _, at := range m.late {
				t.Errorf("%s: extension sent %v after the start, when its visibility had run out", body, at.Sub(start))
			}
		}
	})
}

// testConsumerRetryAfter: on the real wire, a RetryAfter(d) message comes
// back after d, not before, and long before the queue's visibility timeout
// would have brought it back. How soon after d it is handled again is
// checked in TestConsumerRetryAfterTiming, where the clock does not depend
// on the load.
func testConsumerRetryAfter(t *testing.T, endpoint string) {
	const d = 2 * time.Second
	// A visibility timeout of ten minutes, and ten times less patience:
	// the message is back in time only if its visibility was set to d.
	const vt, patience = 10 * time.Minute, time.Minute
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), map[string]string{"VisibilityTimeout": fmt.Sprint(int(vt / time.Second))})
	sendBodies(t, client, url, []string{"k:retry-me"}, nil)

	h := &retryOnce{d: d}
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 2, WaitTime: time.Second, Observer: rec, Logger: log,
	}, h.handler())
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, patience, "the retried message acked", func() bool { return rec.acked.Load() == 1 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	// The visibility was set after the handler returned, so however slow
	// the machine, the message cannot be back sooner.
	h.check(t, rec)
}

// retryOnce is a handler that asks for its first message back after d
// (RetryAfter) and acknowledges it when it returns, noting when.
type retryOnce struct {
	d                 time.Duration
	mu                sync.Mutex
	retriedAt, backAt time.Time
	backCount         int
}

func (h *retryOnce) handler() handlerFuncs {
	return handlerFuncs{handle: func(_ context.Context, batch []*Message) []Outcome {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.retriedAt.IsZero() {
			h.retriedAt = time.Now()
			return []Outcome{RetryAfter(h.d)}
		}
		h.backAt, h.backCount = time.Now(), batch[0].ReceiveCount
		return ackAll(batch)
	}}
}

// check reports a message that came back too early, with the wrong
// ReceiveCount, or retried other than once.
func (h *retryOnce) check(t *testing.T, rec *recorder) {
	t.Helper()
	if gap := h.backAt.Sub(h.retriedAt); gap < h.d {
		t.Errorf("message came back after %v, want at least %v", gap, h.d)
	}
	if h.backCount != 2 {
		t.Errorf("ReceiveCount on return: got %d, want 2", h.backCount)
	}
	if got := rec.retried.Load(); got != 1 {
		t.Errorf("retried: got %d, want 1", got)
	}
}

// TestConsumerRetryAfterTiming: a RetryAfter(d) message is handed back with
// visibility d within FlushInterval of the handler's verdict, and is handled
// again after d, not before, and at most one empty-receive backoff after it
// is visible. It runs in a synctest bubble against a fake SQS whose long
// poll returns as soon as a message is visible, as SQS's does.
func TestConsumerRetryAfterTiming(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const d = 2 * time.Second
		q := newFakeSQS(10 * time.Second)
		q.send("k:retry-me")

		h := &retryOnce{d: d}
		rec := newRecorder()
		log, _ := newLogger(t)
		c, err := NewConsumer(q, Config{
			QueueURL: q.url, Workers: 2, WaitTime: time.Second, Observer: rec, Logger: log,
		}, h.handler())
		if err != nil {
			t.Fatal(err)
		}
		r := startConsumer(t, c)
		settleUntil(t, time.Minute, "the retried message acked", func() bool { return rec.acked.Load() == 1 })
		if err := r.stop(t); err != nil {
			t.Fatalf("Run: got %v, want nil", err)
		}

		m := q.message(t, "k:retry-me")
		if len(m.changes) != 1 {
			t.Fatalf("visibility changes: got %v, want one, the retry", m.changes)
		}
		if ch := m.changes[0]; ch.seconds != int32(d/time.Second) || ch.at.Sub(h.retriedAt) > DefaultFlushInterval {
			t.Errorf("retry: visibility set to %ds %v after the handler returned, want %v within %v",
				ch.seconds, ch.at.Sub(h.retriedAt), d, DefaultFlushInterval)
		}
		if gap, most := h.backAt.Sub(h.retriedAt), d+DefaultFlushInterval+emptyBackoffMax; gap > most {
			t.Errorf("message came back after %v, want at most %v", gap, most)
		}
		h.check(t, rec)
	})
}

// runUntilIdle runs an acknowledge-all Consumer with cfg (its Observer and
// Logger filled in here) until Run returns by itself, as a batch run with
// ExitWhenIdle must; Run must return nil.
func runUntilIdle(t *testing.T, client *sqs.Client, cfg Config) (*recorder, *logStore) {
	t.Helper()
	rec := newRecorder()
	log, logs := newLogger(t)
	cfg.Observer, cfg.Logger = rec, log
	c, err := NewConsumer(client, cfg, handlerFuncs{handle: func(_ context.Context, batch []*Message) []Outcome { return ackAll(batch) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := startConsumer(t, c).wait(t, 30*time.Second); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	return rec, logs
}

// testConsumerExitWhenIdle: a batch run returns nil by itself once the
// queue is drained.
func testConsumerExitWhenIdle(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), nil)
	bodies := make([]string, 25)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("k%d:x", i)
	}
	sendBodies(t, client, url, bodies, nil)
	rec, _ := runUntilIdle(t, client, Config{QueueURL: url, Workers: 4, WaitTime: time.Second, ExitWhenIdle: 500 * time.Millisecond})
	if got := rec.acked.Load(); got != 25 {
		t.Errorf("acked: got %d, want 25", got)
	}
	if v, f := depth(t, client, url); v != 0 || f != 0 {
		t.Errorf("queue after the run: got %d visible and %d in flight, want 0 and 0", v, f)
	}
}

// testConsumerExitWhenIdleLostReceive: messages a lost ReceiveMessage
// response left in flight (here: received by another client, as a
// response that never arrived) are not left behind by a batch run: it
// waits for SQS's count to reach zero, and they reappear and are handled.
func testConsumerExitWhenIdleLostReceive(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), nil)
	bodies := make([]string, 20)
	for i := range bodies {
		bodies[i] = fmt.Sprintf("k%d:x", i)
	}
	sendBodies(t, client, url, bodies, nil)
	lost, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &url, MaxNumberOfMessages: 3, VisibilityTimeout: 2,
	})
	if err != nil || len(lost.Messages) == 0 {
		t.Fatalf("receive the messages of the lost response: got %v messages, %v", lost, err)
	}
	rec, _ := runUntilIdle(t, client, Config{QueueURL: url, Workers: 4, WaitTime: time.Second,
		VisibilityTimeout: 2 * time.Second, ExitWhenIdle: 300 * time.Millisecond})
	if got := rec.acked.Load(); got != 20 {
		t.Errorf("acked: got %d, want all 20 (%d were hidden by the lost receive)", got, len(lost.Messages))
	}
	if v, f := depth(t, client, url); v != 0 || f != 0 {
		t.Errorf("queue after the run: got %d visible and %d in flight, want 0 and 0", v, f)
	}
}

// testConsumerExitWhenIdleBounded: messages someone else holds for long do
// not keep a batch run alive: it exits one visibility timeout and one long
// poll after going idle, says so, and leaves them on the queue.
func testConsumerExitWhenIdleBounded(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), nil)
	sendBodies(t, client, url, []string{"a:x", "b:x", "c:x"}, nil)
	held, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &url, MaxNumberOfMessages: 2, VisibilityTimeout: 600,
	})
	if err != nil || len(held.Messages) == 0 {
		t.Fatalf("hold messages elsewhere: got %v messages, %v", held, err)
	}
	rec, logs := runUntilIdle(t, client, Config{QueueURL: url, Workers: 2, WaitTime: time.Second,
		VisibilityTimeout: time.Second, ExitWhenIdle: 300 * time.Millisecond})
	if got, want := rec.acked.Load(), int64(3-len(held.Messages)); got != want {
		t.Errorf("acked: got %d, want %d", got, want)
	}
	if logs.count("queue idle here, but SQS still counts messages; leaving them for the next run") != 1 {
		t.Errorf("no warning that messages were left on the queue")
	}
	if _, f := depth(t, client, url); f != len(held.Messages) {
		t.Errorf("in flight after the run: got %d, want the %d held elsewhere", f, len(held.Messages))
	}
}

// testConsumerHandlerFaults: a panicking handler and ones that return too
// few or empty outcomes do not crash the consumer; their messages come back
// after the visibility timeout and are handled again.
func testConsumerHandlerFaults(t *testing.T, endpoint string) {
	faults := map[string]func(batch []*Message) []Outcome{
		"panic":        func([]*Message) []Outcome { panic("boom") },
		"no-outcome":   func([]*Message) []Outcome { return nil },
		"zero-outcome": func([]*Message) []Outcome { return []Outcome{{}} },
	}
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ""), map[string]string{"VisibilityTimeout": "1"})
	var bodies []string
	for name := range faults {
		bodies = append(bodies, name+":x")
	}
	sendBodies(t, client, url, bodies, nil)
	var mu sync.Mutex
	calls := map[string]int{}
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 4, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(_ context.Context, batch []*Message) []Outcome {
		key := bodyKey(batch[0])
		mu.Lock()
		calls[key]++
		first := calls[key] == 1
		mu.Unlock()
		if first {
			return faults[key](batch)
		}
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, 15*time.Second, "every message handled again and acked", func() bool { return rec.acked.Load() == int64(len(faults)) })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	for name := range faults {
		if calls[name] != 2 {
			t.Errorf("%s: handler calls: got %d, want 2", name, calls[name])
		}
	}
}

// gate is a Gate that tests open and close.
type gate struct {
	mu      sync.Mutex
	open    chan struct{} // closed while the gate is open
	waiting atomic.Int64
}

func newGate() *gate {
	g := &gate{open: make(chan struct{})}
	close(g.open)
	return g
}

func (g *gate) Wait(ctx context.Context) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	g.waiting.Add(1)
	defer g.waiting.Add(-1)
	select {
	case <-open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		if !open {
			g.open = make(chan struct{})
		}
	default:
		if open {
			close(g.open)
		}
	}
}

// testConsumerGate: a closed gate stops receiving while held messages are
// still handled and kept invisible.
func testConsumerGate(t *testing.T, endpoint string) {
	counter := newRequestCounter()
	client := newClient(endpoint, counter)
	admin := newClient(endpoint, nil)
	url := createQueue(t, admin, queueName(t, ""), map[string]string{"VisibilityTimeout": "2"})
	sendBodies(t, admin, url, []string{"a:1", "b:1", "c:1"}, nil)

	g := newGate()
	var started, calls atomic.Int64
	var mu sync.Mutex
	counts := map[string]int{}
	release := make(chan struct{})
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 4, Pollers: 1, WaitTime: time.Second, Gate: g, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		calls.Add(1)
		mu.Lock()
		counts[batch[0].Body]++
		mu.Unlock()
		if strings.HasSuffix(batch[0].Body, ":1") {
			started.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, 10*time.Second, "three handlers running", func() bool { return started.Load() == 3 })
	g.set(false)
	waitFor(t, 5*time.Second, "the poller blocked at the gate", func() bool { return g.waiting.Load() == 1 })
	receives := counter.count(OpReceiveMessage)
	sendBodies(t, admin, url, []string{"a:2", "b:2"}, nil)
	// Hold the running messages past two visibility timeouts.
	extended := rec.extended.Load()
	waitFor(t, 10*time.Second, "two more rounds of extensions", func() bool { return rec.extended.Load() >= extended+6 })
	if got := counter.count(OpReceiveMessage); got != receives {
		t.Errorf("receives while the gate was closed: got %d, want 0", got-receives)
	}
	close(release)
	waitFor(t, 5*time.Second, "held messages acked", func() bool { return rec.acked.Load() == 3 })
	if got := calls.Load(); got != 3 {
		t.Errorf("handler calls with the gate closed: got %d, want 3", got)
	}
	g.set(true)
	waitFor(t, 10*time.Second, "messages sent meanwhile acked", func() bool { return rec.acked.Load() == 5 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	for body, n := range counts {
		if n != 1 {
			t.Errorf("%s handled %d times, want 1", body, n)
		}
	}
}

// testConsumerFIFORetryReleasesLane: on a FIFO queue, when a message goes
// back with RetryAfter, the messages of its group waiting behind it go back
// too, so they cannot overtake it.
func testConsumerFIFORetryReleasesLane(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	url := createQueue(t, client, queueName(t, ".fifo"), map[string]string{"FifoQueue": "true", "VisibilityTimeout": "5"})
	sendBodies(t, client, url, []string{"g:1", "g:2", "g:3"}, nil)
	var mu sync.Mutex
	var order []string
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 2, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(_ context.Context, batch []*Message) []Outcome {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, batch[0].Body)
		if len(order) == 1 {
			// Long enough for a receive to see g:2 and g:3 back on the
			// queue while g:1 is still away: kumo then puts g:1 back in
			// front of them, as SQS keeps a group's order.
			return []Outcome{RetryAfter(3 * time.Second)}
		}
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, 15*time.Second, "three messages acked", func() bool { return rec.acked.Load() == 3 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}
	if got := rec.released.Load(); got != 2 {
		t.Errorf("released behind the retried message: got %d, want 2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	// kumo puts messages whose visibility ran out back on the queue in map
	// order, so g:2 and g:3 may swap; only the retried message's place is
	// checked.
	if len(order) != 4 || order[0] != "g:1" || order[1] != "g:1" {
		t.Errorf("handling order: got %v, want g:1, g:1 again after its retry, then g:2 and g:3", order)
	}
}

package queue

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestMultiQueue runs the integration tests of a Consumer serving two
// queues, a realtime one and a bulk one, against one kumo server of its
// own (see TestKumo for why the tests share it). The timing of priorities
// is checked in priority_test.go.
func TestMultiQueue(t *testing.T) {
	srv := newKumo(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, endpoint string)
	}{
		{"KeyLanes", testMultiQueueKeyLanes},
		{"Outcomes", testMultiQueueOutcomes},
		{"Shutdown", testMultiQueueShutdown},
		{"ExitWhenIdle", testMultiQueueExitWhenIdle},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.test(t, srv.URL)
		})
	}
}

// createTwoQueues makes a realtime and a bulk queue with attrs.
func createTwoQueues(t *testing.T, client *sqs.Client, attrs map[string]string) (rt, bulk string) {
	t.Helper()
	return createQueue(t, client, queueName(t, "-realtime"), attrs), createQueue(t, client, queueName(t, "-bulk"), attrs)
}

// testMultiQueueKeyLanes: a key's messages from both queues share one lane:
// they are never handled at the same time, and when both wait they are
// handed to the handler in one batch; each message says which queue it
// came from.
func testMultiQueueKeyLanes(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	rt, bulk := createTwoQueues(t, client, map[string]string{"VisibilityTimeout": "5"})
	rtName, bulkName := QueueName(rt), QueueName(bulk)

	var mu sync.Mutex
	inflight := map[string]int{}
	var overlaps, disorder, wrong []string
	var batches [][]string // of the key k, as queue/body
	last := map[string]int{}
	proceed := make(chan struct{})
	var firstStarted atomic.Bool
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		Queues: []Source{{URL: rt}, {URL: bulk}}, Workers: 4, Pollers: 1, MaxBatch: 10, WaitTime: time.Second,
		Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		key := bodyKey(batch[0])
		mu.Lock()
		if inflight[key]++; inflight[key] > 1 {
			overlaps = append(overlaps, key)
		}
		var got []string
		for _, m := range batch {
			got = append(got, m.Queue+"/"+m.Body)
			wantQueue, wantPrio := rtName, 0
			if strings.Contains(m.Body, ":bulk:") {
				wantQueue, wantPrio = bulkName, 1
			}
			if m.Queue != wantQueue || m.Priority != wantPrio {
				wrong = append(wrong, fmt.Sprintf("%s: Queue %q Priority %d", m.Body, m.Queue, m.Priority))
			}
			// Within one queue a key's messages keep their order (first
			// deliveries only: a lost receive response brings one late).
			if seq, err := strconv.Atoi(m.Body[strings.LastIndex(m.Body, ":")+1:]); err == nil && m.ReceiveCount == 1 {
				qk := m.Queue + "/" + key
				if prev, ok := last[qk]; ok && seq <= prev {
					disorder = append(disorder, fmt.Sprintf("%s after seq %d", m.Body, prev))
				}
				last[qk] = seq
			}
		}
		if key == "k" {
			batches = append(batches, got)
		}
		mu.Unlock()
		if firstStarted.CompareAndSwap(false, true) {
			select {
			case <-proceed:
			case <-ctx.Done():
			}
		}
		pause(ctx, 2*time.Millisecond)
		mu.Lock()
		inflight[key]--
		mu.Unlock()
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	sendBodies(t, client, bulk, []string{"k:bulk:1"}, nil)
	r := startConsumer(t, c)
	waitFor(t, 10*time.Second, "k:bulk:1 running", firstStarted.Load)
	sendBodies(t, client, bulk, []string{"k:bulk:2"}, nil)
	sendBodies(t, client, rt, []string{"k:rt:1"}, nil)
	waitFor(t, 10*time.Second, "k:bulk:2 and k:rt:1 waiting", func() bool { return c.Held() == 3 })
	close(proceed)

	// Then many keys, their messages spread over both queues.
	const keys, perKey = 8, 12
	var rtBodies, bulkBodies []string
	for s := range perKey {
		for k := range keys {
			if (s+k)%2 == 0 {
				rtBodies = append(rtBodies, fmt.Sprintf("key%d:rt:%d", k, s))
			} else {
				bulkBodies = append(bulkBodies, fmt.Sprintf("key%d:bulk:%d", k, s))
			}
		}
	}
	sendBodies(t, client, rt, rtBodies, nil)
	sendBodies(t, client, bulk, bulkBodies, nil)
	waitFor(t, 30*time.Second, "every message acked", func() bool { return rec.acked.Load() == 3+keys*perKey })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(overlaps) > 0 {
		t.Errorf("same-key handlers overlapped for keys %v, want never", overlaps)
	}
	if len(disorder) > 0 {
		t.Errorf("out of receive order within a queue: %v", disorder)
	}
	if len(wrong) > 0 {
		t.Errorf("messages with the wrong Queue or Priority: %v", wrong)
	}
	// The second batch is in receive order, which the test does not fix.
	want := [][]string{{bulkName + "/k:bulk:1"}, {bulkName + "/k:bulk:2", rtName + "/k:rt:1"}}
	if len(batches) == 2 {
		slices.Sort(batches[1])
		slices.Sort(want[1])
	}
	if len(batches) != 2 || !slices.Equal(batches[0], want[0]) || !slices.Equal(batches[1], want[1]) {
		t.Errorf("batches of key k: got %v, want %v (the two waiting messages together)", batches, want)
	}
}

// wireEntries decodes the batch calls of one operation the counter kept:
// for each call, its queue URL and the receipt handles and visibility
// timeouts of its entries.
func wireEntries(t *testing.T, rc *requestCounter, op string) []wireCall {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var calls []wireCall
	for _, b := range rc.bodies[op] {
		var call wireCall
		if err := json.Unmarshal(b, &call); err != nil {
			t.Fatalf("decode %s request %s: %v", op, b, err)
		}
		calls = append(calls, call)
	}
	return calls
}

type wireCall struct {
	QueueURL string `json:"QueueUrl"`
	Entries  []struct {
		ReceiptHandle     string
		VisibilityTimeout int
	}
}

// testMultiQueueOutcomes: two queues with their own visibility timeouts
// and dead-letter queues (one configured, one discovered). Every held
// message is extended by its own queue's timeout, on its own queue; every
// delete and visibility call names one queue and carries only its
// messages; each dead letter lands on its own queue's dead-letter queue.
func testMultiQueueOutcomes(t *testing.T, endpoint string) {
	counter := newRequestCounter()
	counter.keep = true
	client := newClient(endpoint, counter)
	admin := newClient(endpoint, nil)
	rtDLQ := createQueue(t, admin, queueName(t, "-realtime-dlq"), nil)
	bulkDLQ := createQueue(t, admin, queueName(t, "-bulk-dlq"), nil)
	rt := createQueue(t, admin, queueName(t, "-realtime"), map[string]string{"VisibilityTimeout": "6"})
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"5"}`, queueARN(t, admin, bulkDLQ))
	bulk := createQueue(t, admin, queueName(t, "-bulk"), map[string]string{"VisibilityTimeout": "10", "RedrivePolicy": policy})
	vts := map[string]int{QueueName(rt): 6, QueueName(bulk): 10} // seconds, by queue name
	bodies := map[string][]string{rt: {"rslow:x", "rdead:x", "rok:x"}, bulk: {"bslow:x", "bdead:x", "bok:x"}}
	for url, bs := range bodies {
		sendBodies(t, admin, url, bs, nil)
	}

	var mu sync.Mutex
	calls, counts := map[string]int{}, map[string]int{}
	queueOf := map[string]string{} // receipt handle -> queue name
	handleOf := map[string]string{}
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		Queues:  []Source{{URL: rt, DLQURL: rtDLQ}, {URL: bulk}},
		Workers: 8, WaitTime: time.Second, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		m := batch[0]
		mu.Lock()
		calls[m.Body]++
		counts[m.Body] = max(counts[m.Body], m.ReceiveCount)
		queueOf[m.ReceiptHandle], handleOf[m.Body] = m.Queue, m.ReceiptHandle
		mu.Unlock()
		switch {
		case strings.Contains(m.Body, "slow"):
			// Past its queue's visibility timeout: extended at least once.
			pause(ctx, time.Duration(vts[m.Queue])*time.Second+time.Second)
		case strings.Contains(m.Body, "dead"):
			return []Outcome{DeadLetter("test", "from "+m.Queue)}
		}
		return ackAll(batch)
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	waitFor(t, time.Minute, "every message deleted", func() bool { return rec.acked.Load() == 6 })
	if err := r.stop(t); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}

	for url, bs := range bodies {
		for _, b := range bs {
			if calls[b] != 1 || counts[b] != 1 {
				t.Errorf("%s: handled %d times, highest ReceiveCount %d; want 1 and 1 (no redelivery)", b, calls[b], counts[b])
			}
		}
		if v, f := depth(t, admin, url); v != 0 || f != 0 {
			t.Errorf("%s after the run: got %d visible and %d in flight, want 0 and 0", QueueName(url), v, f)
		}
	}
	for dlq, want := range map[string]string{rtDLQ: "rdead:x", bulkDLQ: "bdead:x"} {
		got := receiveAll(t, admin, dlq, 1, 5*time.Second)
		if len(got) != 1 || *got[0].Body != want {
			t.Errorf("%s: got %d messages, want just %s", QueueName(dlq), len(got), want)
			continue
		}
		wantReason := "from " + QueueName(map[string]string{rtDLQ: rt, bulkDLQ: bulk}[dlq])
		if reason := deref(got[0].MessageAttributes[AttrErrorReason].StringValue); reason != wantReason {
			t.Errorf("%s: reason %q, want %q", QueueName(dlq), reason, wantReason)
		}
	}

	// On the wire: each call names one queue and carries its messages only.
	extended := map[string]bool{}
	deleted := map[string]bool{}
	for _, op := range []string{OpChangeMessageVisibilityBatch, OpDeleteMessageBatch} {
		for _, call := range wireEntries(t, counter, op) {
			name := QueueName(call.QueueURL)
			for _, e := range call.Entries {
				if queueOf[e.ReceiptHandle] != name {
					t.Errorf("%s to %s carries a message of %q", op, name, queueOf[e.ReceiptHandle])
				}
				if op == OpDeleteMessageBatch {
					deleted[e.ReceiptHandle] = true
					continue
				}
				extended[e.ReceiptHandle] = true
				if e.VisibilityTimeout != vts[name] {
					t.Errorf("%s extended to %ds, want its queue's %ds", name, e.VisibilityTimeout, vts[name])
				}
			}
		}
	}
	for _, b := range []string{"rslow:x", "bslow:x"} {
		if !extended[handleOf[b]] {
			t.Errorf("%s: never extended, want extended while held past its visibility timeout", b)
		}
	}
	for _, bs := range bodies {
		for _, b := range bs {
			if !deleted[handleOf[b]] {
				t.Errorf("%s: not deleted from its own queue", b)
			}
		}
	}
}

// testMultiQueueShutdown: when the consumer is cancelled with unstarted
// messages held from both queues, all of them are handed back at once,
// before the running handlers return, each visible again on its own queue.
func testMultiQueueShutdown(t *testing.T, endpoint string) {
	const perQueue, workers, maxHeld = 15, 2, 10
	const patience = time.Minute
	client := newClient(endpoint, nil)
	// A visibility timeout of minutes: back in time means handed back.
	rt, bulk := createTwoQueues(t, client, map[string]string{"VisibilityTimeout": "300"})
	bodies := map[string][]string{}
	for _, url := range []string{rt, bulk} {
		for i := range perQueue {
			bodies[url] = append(bodies[url], fmt.Sprintf("%s-%d:x", QueueName(url), i))
		}
	}

	var mu sync.Mutex
	started := map[string]bool{}
	var finished atomic.Int64
	proceed := make(chan struct{})
	var once sync.Once
	letGo := func() { once.Do(func() { close(proceed) }) }
	rec := newRecorder()
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		Queues: []Source{{URL: rt}, {URL: bulk}}, Workers: workers, Pollers: 1, MaxHeld: maxHeld,
		WaitTime: time.Second, DrainTimeout: 10 * time.Minute, Observer: rec, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		mu.Lock()
		started[batch[0].Body] = true
		mu.Unlock()
		defer finished.Add(1)
		select {
		case <-proceed:
			return ackAll(batch)
		case <-ctx.Done():
			return []Outcome{RetryAfter(0)}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	// Both queues are filled before the consumer starts, so that each
	// first receive brings a full batch (a long poll already waiting may
	// return the first few messages of a send), and fills its prefetch.
	sendBodies(t, client, rt, bodies[rt], nil)
	sendBodies(t, client, bulk, bodies[bulk], nil)
	r := startConsumer(t, c)
	// A failed check must not leave the handlers blocked; cleanups run
	// last first, so this one runs before the consumer's.
	t.Cleanup(letGo)
	waitFor(t, patience, "both prefetches full and the workers busy", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(started) == workers && c.Held() == 2*maxHeld
	})

	r.cancel()
	waitFor(t, patience, "the unstarted messages of both queues released", func() bool {
		return rec.released.Load() == 2*maxHeld-workers
	})
	if got := finished.Load(); got != 0 {
		t.Errorf("handlers returned before the unstarted messages were released: got %d, want 0", got)
	}
	letGo()
	if err := r.wait(t, patience); err != nil {
		t.Fatalf("Run: got %v, want nil", err)
	}

	mu.Lock()
	defer mu.Unlock()
	for _, url := range []string{rt, bulk} {
		var want []string
		for _, b := range bodies[url] {
			if !started[b] {
				want = append(want, b)
			}
		}
		var got []string
		for _, m := range receiveAll(t, client, url, len(want), patience) {
			got = append(got, *m.Body)
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s after the shutdown: got %v, want every message not acked, once: %v", QueueName(url), got, want)
		}
	}
}

// testMultiQueueExitWhenIdle: a batch run waits for both queues: messages
// a lost receive left in flight on the second queue keep it running until
// they reappear and are handled.
func testMultiQueueExitWhenIdle(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	rt, bulk := createTwoQueues(t, client, nil)
	for _, url := range []string{rt, bulk} {
		var bodies []string
		for i := range 5 {
			bodies = append(bodies, fmt.Sprintf("%s-%d:x", QueueName(url), i))
		}
		sendBodies(t, client, url, bodies, nil)
	}
	lost, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
		QueueUrl: &bulk, MaxNumberOfMessages: 2, VisibilityTimeout: 2,
	})
	if err != nil || len(lost.Messages) == 0 {
		t.Fatalf("receive the messages of the lost response: got %v messages, %v", lost, err)
	}
	rec, _ := runUntilIdle(t, client, Config{Queues: []Source{{URL: rt}, {URL: bulk}}, Workers: 4, WaitTime: time.Second,
		VisibilityTimeout: 2 * time.Second, ExitWhenIdle: 300 * time.Millisecond})
	if got := rec.acked.Load(); got != 10 {
		t.Errorf("acked: got %d, want all 10 (%d were hidden on the bulk queue by the lost receive)", got, len(lost.Messages))
	}
	for _, url := range []string{rt, bulk} {
		if v, f := depth(t, client, url); v != 0 || f != 0 {
			t.Errorf("%s after the run: got %d visible and %d in flight, want 0 and 0", QueueName(url), v, f)
		}
	}
}

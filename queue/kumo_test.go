package queue

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"

	"github.com/pcsync/pcsync/retry"
)

// This file holds the wiring of the integration tests: a kumo server, SQS
// clients that count their HTTP requests, and recorders for the consumer's
// events and logs.

func newKumo(t testing.TB) *kumo.Server {
	t.Helper()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	return srv
}

// requestCounter is an http.RoundTripper that counts SQS requests by
// operation, so "requests per message" is measured on the wire, and can
// keep request bodies for tests that inspect them.
type requestCounter struct {
	next  http.RoundTripper
	total atomic.Int64

	mu     sync.Mutex
	byOp   map[string]int
	times  map[string][]time.Time
	keep   bool
	bodies map[string][][]byte
}

func newRequestCounter() *requestCounter {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 128
	return &requestCounter{next: tr, byOp: map[string]int{}, times: map[string][]time.Time{}, bodies: map[string][][]byte{}}
}

func (rc *requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	op := strings.TrimPrefix(req.Header.Get("X-Amz-Target"), "AmazonSQS.")
	rc.total.Add(1)
	rc.mu.Lock()
	rc.byOp[op]++
	rc.times[op] = append(rc.times[op], time.Now())
	keep := rc.keep
	rc.mu.Unlock()
	if keep && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		rc.mu.Lock()
		rc.bodies[op] = append(rc.bodies[op], b)
		rc.mu.Unlock()
	}
	return rc.next.RoundTrip(req)
}

func (rc *requestCounter) count(op string) int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.byOp[op]
}

func (rc *requestCounter) summary() string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return fmt.Sprint(rc.byOp)
}

// newClient returns an SQS client for endpoint whose requests go through
// rt. The SDK's own retries are off: the consumer's loops do the retrying,
// and every request on the wire is one the consumer made.
func newClient(endpoint string, rt http.RoundTripper) *sqs.Client {
	if rt == nil {
		rt = newRequestCounter()
	}
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		HTTPClient:  &http.Client{Transport: rt},
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// queueName makes a queue name unique to the test: every kumo server in a
// test binary shares one store.
func queueName(t testing.TB, suffix string) string {
	var b strings.Builder
	for _, r := range t.Name() {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	name := b.String()
	if len(name) > 50 {
		name = name[len(name)-50:]
	}
	return fmt.Sprintf("%s-%06d%s", name, rand.N(1_000_000), suffix)
}

func createQueue(t testing.TB, client *sqs.Client, name string, attrs map[string]string) string {
	t.Helper()
	out, err := client.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: &name, Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	return *out.QueueUrl
}

func queueARN(t testing.TB, client *sqs.Client, url string) string {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: &url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn},
	})
	if err != nil {
		t.Fatalf("queue ARN of %s: %v", url, err)
	}
	return out.Attributes["QueueArn"]
}

// depth returns the messages waiting and in flight.
func depth(t testing.TB, client *sqs.Client, url string) (visible, inflight int) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{
		QueueUrl: &url, AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameAll},
	})
	if err != nil {
		t.Fatalf("queue attributes of %s: %v", url, err)
	}
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessages"], &visible)
	fmt.Sscan(out.Attributes["ApproximateNumberOfMessagesNotVisible"], &inflight)
	return visible, inflight
}

// sendBodies puts messages on a queue with the Producer.
func sendBodies(t testing.TB, client *sqs.Client, url string, bodies []string, attrs map[string]types.MessageAttributeValue) []string {
	t.Helper()
	entries := make([]Entry, len(bodies))
	for i, b := range bodies {
		entries[i] = Entry{Body: b, Attributes: attrs}
		if isFIFOURL(url) {
			entries[i].GroupID = strings.SplitN(b, ":", 2)[0]
		}
	}
	res, err := NewProducer(client, url, ProducerConfig{}).Send(context.Background(), entries)
	if err != nil {
		t.Fatalf("send %d messages: %v", len(bodies), err)
	}
	return res.MessageIDs
}

// receiveAll takes messages off a queue (hiding them for a minute) until
// want have come or within has passed.
func receiveAll(t testing.TB, client *sqs.Client, url string, want int, within time.Duration) []types.Message {
	t.Helper()
	var got []types.Message
	deadline := time.Now().Add(within)
	for len(got) < want && time.Now().Before(deadline) {
		out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			t.Fatalf("receive: %v", err)
		}
		got = append(got, out.Messages...)
	}
	return got
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

// pause waits d or until ctx is done, as a handler would.
func pause(ctx context.Context, d time.Duration) bool {
	return retry.Sleep(ctx, d)
}

// handlerFuncs adapts two functions to Handler.
type handlerFuncs struct {
	key    func(*Message) string
	handle func(context.Context, []*Message) []Outcome
}

func (h handlerFuncs) Key(m *Message) string {
	if h.key == nil {
		return ""
	}
	return h.key(m)
}

func (h handlerFuncs) Handle(ctx context.Context, batch []*Message) []Outcome {
	return h.handle(ctx, batch)
}

// bodyKey keys a message by the part of its body before ':'.
func bodyKey(m *Message) string { return strings.SplitN(m.Body, ":", 2)[0] }

func ackAll(batch []*Message) []Outcome {
	outs := make([]Outcome, len(batch))
	for i := range outs {
		outs[i] = Ack()
	}
	return outs
}

// recorder is an Observer that counts events and can note when they happen.
type recorder struct {
	received, empty, acked, retried, released, kept, extended atomic.Int64
	held, busy, maxBusy                                       atomic.Int64
	callErrors, entryFailures                                 atomic.Int64

	mu       sync.Mutex
	dead     map[string]int
	errCodes map[string]int
	events   []event
}

type event struct {
	what string
	at   time.Time
}

func newRecorder() *recorder {
	return &recorder{dead: map[string]int{}, errCodes: map[string]int{}}
}

func (r *recorder) note(what string) {
	r.mu.Lock()
	r.events = append(r.events, event{what, time.Now()})
	r.mu.Unlock()
}

func (r *recorder) eventsNamed(what string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ts []time.Time
	for _, e := range r.events {
		if e.what == what {
			ts = append(ts, e.at)
		}
	}
	return ts
}

func (r *recorder) Received(n int) { r.received.Add(int64(n)) }
func (r *recorder) ReceiveEmpty()  { r.empty.Add(1) }
func (r *recorder) Held(n int)     { r.held.Store(int64(n)) }
func (r *recorder) Busy(n int) {
	r.busy.Store(int64(n))
	for {
		m := r.maxBusy.Load()
		if int64(n) <= m || r.maxBusy.CompareAndSwap(m, int64(n)) {
			return
		}
	}
}
func (r *recorder) Acked(n int) {
	r.acked.Add(int64(n))
	r.note("acked")
}
func (r *recorder) DeadLettered(class string) {
	r.mu.Lock()
	r.dead[class]++
	r.mu.Unlock()
}
func (r *recorder) Retried(n int) { r.retried.Add(int64(n)) }
func (r *recorder) Released(n int) {
	r.released.Add(int64(n))
	r.note("released")
}
func (r *recorder) KeptWithoutDLQ(n int)     { r.kept.Add(int64(n)) }
func (r *recorder) VisibilityExtended(n int) { r.extended.Add(int64(n)) }
func (r *recorder) SQSCall(op, code string, _ time.Duration) {
	if code == "" {
		return
	}
	r.callErrors.Add(1)
	r.mu.Lock()
	r.errCodes[op+":"+code]++
	r.mu.Unlock()
}

// errorsOf counts the failed calls of one operation.
func (r *recorder) errorsOf(op string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for k, v := range r.errCodes {
		if strings.HasPrefix(k, op+":") {
			n += v
		}
	}
	return n
}

func (r *recorder) BatchEntryFailed(string, string) { r.entryFailures.Add(1) }

// logRecorder is a slog.Handler that keeps every record's message and
// writes the records to the test's output.
type logRecorder struct {
	store *logStore
	next  slog.Handler
}

type logStore struct {
	mu   sync.Mutex
	msgs []string
}

func newLogger(t testing.TB) (*slog.Logger, *logStore) {
	store := &logStore{}
	next := slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})
	return slog.New(&logRecorder{store: store, next: next}), store
}

func (h *logRecorder) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }
func (h *logRecorder) Handle(ctx context.Context, r slog.Record) error {
	h.store.mu.Lock()
	h.store.msgs = append(h.store.msgs, r.Message)
	h.store.mu.Unlock()
	return h.next.Handle(ctx, r)
}
func (h *logRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	return &logRecorder{store: h.store, next: h.next.WithAttrs(as)}
}
func (h *logRecorder) WithGroup(g string) slog.Handler {
	return &logRecorder{store: h.store, next: h.next.WithGroup(g)}
}

// count returns how many records had exactly this message.
func (s *logStore) count(msg string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m == msg {
			n++
		}
	}
	return n
}

// run is a Consumer running in the background.
type run struct {
	cancel   context.CancelFunc
	finished chan struct{}
	err      error
}

// startConsumer runs c in the background until the test stops it (or it
// returns by itself); the test's cleanup stops it too.
func startConsumer(t testing.TB, c *Consumer) *run {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &run{cancel: cancel, finished: make(chan struct{})}
	go func() {
		r.err = c.Run(ctx)
		close(r.finished)
	}()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Run and returns its error, failing the test if Run does not
// return within a minute.
func (r *run) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t, time.Minute)
}

// wait waits for Run to return by itself.
func (r *run) wait(t testing.TB, timeout time.Duration) error {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-r.finished:
		return r.err
	case <-timer.C:
		t.Fatalf("Run did not return within %v", timeout)
		return nil
	}
}

// TestKumo runs the integration tests against one kumo server. They share
// it because kumo.NewServer is not safe to call from parallel tests (it
// rewires process-wide services; the race detector reports it), and kumo
// keeps one store per process anyway: each test makes its own queues.
// The first two run alone: the throughput figures are only meaningful
// without company, and the restart test starts kumo servers of its own.
func TestKumo(t *testing.T) {
	srv := newKumo(t)
	for _, tc := range []struct {
		name string
		test func(t *testing.T, endpoint string)
	}{
		{"ConsumerThroughput", testConsumerThroughput},
		{"ConsumerRestart", testConsumerRestart},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.test(t, srv.URL) })
	}
	t.Run("parallel", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			test func(t *testing.T, endpoint string)
		}{
			{"ConsumerKeyLanes", testConsumerKeyLanes},
			{"ConsumerHeartbeat", testConsumerHeartbeat},
			{"ConsumerRetryAfter", testConsumerRetryAfter},
			{"ConsumerDeadLetter", testConsumerDeadLetter},
			{"ConsumerDepths", testConsumerDepths},
			{"ConsumerShutdown", testConsumerShutdown},
			{"ConsumerGate", testConsumerGate},
			{"ConsumerExitWhenIdle", testConsumerExitWhenIdle},
			{"ConsumerExitWhenIdleLostReceive", testConsumerExitWhenIdleLostReceive},
			{"ConsumerExitWhenIdleBounded", testConsumerExitWhenIdleBounded},
			{"ConsumerHandlerFaults", testConsumerHandlerFaults},
			{"ConsumerFIFORetryReleasesLane", testConsumerFIFORetryReleasesLane},
			{"ProducerBatching", testProducerBatching},
			{"ProducerFIFO", testProducerFIFO},
		} {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				tc.test(t, srv.URL)
			})
		}
	})
}

package devstack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"
)

// lateEndCheck is a transport to the emulator that makes, at the worst
// moment, the check http.Transport makes on every request body of known
// length: once the body is sent, it reads it once more to see it end, and
// a failed read closes the connection the answer is coming on. Its writer
// goroutine can make that read after the answer has come back, when the
// machine is busy; here it is made, for a ReceiveMessage, once the client
// has the answer's headers, with the rest of the answer still to come.
type lateEndCheck struct {
	headers <-chan struct{} // closed when the client has the answer's headers

	mu       sync.Mutex
	checkErr error // what the late read of the request body returned
	checked  bool
	streamed bool // the answer had no length, so the proxy flushed it as it came
}

func (c *lateEndCheck) RoundTrip(r *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
	if err != nil {
		return nil, err
	}
	out := r.Clone(r.Context())
	out.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil || r.Header.Get("X-Amz-Target") != "AmazonSQS.ReceiveMessage" {
		return resp, err
	}
	c.mu.Lock()
	c.streamed = resp.ContentLength == -1
	c.mu.Unlock()
	if resp.ContentLength == -1 {
		resp.Body = &checkedAnswer{ReadCloser: resp.Body, ctx: r.Context(), request: r.Body, check: c}
	}
	return resp, nil
}

// checkedAnswer passes a little of the answer, then waits for the client
// to have the headers and reads the request body once more before it
// passes the rest, failing the answer as a closed connection would if
// that read fails.
type checkedAnswer struct {
	io.ReadCloser
	ctx     context.Context
	request io.Reader
	check   *lateEndCheck
	reads   int
	err     error
}

func (a *checkedAnswer) Read(p []byte) (int, error) {
	a.reads++
	switch {
	case a.err != nil:
		return 0, a.err
	case a.reads == 1:
		return a.ReadCloser.Read(p[:min(len(p), 256)])
	case a.reads == 2:
		select {
		case <-a.check.headers:
		case <-a.ctx.Done():
			return 0, a.ctx.Err()
		}
		_, err := io.CopyBuffer(io.Discard, a.request, make([]byte, 512))
		a.check.mu.Lock()
		a.check.checkErr, a.check.checked = err, true
		a.check.mu.Unlock()
		if err != nil {
			a.err = fmt.Errorf("connection to the emulator closed: the request body failed its end check: %w", err)
			return 0, a.err
		}
	}
	return a.ReadCloser.Read(p)
}

// roundTripFunc adapts a function to http.RoundTripper.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSQSProxyAnswersWholeWhenTheBodyIsCheckedLate: a receive that finds
// messages is answered at once; the proxy must deliver that answer whole
// even when its transport reads the request body one last time after the
// proxy has started writing the answer. Before the proxy read requests
// whole, that read failed ("http: invalid Read on closed Body"), the
// transport dropped its connection to the emulator, and the client got a
// 200 cut short: ten messages in flight, held by nobody.
func TestSQSProxyAnswersWholeWhenTheBodyIsCheckedLate(t *testing.T) {
	ctx := context.Background()
	emu := kumo.NewServer()
	t.Cleanup(emu.Close)
	target, err := url.Parse(emu.URL)
	if err != nil {
		t.Fatal(err)
	}
	headers := make(chan struct{})
	check := &lateEndCheck{headers: headers}
	proxy := httptest.NewServer(newSQSProxy(func() *url.URL { return target }, check))
	t.Cleanup(proxy.Close)

	client := func(endpoint string, rt http.RoundTripper) *sqs.Client {
		return sqs.NewFromConfig(aws.Config{
			Region:      Region,
			Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
			HTTPClient:  &http.Client{Transport: rt},
			// No retries: a cut answer must show, not be retried away.
			Retryer: func() aws.Retryer { return aws.NopRetryer{} },
		}, func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	}
	direct := client(emu.URL, http.DefaultTransport)
	// Every kumo server in a process shares one store: a name of its own.
	name := fmt.Sprintf("devstack-proxy-check-%06d.fifo", rand.N(1_000_000))
	q, err := direct.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: map[string]string{"FifoQueue": "true"}})
	if err != nil {
		t.Fatal(err)
	}
	// Ten messages of ten groups, large enough that the answer is
	// streamed and cannot pass in the first read.
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i := range 10 {
		id := strconv.Itoa(i)
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(id), MessageBody: aws.String(id + strings.Repeat("x", 1000)),
			MessageGroupId: aws.String("g" + id), MessageDeduplicationId: aws.String(id)})
	}
	if out, err := direct.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: q.QueueUrl, Entries: entries}); err != nil || len(out.Failed) > 0 {
		t.Fatalf("send: %v %v", err, out)
	}

	var once sync.Once
	viaProxy := client(proxy.URL, roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		once.Do(func() { close(headers) })
		return resp, err
	}))
	out, err := viaProxy.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, VisibilityTimeout: 300})
	if err != nil {
		t.Fatalf("receive through the proxy: %v", err)
	}
	if got := len(out.Messages); got != 10 {
		t.Errorf("receive through the proxy: got %d messages, want 10", got)
	}
	check.mu.Lock()
	defer check.mu.Unlock()
	if !check.streamed || !check.checked {
		t.Fatalf("the emulator's answer was streamed: %v, the late check made: %v; want both, or this test proves nothing", check.streamed, check.checked)
	}
	if check.checkErr != nil {
		t.Errorf("late read of the request body: %v, want its end", check.checkErr)
	}
}

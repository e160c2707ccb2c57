package queue

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

// TestReceiveAttemptKeepsItsIDOnlyWhileTheAnswerIsLost: a receive is made
// again with the same ReceiveRequestAttemptId only when its answer never
// came back, and only while SQS still honours the id.
func TestReceiveAttemptKeepsItsIDOnlyWhileTheAnswerIsLost(t *testing.T) {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	throttled := &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.RequestThrottled", Message: "throttled"}
	tests := []struct {
		name     string
		err      error         // how the first receive ended
		after    time.Duration // when the next one starts
		wantSame bool
	}{
		{"answered", nil, time.Second, false},
		{"answer cut short", errors.New("deserialization failed, unexpected EOF"), time.Second, true},
		{"timed out", fmt.Errorf("receive: %w", context.DeadlineExceeded), time.Second, true},
		{"answered with an error", throttled, time.Second, false},
		{"lost, but the id is too old", errors.New("connection reset by peer"), attemptIDLife, false},
		{"lost, the id just young enough", errors.New("connection reset by peer"), attemptIDLife - time.Second, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a receiveAttempt
			first := a.next(t0)
			if first == "" {
				t.Fatal("first id: got none")
			}
			a.done(tt.err)
			if got := a.next(t0.Add(tt.after)); (got == first) != tt.wantSame {
				t.Errorf("next id: got %q after %q, want the same: %v", got, first, tt.wantSame)
			}
		})
	}
}

// attemptRecorder sits between the consumer and kumo. It notes the
// ReceiveRequestAttemptId of every ReceiveMessage, in order ("" for none),
// and does to the first receive that finds messages what lose says.
type attemptRecorder struct {
	next http.RoundTripper
	lose string // "cut": the answer stops halfway; "reset": the connection drops after kumo answered; "throttle": an error answer instead
	want int    // how many receives to note before done is closed
	done chan struct{}

	mu       sync.Mutex
	ids      []string
	lost     bool
	setupErr error // the first receive found nothing to lose
}

func (r *attemptRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Header.Get("X-Amz-Target") != "AmazonSQS.ReceiveMessage" {
		return r.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return nil, err
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	var in struct{ ReceiveRequestAttemptId string }
	if err := json.Unmarshal(body, &in); err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.ids = append(r.ids, in.ReceiveRequestAttemptId)
	if len(r.ids) == r.want {
		close(r.done)
	}
	first := !r.lost
	r.lost = true
	r.mu.Unlock()
	if first && r.lose == "throttle" {
		return &http.Response{StatusCode: http.StatusBadRequest, Request: req,
			Header: http.Header{"Content-Type": {"application/x-amz-json-1.0"}, "X-Amzn-Query-Error": {"AWS.SimpleQueueService.RequestThrottled;Sender"}},
			Body:   io.NopCloser(strings.NewReader(`{"__type":"com.amazonaws.sqs#RequestThrottled","message":"throttled"}`))}, nil
	}
	resp, err := r.next.RoundTrip(req)
	if err != nil || !first {
		return resp, err
	}
	answer, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if !bytes.Contains(answer, []byte(`"MessageId"`)) {
		r.mu.Lock()
		r.setupErr = fmt.Errorf("the first receive found no messages to lose: %s", answer)
		r.mu.Unlock()
	}
	switch r.lose {
	case "cut":
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(answer[:len(answer)/2]), errReader{io.ErrUnexpectedEOF}))
		resp.ContentLength = -1
		return resp, nil
	default: // "reset"
		return nil, errors.New("read tcp: connection reset by peer")
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func (r *attemptRecorder) noted() ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ids...), r.setupErr
}

// TestReceiveRetriesWithTheSameAttemptID: on a FIFO queue, a receive whose
// answer is lost is made again with the same ReceiveRequestAttemptId,
// whether the consumer's loop retries it (an answer cut short) or the
// SDK does (a connection reset); the receive after an answer, an error
// one included, has a new id. On a standard queue no id is sent.
//
// kumo ignores the id: the retry does not get the lost messages back, as
// SQS would; they come back when their visibility timeout runs out. What
// is tested here is what goes on the wire.
func TestReceiveRetriesWithTheSameAttemptID(t *testing.T) {
	srv := newKumo(t)
	tests := []struct {
		name       string
		fifo       bool
		lose       string
		sdkRetries bool
		wantSame   bool // the second receive has the first one's id
	}{
		{"answer cut short, the consumer retries", true, "cut", false, true},
		{"connection reset, the SDK retries", true, "reset", true, true},
		{"answered with an error", true, "throttle", false, false},
		{"standard queue", false, "cut", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &attemptRecorder{next: newRequestCounter(), lose: tt.lose, want: 3, done: make(chan struct{})}
			cfg := aws.Config{
				Region:      "us-east-1",
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
				HTTPClient:  &http.Client{Transport: rec},
			}
			if !tt.sdkRetries {
				cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
			}
			client := sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			suffix, attrs := "", map[string]string{"VisibilityTimeout": "60"}
			if tt.fifo {
				suffix, attrs["FifoQueue"] = ".fifo", "true"
			}
			url := createQueue(t, newClient(srv.URL, nil), queueName(t, suffix), attrs)
			sendBodies(t, newClient(srv.URL, nil), url, []string{"a:1", "b:1", "c:1"}, nil)
			log, _ := newLogger(t)
			c, err := NewConsumer(client, Config{QueueURL: url, Workers: 1, Pollers: 1, WaitTime: time.Second, Logger: log},
				handlerFuncs{key: bodyKey, handle: func(_ context.Context, batch []*Message) []Outcome { return ackAll(batch) }})
			if err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, c)
			<-rec.done
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			ids, setupErr := rec.noted()
			if setupErr != nil {
				t.Fatal(setupErr)
			}
			if !tt.fifo {
				for i, id := range ids {
					if id != "" {
						t.Errorf("receive %d on a standard queue: got ReceiveRequestAttemptId %q, want none", i+1, id)
					}
				}
				return
			}
			for i, id := range ids {
				if id == "" {
					t.Errorf("receive %d on a FIFO queue: no ReceiveRequestAttemptId, want one (ids %q)", i+1, ids)
				}
			}
			if got := ids[1] == ids[0]; got != tt.wantSame {
				t.Errorf("second receive: id %q after %q, want the same: %v", ids[1], ids[0], tt.wantSame)
			}
			if ids[2] == ids[1] {
				t.Errorf("third receive, after an answer: id %q again, want a new one", ids[2])
			}
		})
	}
}

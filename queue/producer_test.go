package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// sentBatches decodes the SendMessageBatch requests a counter kept.
func sentBatches(t *testing.T, rc *requestCounter) [][]map[string]any {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var batches [][]map[string]any
	for _, b := range rc.bodies[OpSendMessageBatch] {
		var req struct{ Entries []map[string]any }
		if err := json.Unmarshal(b, &req); err != nil {
			t.Fatalf("decode SendMessageBatch request: %v", err)
		}
		batches = append(batches, req.Entries)
	}
	return batches
}

func testProducerBatching(t *testing.T, endpoint string) {
	for _, tc := range []struct {
		name      string
		n, size   int
		wantSizes []int
	}{
		{"23 small messages go in tens", 23, 100, []int{10, 10, 3}},
		{"large messages split by the 1 MiB payload limit", 5, 400 << 10, []int{2, 2, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rc := newRequestCounter()
			rc.keep = true
			client := newClient(endpoint, rc)
			url := createQueue(t, client, queueName(t, ""), nil)
			entries := make([]Entry, tc.n)
			for i := range entries {
				entries[i] = Entry{ID: fmt.Sprint("job-", i), Body: strings.Repeat("x", tc.size)}
			}
			res, err := NewProducer(client, url, ProducerConfig{}).Send(context.Background(), entries)
			if err != nil {
				t.Fatalf("Send: %v", err)
			}
			var sizes []int
			for _, b := range sentBatches(t, rc) {
				sizes = append(sizes, len(b))
			}
			if fmt.Sprint(sizes) != fmt.Sprint(tc.wantSizes) {
				t.Errorf("batch sizes: got %v, want %v", sizes, tc.wantSizes)
			}
			for i, id := range res.MessageIDs {
				if id == "" {
					t.Errorf("entry %d: no message id", i)
				}
			}
			if v, _ := depth(t, client, url); v != tc.n {
				t.Errorf("queue: got %d messages, want %d", v, tc.n)
			}
		})
	}
}

func testProducerFIFO(t *testing.T, endpoint string) {
	rc := newRequestCounter()
	rc.keep = true
	client := newClient(endpoint, rc)
	url := createQueue(t, client, queueName(t, ".fifo"), map[string]string{"FifoQueue": "true"})
	entries := []Entry{
		{Body: "one", GroupID: "eng-a"},
		{Body: "two", GroupID: "eng-a"},
		{Body: "three", GroupID: "eng-b", DeduplicationID: "job-3"},
	}
	p := NewProducer(client, url, ProducerConfig{})
	for range 2 { // the second send is deduplicated by SQS
		if _, err := p.Send(context.Background(), entries); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	hex64 := regexp.MustCompile(`^[0-9a-f]{64}$`)
	batches := sentBatches(t, rc)
	if len(batches) != 2 {
		t.Fatalf("SendMessageBatch calls: got %d, want 2", len(batches))
	}
	for i, e := range batches[0] {
		if got := e["MessageGroupId"]; got != entries[i].GroupID {
			t.Errorf("entry %d MessageGroupId: got %v, want %q", i, got, entries[i].GroupID)
		}
		dedup, _ := e["MessageDeduplicationId"].(string)
		switch {
		case entries[i].DeduplicationID != "" && dedup != entries[i].DeduplicationID:
			t.Errorf("entry %d MessageDeduplicationId: got %q, want %q", i, dedup, entries[i].DeduplicationID)
		case entries[i].DeduplicationID == "" && !hex64.MatchString(dedup):
			t.Errorf("entry %d MessageDeduplicationId: got %q, want a SHA-256 of group and body", i, dedup)
		}
	}
	if v, _ := depth(t, client, url); v != len(entries) {
		t.Errorf("queue after sending twice: got %d messages, want %d (duplicates dropped)", v, len(entries))
	}
}

// noCalls is a Sender that fails the test if called.
type noCalls struct{ t *testing.T }

func (n noCalls) SendMessageBatch(context.Context, *sqs.SendMessageBatchInput, ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	n.t.Error("SendMessageBatch called for an invalid batch, want no call")
	return nil, errors.New("unexpected call")
}

func TestProducerRejectsBadEntries(t *testing.T) {
	attrs := func(n int) map[string]types.MessageAttributeValue {
		m := map[string]types.MessageAttributeValue{}
		for i := range n {
			m[fmt.Sprint("a", i)] = stringAttr("String", "v")
		}
		return m
	}
	for _, tc := range []struct {
		name  string
		url   string
		entry Entry
		want  error
		text  string
	}{
		{"oversize counts attributes", "https://sqs.example/1/q",
			Entry{ID: "job-7", Body: strings.Repeat("x", MaxMessageSize), Attributes: attrs(1)},
			ErrTooLarge, "entry 1 (job-7): message too large: 1048585 bytes (body 1048576, attributes 9), over the 1048576-byte limit"},
		{"empty body", "https://sqs.example/1/q", Entry{}, ErrInvalidEntry, "entry 1: invalid message: body is empty"},
		{"character SQS refuses", "https://sqs.example/1/q", Entry{Body: "a\x01b"}, ErrInvalidEntry, "U+0001 at byte 1"},
		{"too many attributes", "https://sqs.example/1/q", Entry{Body: "b", Attributes: attrs(11)}, ErrInvalidEntry, "11 message attributes"},
		{"FIFO without group", "https://sqs.example/1/q.fifo", Entry{Body: "b"}, ErrInvalidEntry, "needs a GroupID"},
		{"FIFO with delay", "https://sqs.example/1/q.fifo", Entry{Body: "b", GroupID: "g", Delay: time.Second}, ErrInvalidEntry, "no per-message delay"},
		{"dedup id on a standard queue", "https://sqs.example/1/q", Entry{Body: "b", DeduplicationID: "d"}, ErrInvalidEntry, "FIFO queues only"},
		{"delay over 15 minutes", "https://sqs.example/1/q", Entry{Body: "b", Delay: time.Hour}, ErrInvalidEntry, "outside 0 to 15m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			good := Entry{Body: "fine", GroupID: "g"}
			if !isFIFOURL(tc.url) {
				good.GroupID = ""
			}
			res, err := NewProducer(noCalls{t}, tc.url, ProducerConfig{}).Send(context.Background(), []Entry{good, tc.entry})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error: got %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("error: got %q, want it to contain %q", err, tc.text)
			}
			if len(res.Failed) != 1 || res.Failed[0].Index != 1 {
				t.Errorf("failed entries: got %v, want entry 1 only", res.Failed)
			}
			if res.MessageIDs[0] != "" {
				t.Errorf("good entry sent alongside a bad one, want nothing sent")
			}
		})
	}
}

// scriptedSender answers SendMessageBatch calls from a script: each step
// gets the call's entries and returns the failures to report (by position)
// or an error for the whole call.
type scriptedSender struct {
	mu    sync.Mutex
	steps []func(in *sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error)
	calls []int // entries per call
}

func (s *scriptedSender) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, len(in.Entries))
	step := s.steps[min(len(s.calls), len(s.steps))-1]
	failed, err := step(in)
	if err != nil {
		return nil, err
	}
	out := &sqs.SendMessageBatchOutput{Failed: failed}
	for _, e := range in.Entries {
		if !slicesContainsID(failed, *e.Id) {
			out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: ptr("mid-" + *e.MessageBody)})
		}
	}
	return out, nil
}

func slicesContainsID(failed []types.BatchResultErrorEntry, id string) bool {
	for _, f := range failed {
		if *f.Id == id {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

func failEntry(id string, senderFault bool, code string) types.BatchResultErrorEntry {
	return types.BatchResultErrorEntry{Id: &id, SenderFault: senderFault, Code: &code, Message: ptr("scripted")}
}

func TestProducerRetries(t *testing.T) {
	ok := func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error) { return nil, nil }
	for _, tc := range []struct {
		name       string
		steps      []func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error)
		wantCalls  []int
		wantFailed map[int]string // index -> code
	}{
		{
			name: "a transient entry failure is retried alone",
			steps: []func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error){
				func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error) {
					return []types.BatchResultErrorEntry{failEntry("1", false, "InternalError")}, nil
				}, ok,
			},
			wantCalls: []int{3, 1},
		},
		{
			name: "a sender fault is not retried",
			steps: []func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error){
				func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error) {
					return []types.BatchResultErrorEntry{failEntry("2", true, "InvalidParameterValue")}, nil
				},
			},
			wantCalls:  []int{3},
			wantFailed: map[int]string{2: "InvalidParameterValue"},
		},
		{
			name: "a failing call is retried up to MaxAttempts",
			steps: []func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error){
				func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error) {
					return nil, errors.New("connection reset")
				},
			},
			wantCalls:  []int{3, 3, 3},
			wantFailed: map[int]string{0: CodeTransport, 1: CodeTransport, 2: CodeTransport},
		},
		{
			name: "a missing queue is not retried",
			steps: []func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error){
				func(*sqs.SendMessageBatchInput) ([]types.BatchResultErrorEntry, error) {
					return nil, &smithy.GenericAPIError{Code: "QueueDoesNotExist", Message: "gone"}
				},
			},
			wantCalls:  []int{3},
			wantFailed: map[int]string{0: "QueueDoesNotExist", 1: "QueueDoesNotExist", 2: "QueueDoesNotExist"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &scriptedSender{steps: tc.steps}
			p := NewProducer(s, "https://sqs.example/1/q", ProducerConfig{MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond})
			res, err := p.Send(context.Background(), []Entry{{Body: "a"}, {Body: "b"}, {Body: "c"}})
			if fmt.Sprint(s.calls) != fmt.Sprint(tc.wantCalls) {
				t.Errorf("calls (entries each): got %v, want %v", s.calls, tc.wantCalls)
			}
			if (err != nil) != (len(tc.wantFailed) > 0) {
				t.Errorf("error: got %v, want failure %v", err, len(tc.wantFailed) > 0)
			}
			got := map[int]string{}
			for _, f := range res.Failed {
				got[f.Index] = f.Code
				if !errors.Is(f, ErrRejected) {
					t.Errorf("entry %d: got %v, want ErrRejected", f.Index, f)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantFailed) && len(got)+len(tc.wantFailed) > 0 {
				t.Errorf("failed entries: got %v, want %v", got, tc.wantFailed)
			}
			for i, id := range res.MessageIDs {
				if _, failed := tc.wantFailed[i]; !failed && id == "" {
					t.Errorf("entry %d: no message id, want sent", i)
				}
			}
		})
	}
}

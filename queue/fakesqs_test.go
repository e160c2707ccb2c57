package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"
)

// This file holds the wiring of the timing tests: an SQS queue in memory,
// for a Consumer in a testing/synctest bubble. kumo cannot serve there: a
// goroutine blocked on a socket is not durably blocked, so the bubble's
// clock would never move. In the bubble the clock moves only when every
// goroutine waits, so what the Consumer does at a given instant is exact
// and does not depend on how busy the machine is.

// fakeSQS is one standard SQS queue in memory. It keeps the rules the
// Consumer's timing rests on: a received message is hidden for the
// visibility timeout asked for (or the queue's) and is handed out again
// when that runs out; a long poll returns as soon as a message is visible,
// as SQS's does; a visibility change needs the newest receipt handle of a
// message in flight, and a delete the newest receipt handle. It records
// when things happened, for the tests to check against the bubble's clock.
// It is safe for concurrent use.
type fakeSQS struct {
	url string
	vt  time.Duration // the queue's VisibilityTimeout attribute

	mu       sync.Mutex
	msgs     []*fakeMessage // in send order
	byHandle map[string]*fakeMessage
	changed  chan struct{} // closed (and replaced) when a message may have become visible
	seq      int
	receives []time.Time // when each ReceiveMessage call began
	attrAsks int         // GetQueueAttributes calls
}

// fakeMessage is a message of a fakeSQS and its history.
type fakeMessage struct {
	id, body  string
	sentAt    time.Time
	handle    string    // newest receipt handle; "" before the first receive
	visibleAt time.Time // hidden until then
	received  []time.Time
	changes   []visChange // accepted visibility changes
	late      []time.Time // changes refused because the visibility had run out
	deletedAt time.Time   // zero while on the queue
}

// visChange is one accepted visibility change: at is when it was made.
type visChange struct {
	at      time.Time
	seconds int32
}

func newFakeSQS(vt time.Duration) *fakeSQS { return newNamedFakeSQS("fake", vt) }

// newNamedFakeSQS makes a fake queue of that name.
func newNamedFakeSQS(name string, vt time.Duration) *fakeSQS {
	return &fakeSQS{
		url:      "https://sqs.us-east-1.amazonaws.com/000000000000/" + name,
		vt:       vt,
		byHandle: map[string]*fakeMessage{},
		changed:  make(chan struct{}),
	}
}

// send puts messages on the queue, visible at once.
func (q *fakeSQS) send(bodies ...string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := time.Now()
	for _, b := range bodies {
		q.seq++
		q.msgs = append(q.msgs, &fakeMessage{id: fmt.Sprintf("msg-%d", q.seq), body: b, sentAt: now, visibleAt: now})
	}
	q.wakeLocked()
}

// message returns a copy of the message with this body.
func (q *fakeSQS) message(t testing.TB, body string) fakeMessage {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		if m.body == body {
			c := *m
			c.received = append([]time.Time(nil), m.received...)
			c.changes = append([]visChange(nil), m.changes...)
			c.late = append([]time.Time(nil), m.late...)
			return c
		}
	}
	t.Fatalf("no message %q on the fake queue", body)
	return fakeMessage{}
}

// receiveStarts returns when each ReceiveMessage call began.
func (q *fakeSQS) receiveStarts() []time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]time.Time(nil), q.receives...)
}

// attributeAsks returns how many GetQueueAttributes calls the queue got.
func (q *fakeSQS) attributeAsks() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.attrAsks
}

func (q *fakeSQS) wakeLocked() {
	close(q.changed)
	q.changed = make(chan struct{})
}

func (q *fakeSQS) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	start := time.Now()
	q.mu.Lock()
	q.receives = append(q.receives, start)
	q.mu.Unlock()
	vis := q.vt
	if in.VisibilityTimeout > 0 {
		vis = time.Duration(in.VisibilityTimeout) * time.Second
	}
	limit := max(int(in.MaxNumberOfMessages), 1)
	deadline := start.Add(time.Duration(in.WaitTimeSeconds) * time.Second)
	for {
		now := time.Now()
		next := deadline // the long poll ends, or a hidden message comes back
		var out []types.Message
		q.mu.Lock()
		for _, m := range q.msgs {
			switch {
			case !m.deletedAt.IsZero():
			case m.visibleAt.After(now):
				if m.visibleAt.Before(next) {
					next = m.visibleAt
				}
			case len(out) < limit:
				q.seq++
				m.handle = fmt.Sprintf("%s/%d", m.id, q.seq)
				q.byHandle[m.handle] = m
				m.visibleAt = now.Add(vis)
				m.received = append(m.received, now)
				out = append(out, types.Message{
					MessageId: &m.id, ReceiptHandle: &m.handle, Body: &m.body,
					Attributes: map[string]string{
						string(types.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(len(m.received)),
						string(types.MessageSystemAttributeNameSentTimestamp):           strconv.FormatInt(m.sentAt.UnixMilli(), 10),
					},
				})
			}
		}
		changed := q.changed
		q.mu.Unlock()
		if len(out) > 0 || !now.Before(deadline) {
			return &sqs.ReceiveMessageOutput{Messages: out}, nil
		}
		t := time.NewTimer(next.Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-changed:
			t.Stop()
		case <-t.C:
		}
	}
}

// entryLocked finds the message of a receipt handle, or says why it cannot.
func (q *fakeSQS) entryLocked(id, handle *string) (*fakeMessage, *types.BatchResultErrorEntry) {
	m := q.byHandle[deref(handle)]
	if m == nil || m.handle != deref(handle) {
		return nil, &types.BatchResultErrorEntry{Id: id, SenderFault: true, Code: ptr("ReceiptHandleIsInvalid")}
	}
	return m, nil
}

func (q *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	now := time.Now()
	out := &sqs.DeleteMessageBatchOutput{}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		m, fail := q.entryLocked(e.Id, e.ReceiptHandle)
		if fail != nil {
			out.Failed = append(out.Failed, *fail)
			continue
		}
		if m.deletedAt.IsZero() {
			m.deletedAt = now
		}
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

func (q *fakeSQS) ChangeMessageVisibilityBatch(_ context.Context, in *sqs.ChangeMessageVisibilityBatchInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	now := time.Now()
	out := &sqs.ChangeMessageVisibilityBatchOutput{}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, e := range in.Entries {
		m, fail := q.entryLocked(e.Id, e.ReceiptHandle)
		switch {
		case fail != nil:
		case !m.deletedAt.IsZero():
			fail = &types.BatchResultErrorEntry{Id: e.Id, SenderFault: true, Code: ptr("ReceiptHandleIsInvalid")}
		case !m.visibleAt.After(now):
			// Its visibility ran out: SQS no longer lets the holder of
			// the handle change it.
			m.late = append(m.late, now)
			fail = &types.BatchResultErrorEntry{Id: e.Id, SenderFault: true, Code: ptr("AWS.SimpleQueueService.MessageNotInflight")}
		}
		if fail != nil {
			out.Failed = append(out.Failed, *fail)
			continue
		}
		m.visibleAt = now.Add(time.Duration(e.VisibilityTimeout) * time.Second)
		m.changes = append(m.changes, visChange{at: now, seconds: e.VisibilityTimeout})
		out.Successful = append(out.Successful, types.ChangeMessageVisibilityBatchResultEntry{Id: e.Id})
	}
	q.wakeLocked()
	return out, nil
}

func (q *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		q.send(deref(e.MessageBody))
		q.mu.Lock()
		id := q.msgs[len(q.msgs)-1].id
		q.mu.Unlock()
		out.Successful = append(out.Successful, types.SendMessageBatchResultEntry{Id: e.Id, MessageId: &id})
	}
	return out, nil
}

func (q *fakeSQS) GetQueueAttributes(context.Context, *sqs.GetQueueAttributesInput, ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	now := time.Now()
	visible, hidden := 0, 0
	q.mu.Lock()
	q.attrAsks++
	for _, m := range q.msgs {
		switch {
		case !m.deletedAt.IsZero():
		case m.visibleAt.After(now):
			hidden++
		default:
			visible++
		}
	}
	q.mu.Unlock()
	return &sqs.GetQueueAttributesOutput{Attributes: map[string]string{
		string(types.QueueAttributeNameVisibilityTimeout):                     strconv.Itoa(int(q.vt / time.Second)),
		string(types.QueueAttributeNameApproximateNumberOfMessages):           strconv.Itoa(visible),
		string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible): strconv.Itoa(hidden),
		string(types.QueueAttributeNameApproximateNumberOfMessagesDelayed):    "0",
	}}, nil
}

func (q *fakeSQS) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "the fake has one queue"}
}

// fakeQueues is several fake queues behind one client: each call goes to
// the queue its QueueUrl names, as on SQS, so a call that mixed queues
// would find receipt handles its queue never handed out.
type fakeQueues map[string]*fakeSQS

func newFakeQueues(qs ...*fakeSQS) fakeQueues {
	f := fakeQueues{}
	for _, q := range qs {
		f[q.url] = q
	}
	return f
}

func (f fakeQueues) queue(url *string) (*fakeSQS, error) {
	if q, ok := f[deref(url)]; ok {
		return q, nil
	}
	return nil, &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "no fake queue " + deref(url)}
}

func (f fakeQueues) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, o ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return q.ReceiveMessage(ctx, in, o...)
}

func (f fakeQueues) DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, o ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return q.DeleteMessageBatch(ctx, in, o...)
}

func (f fakeQueues) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, o ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return q.ChangeMessageVisibilityBatch(ctx, in, o...)
}

func (f fakeQueues) SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, o ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return q.SendMessageBatch(ctx, in, o...)
}

func (f fakeQueues) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, o ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	q, err := f.queue(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	return q.GetQueueAttributes(ctx, in, o...)
}

func (f fakeQueues) GetQueueUrl(context.Context, *sqs.GetQueueUrlInput, ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	return nil, &smithy.GenericAPIError{Code: "AWS.SimpleQueueService.NonExistentQueue", Message: "the fakes have no RedrivePolicy"}
}

// settleUntil lets the bubble run until cond holds and fails the test when
// it still does not after limit; see settle.
func settleUntil(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	if !settle(limit, cond) {
		t.Fatalf("bubble clock moved %v and still not %s", limit, what)
	}
}

// settle lets the bubble run until cond holds, moving its clock a
// millisecond at a time while it does not, for at most limit of the
// bubble's time (which costs no real time). It reports whether cond held.
func settle(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for {
		synctest.Wait()
		if cond() {
			return true
		}
		if !time.Now().Before(deadline) {
			return false
		}
		advance(time.Millisecond)
	}
}

// advance moves the bubble's clock by d and lets every goroutine that was
// due run until it waits again.
func advance(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	<-t.C
	synctest.Wait()
}

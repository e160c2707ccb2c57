package queue

import (
	"context"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// Deletes in flight at once. One call at a time caps a consumer at ten
// messages per round trip; a few in parallel keep up with a large pool.
const maxDeleteCalls = 4

// Backoff of a failed delete.
const (
	deleteBackoffBase = 200 * time.Millisecond
	deleteBackoffMax  = 5 * time.Second
)

// deleter batches the deletes of acknowledged messages, per queue (a
// DeleteMessageBatch call names one queue): a queue's batch goes out as
// soon as ten of its messages are pending, or FlushInterval after its
// oldest entry arrived. Failed entries are retried with backoff for as long
// as the message is held (the heartbeat keeps it invisible meanwhile),
// except when SQS says the receipt handle is no longer valid.
type deleter struct {
	c *Consumer

	mu      sync.Mutex
	pending []pendingDeletes // by queue priority
	armed   bool             // the straggler timer is running

	// full carries batches of ten cut by add. They hold distinct held
	// messages, so MaxHeld/10+1 slots per queue mean add never blocks.
	full chan []*Message
	kick chan struct{} // arm the straggler timer
}

// pendingDeletes are one queue's messages waiting for a batch.
type pendingDeletes struct {
	msgs   []*Message
	oldest time.Time // when msgs[0] arrived
}

func newDeleter(c *Consumer) *deleter {
	d := &deleter{
		c:       c,
		pending: make([]pendingDeletes, len(c.srcs)),
		full:    make(chan []*Message, len(c.srcs)*(c.cfg.MaxHeld/sqsBatchMax+1)),
		kick:    make(chan struct{}, 1),
	}
	for i := range d.pending {
		d.pending[i].msgs = make([]*Message, 0, sqsBatchMax)
	}
	return d
}

// add queues messages for deletion. Their state is already stateDeleting.
func (d *deleter) add(msgs []*Message) {
	if len(msgs) == 0 {
		return
	}
	var cut [][]*Message
	kick := false
	d.mu.Lock()
	for _, m := range msgs {
		p := &d.pending[m.src.priority]
		if len(p.msgs) == 0 {
			p.oldest = time.Now()
		}
		p.msgs = append(p.msgs, m)
		if len(p.msgs) == sqsBatchMax {
			cut = append(cut, p.msgs)
			p.msgs = make([]*Message, 0, sqsBatchMax)
		}
	}
	if !d.armed && d.anyPendingLocked() {
		d.armed = true
		kick = true
	}
	d.mu.Unlock()
	for _, b := range cut {
		d.full <- b
	}
	if kick {
		select {
		case d.kick <- struct{}{}:
		default:
		}
	}
}

func (d *deleter) anyPendingLocked() bool {
	for _, p := range d.pending {
		if len(p.msgs) > 0 {
			return true
		}
	}
	return false
}

// cutStale takes the pending entries of every queue whose oldest has
// waited FlushInterval; it also says how long until the next of the others
// has (0: none left).
func (d *deleter) cutStale(interval time.Duration) ([][]*Message, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var cut [][]*Message
	var again time.Duration
	for i := range d.pending {
		p := &d.pending[i]
		if len(p.msgs) == 0 {
			continue
		}
		if age := time.Since(p.oldest); age < interval {
			if again == 0 || interval-age < again {
				again = interval - age
			}
			continue
		}
		cut = append(cut, p.msgs)
		p.msgs = make([]*Message, 0, sqsBatchMax)
	}
	d.armed = again > 0
	return cut, again
}

// takeAll takes every pending entry, for the final flush.
func (d *deleter) takeAll() [][]*Message {
	d.mu.Lock()
	defer d.mu.Unlock()
	var cut [][]*Message
	for i := range d.pending {
		if p := &d.pending[i]; len(p.msgs) > 0 {
			cut = append(cut, p.msgs)
			p.msgs = nil
		}
	}
	return cut
}

// run sends batches until stop is closed, then flushes everything pending
// and waits for the calls in flight, which give up when ctx is done. The
// senders are long-lived goroutines: a fresh goroutine per batch would
// grow its stack through the SDK's deep middleware chain every time.
func (d *deleter) run(ctx context.Context, stop <-chan struct{}) {
	work := make(chan []*Message)
	var senders sync.WaitGroup
	for range maxDeleteCalls {
		senders.Go(func() {
			for b := range work {
				d.send(ctx, b)
			}
		})
	}
	defer func() {
		close(work)
		senders.Wait()
	}()
	hand := func(b []*Message) {
		select {
		case work <- b:
		case <-ctx.Done(): // shutdown gave up: the messages reappear
		}
	}

	interval := d.c.cfg.FlushInterval
	t := time.NewTimer(time.Hour)
	t.Stop()
	defer t.Stop()
	for {
		select {
		case b := <-d.full:
			hand(b)
		case <-d.kick:
			t.Reset(interval)
		case <-t.C:
			cut, again := d.cutStale(interval)
			for _, b := range cut {
				hand(b)
			}
			if again > 0 {
				t.Reset(again)
			}
		case <-stop:
			for {
				select {
				case b := <-d.full:
					hand(b)
					continue
				default:
				}
				break
			}
			for _, b := range d.takeAll() {
				hand(b)
			}
			return
		}
	}
}

// send deletes one batch, of one queue, retrying what fails, until done or
// ctx is done.
func (d *deleter) send(ctx context.Context, b []*Message) {
	for attempt := 1; len(b) > 0; attempt++ {
		b = d.c.deleteBatch(ctx, b)
		if len(b) > 0 && !retry.Sleep(ctx, backoff(attempt, deleteBackoffBase, deleteBackoffMax)) {
			b[0].src.log.Error("could not delete acknowledged messages before shutdown; they will be delivered again",
				"messages", len(b))
			return
		}
	}
}

// deleteBatch makes one DeleteMessageBatch call for messages of one queue
// and returns the messages to try again.
func (c *Consumer) deleteBatch(ctx context.Context, b []*Message) []*Message {
	s := b[0].src
	in := &sqs.DeleteMessageBatchInput{
		QueueUrl: &s.url,
		Entries:  make([]types.DeleteMessageBatchRequestEntry, len(b)),
	}
	for i, m := range b {
		in.Entries[i] = types.DeleteMessageBatchRequestEntry{Id: &c.batchIDs[i], ReceiptHandle: &m.ReceiptHandle}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	start := time.Now()
	out, err := c.client.DeleteMessageBatch(cctx, in)
	cancel()
	c.obs.SQSCall(OpDeleteMessageBatch, errorCode(err), time.Since(start))
	if err != nil {
		s.delStreak.fail(s.log, err)
		return b
	}
	s.delStreak.ok(s.log)

	succeeded, failed := batchResults(len(b), out.Successful,
		func(e types.DeleteMessageBatchResultEntry) *string { return e.Id }, out.Failed)
	var retry []*Message
	var refused []entryFailure
	acked := 0
	c.mu.Lock()
	for i, m := range b {
		switch {
		case succeeded[i]:
			c.finishLocked(m)
			acked++
		case failed[i] != nil && failed[i].SenderFault:
			// The receipt handle expired: the message went back to the
			// queue and will be handled again. Nothing to retry.
			refused = append(refused, entryFailure{m: m, code: deref(failed[i].Code), msg: deref(failed[i].Message)})
			c.finishLocked(m)
		default:
			if failed[i] != nil {
				refused = append(refused, entryFailure{m: m, code: deref(failed[i].Code), msg: deref(failed[i].Message), retry: true})
			}
			retry = append(retry, m)
		}
	}
	c.roomChangedLocked(s)
	c.mu.Unlock()

	if acked > 0 {
		c.obs.Acked(acked)
	}
	for _, f := range refused {
		c.obs.BatchEntryFailed(OpDeleteMessageBatch, f.code)
		if f.retry {
			s.log.Warn("delete failed; retrying", "message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg)
			continue
		}
		s.log.Warn("SQS refused to delete an acknowledged message; it will be delivered again",
			"message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg)
	}
	return retry
}

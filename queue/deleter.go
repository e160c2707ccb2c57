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

// deleter batches the deletes of acknowledged messages: a batch goes out as
// soon as ten are pending, or FlushInterval after its oldest entry arrived.
// Failed entries are retried with backoff for as long as the message is held
// (the heartbeat keeps it invisible meanwhile), except when SQS says the
// receipt handle is no longer valid.
type deleter struct {
	c *Consumer

	mu      sync.Mutex
	pending []*Message
	oldest  time.Time // when pending's first entry arrived
	armed   bool      // the straggler timer is running

	// full carries batches of ten cut by add. They hold distinct held
	// messages, so MaxHeld/10+1 slots mean add never blocks.
	full chan []*Message
	kick chan struct{} // arm the straggler timer
}

func newDeleter(c *Consumer) *deleter {
	return &deleter{
		c:       c,
		pending: make([]*Message, 0, sqsBatchMax),
		full:    make(chan []*Message, c.cfg.MaxHeld/sqsBatchMax+1),
		kick:    make(chan struct{}, 1),
	}
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
		if len(d.pending) == 0 {
			d.oldest = time.Now()
		}
		d.pending = append(d.pending, m)
		if len(d.pending) == sqsBatchMax {
			cut = append(cut, d.pending)
			d.pending = make([]*Message, 0, sqsBatchMax)
		}
	}
	if len(d.pending) > 0 && !d.armed {
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

// cutStale takes the pending entries if the oldest has waited FlushInterval;
// otherwise it says how long until it has.
func (d *deleter) cutStale(interval time.Duration) ([]*Message, time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 {
		d.armed = false
		return nil, 0
	}
	if age := time.Since(d.oldest); age < interval {
		return nil, interval - age
	}
	b := d.pending
	d.pending = make([]*Message, 0, sqsBatchMax)
	d.armed = false
	return b, 0
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
			b, again := d.cutStale(interval)
			if len(b) > 0 {
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
			d.mu.Lock()
			b := d.pending
			d.pending = nil
			d.mu.Unlock()
			if len(b) > 0 {
				hand(b)
			}
			return
		}
	}
}

// send deletes one batch, retrying what fails, until done or ctx is done.
func (d *deleter) send(ctx context.Context, b []*Message) {
	for attempt := 1; len(b) > 0; attempt++ {
		b = d.c.deleteBatch(ctx, b)
		if len(b) > 0 && !retry.Sleep(ctx, backoff(attempt, deleteBackoffBase, deleteBackoffMax)) {
			d.c.log.Error("could not delete acknowledged messages before shutdown; they will be delivered again",
				"messages", len(b))
			return
		}
	}
}

// deleteBatch makes one DeleteMessageBatch call and returns the messages to
// try again.
func (c *Consumer) deleteBatch(ctx context.Context, b []*Message) []*Message {
	in := &sqs.DeleteMessageBatchInput{
		QueueUrl: &c.cfg.QueueURL,
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
		c.delStreak.fail(c.log, err)
		return b
	}
	c.delStreak.ok(c.log)

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
	c.heldChangedLocked()
	c.mu.Unlock()

	if acked > 0 {
		c.obs.Acked(acked)
	}
	for _, f := range refused {
		c.obs.BatchEntryFailed(OpDeleteMessageBatch, f.code)
		if f.retry {
			c.log.Warn("delete failed; retrying", "message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg)
			continue
		}
		c.log.Warn("SQS refused to delete an acknowledged message; it will be delivered again",
			"message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg)
	}
	return retry
}

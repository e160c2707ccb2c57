package queue

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// visRetryBase is the first wait after a failed visibility call; the waits
// grow up to a heartbeat period.
const visRetryBase = 200 * time.Millisecond

// maxVisibilityCalls bounds the ChangeMessageVisibilityBatch calls of one
// heartbeat round that run at once.
const maxVisibilityCalls = 4

// visEntry is one entry of a ChangeMessageVisibilityBatch call: either an
// extension of a held message or a final change that hands it back.
type visEntry struct {
	m     *Message
	vis   int32
	final bool
}

// heartbeat is the one goroutine that makes every ChangeMessageVisibilityBatch
// call, for every queue. Owning all of them in one loop means an extension
// can never land after (and undo) the change that handed a message back.
// Every hbTick (a quarter of the shortest visibility timeout; see prepare)
// it extends the held messages that have less than half of their queue's
// visibility timeout left, topping partial batches up with those due soon
// after; final changes (RetryAfter, release, keep) go out after
// FlushInterval, or at once when ten are pending or a release is waiting.
// It stops when stop is closed, after flushing the final changes, or when
// ctx is done.
func (c *Consumer) heartbeat(ctx context.Context, stop <-chan struct{}) {
	hb := time.NewTimer(c.hbTick)
	defer hb.Stop()
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	flushArmed := false
	failures := 0
	done := func(ok bool) {
		if ok {
			failures = 0
			return
		}
		// Retry soon: a failed extension leaves little time before the
		// messages reappear.
		failures++
		hb.Reset(backoff(failures, visRetryBase, c.hbTick))
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-stop:
			c.flushFinals(ctx)
			return
		case <-hb.C:
			if c.visRound(ctx, true) {
				failures = 0
				hb.Reset(c.hbTick)
			} else {
				done(false)
			}
		case <-c.visKick:
			c.mu.Lock()
			urgent, pending := c.urgent, len(c.finals) > 0
			c.mu.Unlock()
			switch {
			case urgent:
				done(c.visRound(ctx, true))
			case pending && !flushArmed:
				flush.Reset(c.cfg.FlushInterval)
				flushArmed = true
			}
		case <-flush.C:
			flushArmed = false
			done(c.visRound(ctx, true))
		}
	}
}

// flushFinals sends the pending final changes until none is left or ctx
// is done.
func (c *Consumer) flushFinals(ctx context.Context) {
	for attempt := 1; ; attempt++ {
		c.mu.Lock()
		n := len(c.finals)
		c.mu.Unlock()
		if n == 0 {
			return
		}
		if c.visRound(ctx, false) {
			continue
		}
		if !retry.Sleep(ctx, backoff(attempt, visRetryBase, time.Second)) {
			c.log.Error("shutdown: could not hand messages back; they reappear when their visibility timeout runs out",
				"messages", n)
			return
		}
	}
}

// visRound sends the pending final changes and, with extend, the due
// extensions, in calls of up to ten entries of one queue. It reports false
// if something must be retried soon.
func (c *Consumer) visRound(ctx context.Context, extend bool) bool {
	now := time.Now()
	var capped []*Message
	bySource := make([][]visEntry, len(c.srcs))
	c.mu.Lock()
	for _, m := range c.finals {
		if m.state == stateFinal {
			p := m.src.priority
			bySource[p] = append(bySource[p], visEntry{m: m, vis: m.finalVis, final: true})
		}
	}
	clear(c.finals)
	c.finals = c.finals[:0]
	c.urgent = false
	if extend {
		capped = c.dueLocked(now, bySource)
	}
	c.mu.Unlock()

	for _, m := range capped {
		m.src.log.Warn("message held for SQS's 12 h limit; it cannot be hidden longer and will be delivered again",
			"message_id", m.ID, "key", m.Key())
	}
	var chunks [][]visEntry
	for _, entries := range bySource {
		for i := 0; i < len(entries); i += sqsBatchMax {
			chunks = append(chunks, entries[i:min(i+sqsBatchMax, len(entries))])
		}
	}
	if len(chunks) == 1 {
		return c.changeVisibility(ctx, chunks[0])
	}
	// A large hold needs several calls; a few run at once so that the
	// round ends well inside the margin even when SQS is slow. The round
	// still ends before the next begins, so an extension never overtakes
	// a final change of the same message.
	var ok atomic.Bool
	ok.Store(true)
	var calls sync.WaitGroup
	sem := make(chan struct{}, maxVisibilityCalls)
	for _, chunk := range chunks {
		sem <- struct{}{}
		calls.Go(func() {
			defer func() { <-sem }()
			if !c.changeVisibility(ctx, chunk) {
				ok.Store(false)
			}
		})
	}
	calls.Wait()
	return ok.Load()
}

// dueLocked appends to each queue's entries the extensions due now, then
// tops that queue's last batch up with its messages due next, so extensions
// travel in full batches. A message is due when less than half of its own
// queue's visibility timeout is left; it is extended by that timeout. It
// returns the messages that reached the 12 h limit.
func (c *Consumer) dueLocked(now time.Time, bySource [][]visEntry) []*Message {
	cands := make([][]*Message, len(c.srcs))
	var capped []*Message
	for m := range c.held {
		switch m.state {
		case stateWaiting, stateRunning, stateDeadLettering, stateDeleting:
		default:
			continue
		}
		if !m.lost && !m.capped && m.visibleUntil.Sub(now) <= m.src.extendAhead+c.hbTick {
			cands[m.src.priority] = append(cands[m.src.priority], m)
		}
	}
	for p, ms := range cands {
		s := c.srcs[p]
		slices.SortFunc(ms, func(a, b *Message) int { return a.visibleUntil.Compare(b.visibleUntil) })
		for _, m := range ms {
			due := m.visibleUntil.Sub(now) <= s.extendAhead
			if !due && len(bySource[p])%sqsBatchMax == 0 {
				break
			}
			vis := visibilitySeconds(s.vt, m.expiresAt.Sub(now))
			if vis <= 0 {
				m.capped = true
				capped = append(capped, m)
				continue
			}
			bySource[p] = append(bySource[p], visEntry{m: m, vis: vis})
		}
	}
	return capped
}

// entryFailure is a refused batch entry, logged after the lock is released.
type entryFailure struct {
	m     *Message
	code  string
	msg   string
	final bool
	retry bool
	why   string
}

// changeVisibility makes one ChangeMessageVisibilityBatch call of up to ten
// entries, all of one queue, and records its results. It reports false if
// some final change must be retried.
func (c *Consumer) changeVisibility(ctx context.Context, chunk []visEntry) bool {
	s := chunk[0].m.src
	in := &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: &s.url,
		Entries:  make([]types.ChangeMessageVisibilityBatchRequestEntry, len(chunk)),
	}
	for i, e := range chunk {
		in.Entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{
			Id:                &c.batchIDs[i],
			ReceiptHandle:     &e.m.ReceiptHandle,
			VisibilityTimeout: e.vis,
		}
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	start := time.Now()
	out, err := c.client.ChangeMessageVisibilityBatch(cctx, in)
	cancel()
	c.obs.SQSCall(OpChangeMessageVisibilityBatch, errorCode(err), time.Since(start))
	if err != nil {
		s.visStreak.fail(s.log, err)
		c.mu.Lock()
		for _, e := range chunk {
			if e.final && e.m.state == stateFinal {
				c.finals = append(c.finals, e.m)
			}
		}
		c.mu.Unlock()
		return false
	}
	s.visStreak.ok(s.log)

	succeeded, failed := batchResults(len(chunk), out.Successful,
		func(e types.ChangeMessageVisibilityBatchResultEntry) *string { return e.Id }, out.Failed)

	extended, released, retry := 0, 0, false
	var refused []entryFailure
	var transient []string // codes of entries to try again
	c.mu.Lock()
	for i, e := range chunk {
		m := e.m
		switch {
		case succeeded[i] && e.final:
			if m.state == stateFinal {
				c.finishLocked(m)
				released++
			}
		case succeeded[i]:
			if m.state != stateDone && m.state != stateAbandoned && m.state != stateFinal {
				m.visibleUntil = start.Add(time.Duration(e.vis) * time.Second)
			}
			extended++
		case failed[i] != nil && failed[i].SenderFault:
			// The receipt handle is no longer valid: the message was
			// deleted, or its visibility ran out and it went to another
			// consumer. Retrying cannot help.
			refused = append(refused, entryFailure{m: m, code: deref(failed[i].Code), msg: deref(failed[i].Message), final: e.final, why: m.final.String()})
			if e.final {
				c.finishLocked(m)
				released++ // no longer held: room for a poller
			} else {
				m.lost = true
			}
		default:
			if failed[i] != nil {
				transient = append(transient, deref(failed[i].Code))
			}
			// Transient: a final change goes back in the queue, an
			// extension is still due; either way, try again soon.
			if e.final && m.state == stateFinal {
				c.finals = append(c.finals, m)
			}
			retry = true
		}
	}
	if released > 0 {
		c.roomChangedLocked(s)
	}
	c.mu.Unlock()

	if extended > 0 {
		c.obs.VisibilityExtended(extended)
	}
	for _, code := range transient {
		c.obs.BatchEntryFailed(OpChangeMessageVisibilityBatch, code)
	}
	for _, f := range refused {
		c.obs.BatchEntryFailed(OpChangeMessageVisibilityBatch, f.code)
		if f.final {
			s.log.Warn("SQS refused to hand a message back; it reappears when its visibility timeout runs out",
				"message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg, "why", f.why)
			continue
		}
		s.log.Warn("SQS refused to extend a held message's visibility; it may be delivered again",
			"message_id", f.m.ID, "key", f.m.Key(), "code", f.code, "err", f.msg)
	}
	return !retry
}

// batchResults maps the answer of a batch call back to its n entries, whose
// Ids are their indexes: which succeeded, and how the others failed (nil:
// not mentioned, to be tried again).
func batchResults[S any](n int, successful []S, id func(S) *string, failed []types.BatchResultErrorEntry) (
	ok [sqsBatchMax]bool, fail [sqsBatchMax]*types.BatchResultErrorEntry,
) {
	for _, s := range successful {
		if i, valid := entryIndex(id(s), n); valid {
			ok[i] = true
		}
	}
	for j := range failed {
		if i, valid := entryIndex(failed[j].Id, n); valid {
			fail[i] = &failed[j]
		}
	}
	return ok, fail
}

// entryIndex turns a batch result entry's Id back into an index.
func entryIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(deref(id))
	return i, err == nil && i >= 0 && i < n
}

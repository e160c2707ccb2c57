package queue

import (
	"context"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// Backoffs of the receive loop.
const (
	recvBackoffBase  = 100 * time.Millisecond
	recvBackoffMax   = 10 * time.Second
	emptyBackoffBase = 50 * time.Millisecond
	emptyBackoffMax  = time.Second
	// receiveSlack is added to the long-poll wait to time out a receive
	// whose connection hangs.
	receiveSlack = 10 * time.Second
)

// poll is one receive loop of s. It stops when ctx is done; recvCtx,
// cancelled a little later during shutdown, bounds the receive call itself
// so that a response already on its way is not thrown away.
func (c *Consumer) poll(ctx, recvCtx context.Context, s *source) {
	failures, empties := 0, 0
	var attempt receiveAttempt
	for ctx.Err() == nil {
		n, ok := c.reserve(ctx, s)
		if !ok {
			return
		}
		if c.cfg.Gate != nil {
			if err := c.cfg.Gate.Wait(ctx); err != nil {
				c.unreserve(s, n)
				if ctx.Err() != nil {
					return
				}
				failures++
				s.gateStreak.fail(s.log, err)
				if !retry.Sleep(ctx, backoff(failures, recvBackoffBase, recvBackoffMax)) {
					return
				}
				continue
			}
			s.gateStreak.ok(s.log)
		}
		id := ""
		if s.fifo {
			id = attempt.next(time.Now())
		}
		msgs, err := c.receive(recvCtx, s, n, id)
		attempt.done(err)
		c.deliver(s, msgs, n)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return // cancelled by the shutdown, not a failure
			}
			failures++
			s.recvStreak.fail(s.log, err)
			s.health.fail(err)
			if !retry.Sleep(ctx, backoff(failures, recvBackoffBase, recvBackoffMax)) {
				return
			}
		case len(msgs) == 0:
			failures = 0
			s.recvStreak.ok(s.log)
			s.health.ok()
			c.obs.ReceiveEmpty()
			// A long poll already waited; the extra pause only matters
			// when SQS answers empty at once (a queue being purged, an
			// emulator) and keeps such a loop from spinning.
			empties++
			if !retry.Sleep(ctx, backoff(empties, emptyBackoffBase, emptyBackoffMax)) {
				return
			}
		default:
			failures, empties = 0, 0
			s.recvStreak.ok(s.log)
			s.health.ok()
		}
	}
}

// attemptIDLife is how long a poller reuses a ReceiveRequestAttemptId.
// SQS honours one for five minutes after the first receive made with it;
// the margin covers the receive's own wait.
const attemptIDLife = 4 * time.Minute

// receiveAttempt is the ReceiveRequestAttemptId of a poller's receives on a
// FIFO queue. A receive whose answer never arrived (cut short, connection
// lost, timed out) is made again with the same id, so SQS hands out the
// same messages again instead of hiding them, and blocking their groups,
// for a whole visibility timeout. Any answer, an error one included, ends
// the attempt: SQS refuses an id whose receive it answered with an error
// (throttled, say), and the next receive is a new one. The SDK's own
// retries resend the request as it was, id included.
type receiveAttempt struct {
	id    string
	since time.Time // when id was made
}

// next returns the id of a receive made at now: the last one's while it
// is still open and young enough, else a new one.
func (a *receiveAttempt) next(now time.Time) string {
	if a.id == "" || now.Sub(a.since) >= attemptIDLife {
		a.id, a.since = strconv.FormatUint(rand.Uint64(), 36), now
	}
	return a.id
}

// done ends the attempt unless err says its answer was lost.
func (a *receiveAttempt) done(err error) {
	switch errorCode(err) {
	case CodeTransport, CodeTimeout:
	default:
		a.id = ""
	}
}

// reserve waits until a full receive from s fits under MaxHeld (counted per
// queue) and promises that room to the caller. It returns false once
// shutdown has begun.
func (c *Consumer) reserve(ctx context.Context, s *source) (int, bool) {
	for {
		c.mu.Lock()
		if c.stopping {
			c.mu.Unlock()
			return 0, false
		}
		if c.cfg.MaxHeld-s.held-s.reserved >= c.recvBatch {
			s.reserved += c.recvBatch
			c.mu.Unlock()
			return c.recvBatch, true
		}
		if s.room == nil {
			s.room = make(chan struct{})
		}
		room := s.room
		c.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			return 0, false
		}
	}
}

func (c *Consumer) unreserve(s *source, n int) {
	c.mu.Lock()
	s.reserved -= n
	c.roomChangedLocked(s)
	c.mu.Unlock()
}

// receive makes one ReceiveMessage call to s for up to n messages, with
// attempt as its ReceiveRequestAttemptId unless it is "".
func (c *Consumer) receive(ctx context.Context, s *source, n int, attempt string) ([]*Message, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.WaitTime+receiveSlack)
	defer cancel()
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            &s.url,
		MaxNumberOfMessages: int32(n),
		WaitTimeSeconds:     int32(c.cfg.WaitTime / time.Second),
		// Asked for explicitly so the heartbeat's idea of when a
		// message reappears is exact, whatever the queue's default.
		VisibilityTimeout: int32(s.vt / time.Second),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{
			types.MessageSystemAttributeNameApproximateReceiveCount,
			types.MessageSystemAttributeNameSentTimestamp,
			types.MessageSystemAttributeNameMessageGroupId,
		},
		MessageAttributeNames: []string{"All"},
	}
	if attempt != "" {
		in.ReceiveRequestAttemptId = &attempt
	}
	start := time.Now()
	out, err := c.client.ReceiveMessage(ctx, in)
	c.obs.SQSCall(OpReceiveMessage, errorCode(err), time.Since(start))
	if err != nil {
		return nil, err
	}
	if len(out.Messages) == 0 {
		return nil, nil
	}
	now := time.Now()
	msgs := make([]*Message, 0, len(out.Messages))
	for i := range out.Messages {
		if out.Messages[i].ReceiptHandle == nil {
			continue
		}
		m := newMessage(&out.Messages[i], s, start, now)
		m.key = c.h.Key(m)
		if m.key == "" {
			m.key = m.GroupID
		}
		if m.key == "" {
			m.key = unkeyed + m.ID // a lane of its own
		}
		msgs = append(msgs, m)
	}
	return msgs, nil
}

// deliver puts messages received from s in their lanes and gives back the
// room reserved for them. A lane not running is listed as ready, or moved
// up when a message of a higher priority joins it. During shutdown the
// messages are released at once instead.
func (c *Consumer) deliver(s *source, msgs []*Message, reserved int) {
	release := false
	c.mu.Lock()
	s.reserved -= reserved
	s.held += len(msgs)
	if len(msgs) > 0 {
		c.lastBusy = time.Now()
		s.lastReceive = c.lastBusy
	}
	for _, m := range msgs {
		c.held[m] = struct{}{}
		if c.stopping {
			c.setFinalLocked(m, 0, finalRelease)
			release = true
			continue
		}
		m.state = stateWaiting
		l := c.laneLocked(m.key)
		l.push(m)
		switch {
		case l.running: // the worker lists it again when its turn ends
		case l.queued:
			c.ready.raise(l, m.src.priority)
		default:
			c.ready.push(l, m.src.priority)
		}
	}
	c.roomChangedLocked(s)
	c.mu.Unlock()
	if len(msgs) > 0 {
		c.obs.Received(len(msgs))
	}
	if release {
		c.obs.Released(len(msgs))
		c.kickVisibility()
	}
}

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
	// On a FIFO queue a receive that failed on the way back is retried
	// with the same attempt id, so SQS hands out the same messages again
	// instead of hiding them (and blocking their groups) for a whole
	// visibility timeout.
	attempt := ""
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
		if s.fifo && attempt == "" {
			attempt = strconv.FormatUint(rand.Uint64(), 36)
		}
		msgs, err := c.receive(recvCtx, s, n, attempt)
		c.deliver(s, msgs, n)
		if err == nil {
			attempt = ""
		}
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

// receive makes one ReceiveMessage call to s for up to n messages.
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

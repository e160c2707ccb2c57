package queue

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// This file is ExitWhenIdle: when a batch run's queue counts as drained.

// waitForStop blocks until ctx is done or, with ExitWhenIdle, until the
// queue is drained; it reports whether it was idleness.
//
// Drained means: nothing received and nothing held for ExitWhenIdle, and
// SQS counts no message on the queue, visible, in flight or delayed. A
// ReceiveMessage whose response is lost on the way (and which the SDK
// retries) leaves its messages in flight with no one holding them; they
// reappear after the visibility timeout, and a batch run that stopped at
// the first quiet moment would leave them for the next run. So while SQS
// still counts messages, the Consumer keeps polling, for at most one
// visibility timeout plus one long poll beyond ExitWhenIdle: enough for
// such messages to reappear and be received, and a bound when the count
// is messages another worker holds or a long delay this one set.
func (c *Consumer) waitForStop(ctx context.Context) bool {
	if c.cfg.ExitWhenIdle <= 0 {
		<-ctx.Done()
		return false
	}
	check := min(max(c.cfg.ExitWhenIdle/4, 10*time.Millisecond), time.Second)
	limit := c.cfg.ExitWhenIdle + c.vt + c.cfg.WaitTime
	t := time.NewTimer(check)
	defer t.Stop()
	var nextAsk time.Time
	reported := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		c.mu.Lock()
		var quiet time.Duration
		if len(c.held) == 0 {
			quiet = time.Since(c.lastBusy)
		}
		c.mu.Unlock()
		if quiet < c.cfg.ExitWhenIdle {
			nextAsk, reported = time.Time{}, false
		} else if quiet >= limit || time.Now().After(nextAsk) {
			left, err := c.leftOnQueue(ctx)
			switch {
			case err == nil && left == 0:
				return true
			case quiet >= limit:
				c.log.Warn("queue idle here, but SQS still counts messages; leaving them for the next run",
					"messages", left, "idle_for", quiet.Round(time.Second), "err", err)
				return true
			case !reported:
				reported = true
				c.log.Info("queue idle here, but SQS still counts messages in flight or delayed; waiting for them",
					"messages", left, "up_to", (limit - quiet).Round(time.Second), "err", err)
			}
			// The counts are approximate and lag; asking once a second
			// is plenty.
			nextAsk = time.Now().Add(time.Second)
		}
		t.Reset(check)
	}
}

// leftOnQueue is SQS's count of the queue's messages: visible, in flight
// and delayed.
func (c *Consumer) leftOnQueue(ctx context.Context) (int, error) {
	attrs, err := c.queueAttributes(ctx,
		types.QueueAttributeNameApproximateNumberOfMessages,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, v := range attrs {
		k, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("queue %s: attribute value %q is not a count", c.cfg.QueueURL, v)
		}
		n += k
	}
	return n, nil
}

package queue

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// This file is what the Consumer knows of each queue's backlog: SQS's
// counts of the queue and of its dead-letter queue, asked every
// SampleInterval, and the oldest message the Consumer holds.
//
// SQS does not tell a consumer how old the oldest message on a queue is
// (that is CloudWatch's ApproximateAgeOfOldestMessage, not a queue
// attribute), and peeking at messages would count as receiving them. What
// the Consumer knows for sure is the SentTimestamp of every message it
// holds, and when a receive last brought it messages: while it holds a
// message the age of the oldest keeps growing, whether or not any job
// ends, and while messages wait on SQS and no receive brings any, the time
// since the last one grows.

// Depth is what is known of one queue's backlog (Consumer.Depths).
type Depth struct {
	// Queue is the queue's name, as Message.Queue gives it.
	Queue string
	// Sample is SQS's count of the queue's messages.
	Sample DepthSample
	// DLQ is the name of the queue's dead-letter queue, "" when it has
	// none; DLQSample is SQS's count of its messages (Visible, InFlight
	// and Delayed: all of them are dead letters, some hidden by a person
	// browsing them with "worker dlq").
	DLQ       string
	DLQSample DepthSample
	// OldestHeld is the SentTimestamp of the oldest message of the queue
	// the Consumer holds (received and not yet deleted or handed back);
	// zero when it holds none.
	OldestHeld time.Time
	// LastReceive is when a receive from the queue last returned
	// messages, or when Run started if none has; zero before Run.
	LastReceive time.Time
}

// DepthSample is one queue's counts as SQS last gave them.
type DepthSample struct {
	// At is when SQS last answered; zero if it never has.
	At time.Time
	// Failing says the latest ask failed: the counts are those of At,
	// older than the interval, and should not be shown as current.
	Failing bool
	// ApproximateNumberOfMessages, ...NotVisible and ...Delayed.
	Visible, InFlight, Delayed int
}

// depthState is one queue's (or dead-letter queue's) latest sample.
type depthState struct {
	mu     sync.Mutex
	name   string // the dead-letter queue's, once Run found it
	sample DepthSample
}

func (d *depthState) get() (string, DepthSample) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.name, d.sample
}

func (d *depthState) setName(name string) {
	d.mu.Lock()
	d.name = name
	d.mu.Unlock()
}

// record keeps a sample's answer, or marks the last one stale; it reports
// whether the sample failed for the first time after an answer, or
// answered for the first time after a failure, for the log.
func (d *depthState) record(counts DepthSample, err error, at time.Time) (changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	was := d.sample.Failing
	if err != nil {
		d.sample.Failing = true
		return !was
	}
	counts.At = at
	d.sample = counts
	return was
}

// depthAttributes are the counts a sample asks for.
var depthAttributes = []types.QueueAttributeName{
	types.QueueAttributeNameApproximateNumberOfMessages,
	types.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
	types.QueueAttributeNameApproximateNumberOfMessagesDelayed,
}

// Depths returns what is known of every queue's backlog, in priority
// order: the latest sample of each queue and of its dead-letter queue, the
// oldest message held and the last receive. It makes no SQS call and is
// safe for concurrent use, for gauges read at scrape time.
func (c *Consumer) Depths() []Depth {
	out := make([]Depth, len(c.srcs))
	for i, s := range c.srcs {
		_, sample := s.depth.get()
		dlq, dlqSample := s.dlqDepth.get()
		out[i] = Depth{Queue: s.name, Sample: sample, DLQ: dlq, DLQSample: dlqSample}
	}
	c.mu.Lock()
	for m := range c.held {
		d := &out[m.src.priority]
		if !m.SentAt.IsZero() && (d.OldestHeld.IsZero() || m.SentAt.Before(d.OldestHeld)) {
			d.OldestHeld = m.SentAt
		}
	}
	for i, s := range c.srcs {
		out[i].LastReceive = s.lastReceive
	}
	c.mu.Unlock()
	return out
}

// sampleDepths asks SQS for the counts of every queue and of its
// dead-letter queue, at once and then every SampleInterval, until ctx is
// done: one GetQueueAttributes call per queue and per dead-letter queue
// and interval. The queue's call counts for its health, as any call to it
// does; the dead-letter queue's does not.
func (c *Consumer) sampleDepths(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, s := range c.srcs {
			attrs, err := c.queueAttributes(ctx, s, depthAttributes...)
			if ctx.Err() != nil {
				return
			}
			c.noteSample(s, "queue depth", &s.depth, s.url, attrs, err)
			if s.dlqURL == "" {
				continue
			}
			attrs, err = c.attributes(ctx, s.dlqURL, depthAttributes...)
			if ctx.Err() != nil {
				return
			}
			c.noteSample(s, "dead-letter queue depth", &s.dlqDepth, s.dlqURL, attrs, err)
		}
		t.Reset(c.cfg.SampleInterval)
	}
}

// countsOf reads the counts in the attributes of the queue at url.
func countsOf(url string, attrs map[string]string) (DepthSample, error) {
	var counts DepthSample
	for name, into := range map[types.QueueAttributeName]*int{
		types.QueueAttributeNameApproximateNumberOfMessages:           &counts.Visible,
		types.QueueAttributeNameApproximateNumberOfMessagesNotVisible: &counts.InFlight,
		types.QueueAttributeNameApproximateNumberOfMessagesDelayed:    &counts.Delayed,
	} {
		v, ok := attrs[string(name)]
		if !ok {
			return DepthSample{}, fmt.Errorf("queue %s: no %s in the answer", url, name)
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return DepthSample{}, fmt.Errorf("queue %s: %s is %q, not a count", url, name, v)
		}
		*into = n
	}
	return counts, nil
}

// noteSample records a sample of s (its queue's or its dead-letter
// queue's, what, at url): the attributes SQS answered, or the call's error.
// It logs when samples start failing and when they answer again, once
// each.
func (c *Consumer) noteSample(s *source, what string, d *depthState, url string, attrs map[string]string, err error) {
	var counts DepthSample
	if err == nil {
		counts, err = countsOf(url, attrs)
	}
	if !d.record(counts, err, time.Now()) {
		return
	}
	if err != nil {
		s.log.Warn(what+" unknown: sample failed; its metrics are withheld until SQS answers", "err", err)
		return
	}
	s.log.Info(what+" known again", "visible", counts.Visible, "in_flight", counts.InFlight, "delayed", counts.Delayed)
}

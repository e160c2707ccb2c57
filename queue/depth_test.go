package queue

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// TestConsumerDepthsInAStall is the stall an outage makes: the worker
// holds a few messages it cannot finish and takes no more (its gate is
// shut, as by an open circuit), while jobs pile up on SQS. Depths shows
// the pile (SQS's counts, asked every SampleInterval with one call per
// queue and per dead-letter queue), the dead letters already waiting, the
// age of the oldest message held growing though no job ends, and how long
// ago a receive last brought anything. A sample that fails is marked
// failing, keeping the time of the last answer, and logged once.
func TestConsumerDepthsInAStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		jobs, dlq := newNamedFakeSQS("pcsync-bulk", 30*time.Second), newNamedFakeSQS("pcsync-bulk-dlq", 30*time.Second)
		client := &outage{SQS: newFakeQueues(jobs, dlq), down: map[string]bool{}}
		dlq.send("dead 1", "dead 2")
		g := newGate()
		release := make(chan struct{})
		log, logs := newLogger(t)
		c, err := NewConsumer(client, Config{
			QueueURL: jobs.url, DLQURL: dlq.url, Workers: 2, WaitTime: time.Second, Gate: g, Logger: log,
			SampleInterval: 30 * time.Second,
		}, handlerFuncs{handle: func(ctx context.Context, batch []*Message) []Outcome {
			select {
			case <-release:
				return ackAll(batch)
			case <-ctx.Done():
				return []Outcome{Abandon()}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Depths(); len(got) != 1 || got[0].Queue != "pcsync-bulk" || !got[0].Sample.At.IsZero() || !got[0].LastReceive.IsZero() {
			t.Fatalf("before Run: got %+v, want the queue, nothing sampled", got)
		}

		sent := time.Now()
		jobs.send("a:1", "b:1", "c:1")
		r := startConsumer(t, c)
		settleUntil(t, 5*time.Second, "three messages held", func() bool { return c.Held() == 3 })
		received := time.Now()
		d := c.Depths()[0]
		if d.DLQ != "pcsync-bulk-dlq" || d.DLQSample.Visible != 2 || d.DLQSample.At.IsZero() {
			t.Errorf("dead-letter queue at start: got %q %+v, want pcsync-bulk-dlq with its 2 messages", d.DLQ, d.DLQSample)
		}
		if !d.OldestHeld.Equal(sent) {
			t.Errorf("oldest held: got %v, want %v, when the first message was sent", d.OldestHeld, sent)
		}

		// The stall: nothing more is received, 50 jobs arrive.
		g.set(false)
		settleUntil(t, 5*time.Second, "the pollers waiting at the gate", func() bool { return g.waiting.Load() > 0 })
		for i := range 50 {
			jobs.send(fmt.Sprintf("late%d:1", i))
		}
		asksBefore, dlqAsksBefore := jobs.attributeAsks(), dlq.attributeAsks()
		advance(10 * time.Minute)
		d = c.Depths()[0]
		if d.Sample.Visible != 50 || d.Sample.InFlight != 3 || d.Sample.Failing {
			t.Errorf("queue after 10 minutes of stall: got %+v, want 50 visible, 3 in flight", d.Sample)
		}
		if age := time.Since(d.Sample.At); age > 30*time.Second {
			t.Errorf("queue sample: %v old, want at most the 30 s interval", age)
		}
		if !d.OldestHeld.Equal(sent) || time.Since(d.OldestHeld) < 10*time.Minute {
			t.Errorf("oldest held message: sent at %v, %v ago; want the first one, sent at %v, more than 10 minutes ago",
				d.OldestHeld, time.Since(d.OldestHeld), sent)
		}
		if !d.LastReceive.Equal(received) {
			t.Errorf("last receive: %v ago, want %v, the receive before the stall", time.Since(d.LastReceive), time.Since(received))
		}
		if n, m := jobs.attributeAsks()-asksBefore, dlq.attributeAsks()-dlqAsksBefore; n != 20 || m != 20 {
			t.Errorf("GetQueueAttributes in 10 minutes: got %d to the queue and %d to its DLQ, want 20 each (one per 30 s)", n, m)
		}

		// The dead-letter queue cannot be read: its sample is failing,
		// with the time of its last answer; the queue's goes on.
		lastAnswer := c.Depths()[0].DLQSample.At
		client.set(dlq.url, true)
		advance(2 * time.Minute)
		d = c.Depths()[0]
		if !d.DLQSample.Failing || !d.DLQSample.At.Equal(lastAnswer) || d.DLQSample.Visible != 2 {
			t.Errorf("dead-letter queue failing: got %+v, want failing since %v, its last counts", d.DLQSample, lastAnswer)
		}
		if d.Sample.Failing || time.Since(d.Sample.At) > 30*time.Second {
			t.Errorf("queue while its DLQ fails: got %+v, want sampled", d.Sample)
		}
		if n := logs.count("dead-letter queue depth unknown: sample failed; its metrics are withheld until SQS answers"); n != 1 {
			t.Errorf("failing samples logged: got %d, want 1 per streak", n)
		}
		client.set(dlq.url, false)
		advance(30 * time.Second)
		if d = c.Depths()[0]; d.DLQSample.Failing || !d.DLQSample.At.After(lastAnswer) {
			t.Errorf("dead-letter queue answering again: got %+v, want sampled", d.DLQSample)
		}
		if n := logs.count("dead-letter queue depth known again"); n != 1 {
			t.Errorf("recovery logged: got %d, want 1", n)
		}

		// The fault clears: everything is received and done.
		close(release)
		g.set(true)
		settleUntil(t, time.Minute, "every job done and counted", func() bool {
			d := c.Depths()[0]
			return c.Held() == 0 && d.Sample.Visible == 0 && d.Sample.InFlight == 0
		})
		d = c.Depths()[0]
		if !d.OldestHeld.IsZero() {
			t.Errorf("oldest held with nothing held: got %v, want zero", d.OldestHeld)
		}
		if since := time.Since(d.LastReceive); since > time.Minute {
			t.Errorf("last receive: %v ago, want since the stall ended", since)
		}
		if err := r.stop(t); err != nil {
			t.Fatal(err)
		}
	})
}

// testConsumerDepths: SQS's own counts (kumo's) of a queue and of the
// dead-letter queue its RedrivePolicy names: messages visible, held by
// the Consumer, delayed, and dead letters.
func testConsumerDepths(t *testing.T, endpoint string) {
	client := newClient(endpoint, nil)
	dlq := createQueue(t, client, queueName(t, "-dlq"), nil)
	policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"25"}`, queueARN(t, client, dlq))
	url := createQueue(t, client, queueName(t, ""), map[string]string{"RedrivePolicy": policy})
	sendBodies(t, client, dlq, []string{"dead:1", "dead:2"}, nil)
	sent := time.Now().Truncate(time.Millisecond) // SentTimestamp is in milliseconds
	sendBodies(t, client, url, []string{"a:1", "b:1", "c:1"}, nil)
	for _, body := range []string{"later:1", "later:2"} {
		if _, err := client.SendMessage(context.Background(), &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(body), DelaySeconds: 900}); err != nil {
			t.Fatal(err)
		}
	}

	release := make(chan struct{})
	log, _ := newLogger(t)
	c, err := NewConsumer(client, Config{
		QueueURL: url, Workers: 2, WaitTime: time.Second, SampleInterval: time.Second, Logger: log,
	}, handlerFuncs{key: bodyKey, handle: func(ctx context.Context, batch []*Message) []Outcome {
		select {
		case <-release:
			return ackAll(batch)
		case <-ctx.Done():
			return []Outcome{Abandon()}
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	r := startConsumer(t, c)
	var d Depth
	waitFor(t, 20*time.Second, "the held messages counted in flight", func() bool {
		d = c.Depths()[0]
		return c.Held() == 3 && d.Sample.InFlight == 3 && d.DLQSample.At.After(d.LastReceive)
	})
	if d.Queue != QueueName(url) || d.Sample.Visible != 0 || d.Sample.Delayed != 2 || d.Sample.Failing {
		t.Errorf("queue: got %q %+v, want %s: 0 visible, 3 in flight, 2 delayed", d.Queue, d.Sample, QueueName(url))
	}
	if d.DLQ != QueueName(dlq) || d.DLQSample.Visible != 2 || d.DLQSample.Failing {
		t.Errorf("dead-letter queue: got %q %+v, want %s with 2 messages", d.DLQ, d.DLQSample, QueueName(dlq))
	}
	if d.OldestHeld.Before(sent) || d.OldestHeld.After(sent.Add(5*time.Second)) {
		t.Errorf("oldest held: sent at %v, want just after %v", d.OldestHeld, sent)
	}

	close(release)
	waitFor(t, 20*time.Second, "the jobs done and the queue counted again", func() bool {
		d = c.Depths()[0]
		return c.Held() == 0 && d.Sample.InFlight == 0 && d.Sample.Visible == 0
	})
	if d.Sample.Delayed != 2 || !d.OldestHeld.IsZero() {
		t.Errorf("after the jobs: got %+v, oldest held %v; want the 2 delayed left, nothing held", d.Sample, d.OldestHeld)
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

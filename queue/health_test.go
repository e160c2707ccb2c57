package queue

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// outage wraps an SQS client and fails every ReceiveMessage and
// GetQueueAttributes call to the queues marked down, as SQS out of reach
// would: the calls the Consumer's Health listens to.
type outage struct {
	SQS
	mu   sync.Mutex
	down map[string]bool
}

var errOutage = errors.New("dial tcp 10.0.0.1:443: connect: connection refused")

func (o *outage) set(url string, down bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.down[url] = down
}

func (o *outage) isDown(url *string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.down[deref(url)]
}

func (o *outage) ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	if o.isDown(in.QueueUrl) {
		return nil, errOutage
	}
	return o.SQS.ReceiveMessage(ctx, in, opts...)
}

func (o *outage) GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, opts ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error) {
	if o.isDown(in.QueueUrl) {
		return nil, errOutage
	}
	return o.SQS.GetQueueAttributes(ctx, in, opts...)
}

// TestConsumerHealth: Health is nil only while SQS answers for every
// queue. A queue out of reach from the start keeps it failing, naming the
// queue and the error; once found, a queue whose calls fail is reported
// when it has not answered for 2 × (WaitTime + 10 s), not before, and is
// healthy again as soon as it answers.
func TestConsumerHealth(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		realtime, bulk := newNamedFakeSQS("realtime", 30*time.Second), newNamedFakeSQS("bulk", 30*time.Second)
		client := &outage{SQS: newFakeQueues(realtime, bulk), down: map[string]bool{bulk.url: true}}
		log, _ := newLogger(t)
		const wait = time.Second
		bound := 2 * (wait + receiveSlack) // 22 s
		c, err := NewConsumer(client, Config{
			Queues: []Source{{URL: realtime.url}, {URL: bulk.url}}, Workers: 2, WaitTime: wait, Logger: log,
		}, handlerFuncs{handle: func(_ context.Context, batch []*Message) []Outcome { return ackAll(batch) }})
		if err != nil {
			t.Fatal(err)
		}
		healthIs := func(want *regexp.Regexp) func() bool {
			return func() bool {
				err := c.Health()
				if want == nil {
					return err == nil
				}
				return err != nil && want.MatchString(err.Error())
			}
		}
		if err := c.Health(); err == nil || err.Error() != "sqs: queue realtime: not started\nsqs: queue bulk: not started" {
			t.Errorf("before Run: got %v, want both queues not started", err)
		}

		// bulk cannot be reached: Run does not get past finding it, and
		// Health says so from the first failure on.
		start := time.Now()
		startConsumer(t, c)
		settleUntil(t, time.Minute, "bulk reported", healthIs(regexp.MustCompile(
			`^sqs: queue bulk: no answer for \d+s: read attributes of queue \S+/bulk: `+regexp.QuoteMeta(errOutage.Error())+`$`)))
		if took := time.Since(start); took > time.Second {
			t.Errorf("unreachable queue reported after %v, want at its first failure", took)
		}

		// SQS answers again: healthy once discovery retries (backoff
		// under 10 s).
		client.set(bulk.url, false)
		settleUntil(t, 15*time.Second, "healthy", healthIs(nil))

		// bulk's receives fail: a short outage is not reported; one
		// longer than the bound is, with how long and why.
		client.set(bulk.url, true)
		down := time.Now()
		if settle(bound-wait-time.Second, func() bool { return c.Health() != nil }) {
			t.Errorf("reported after %v of failing receives: %v; want nothing before %v", time.Since(down), c.Health(), bound)
		}
		settleUntil(t, bound+time.Minute, "the outage reported", healthIs(regexp.MustCompile(
			`^sqs: queue bulk: no answer for \d+s: `+regexp.QuoteMeta(errOutage.Error())+`$`)))
		if took := time.Since(down); took < bound || took > bound+wait+time.Second {
			t.Errorf("outage reported after %v of failing receives, want just after %v", took, bound)
		}

		// It answers again: healthy at its next receive.
		client.set(bulk.url, false)
		back := time.Now()
		settleUntil(t, time.Minute, "healthy again", healthIs(nil))
		if took := time.Since(back); took > recvBackoffMax+wait {
			t.Errorf("healthy again %v after SQS answered, want within the receive backoff (%v)", took, recvBackoffMax)
		}
	})
}

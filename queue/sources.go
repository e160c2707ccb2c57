package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// This file is what the Consumer keeps per queue, and how Run learns about
// each queue when it starts.

// A source is one queue of the Consumer (Config.Queues[priority]) and
// everything that is per queue: where to call, what Run discovered about the
// queue, its share of the prefetch, and the failure streaks of its calls,
// logged with the queue's name. Workers, lanes, the heartbeat loop and the
// deleter are shared by all sources; every SQS call they make carries the
// messages of one source only.
type source struct {
	priority int    // index in Config.Queues: 0 is the highest
	url      string // the queue's URL
	name     string // the last segment of url: Message.Queue, the "queue" log attribute
	fifo     bool
	log      *slog.Logger // the Consumer's logger with the queue's name

	// Set by Run before any goroutine starts, read-only afterwards.
	vt          time.Duration // visibility timeout asked for on receive and renewed
	extendAhead time.Duration // extend a message when this little visibility is left
	dlqURL      string        // "": no dead-letter queue
	dlq         *Producer     // nil: no dead-letter queue

	recvStreak, gateStreak, visStreak, delStreak streak
	health                                       health
	depth, dlqDepth                              depthState // see depth.go

	// Guarded by Consumer.mu.
	held        int           // messages of this queue in Consumer.held
	reserved    int           // room promised to receives in flight
	room        chan struct{} // closed when room for a full receive frees up
	lastReceive time.Time     // when a receive last brought messages, or Run's start
}

// newSources makes the sources of the resolved queues, in priority order.
func newSources(queues []Source, log *slog.Logger) []*source {
	srcs := make([]*source, len(queues))
	for i, q := range queues {
		s := &source{
			priority: i,
			url:      q.URL,
			name:     QueueName(q.URL),
			fifo:     isFIFOURL(q.URL),
			dlqURL:   q.DLQURL,
		}
		s.log = log.With("queue", s.name)
		s.recvStreak.what = OpReceiveMessage
		s.gateStreak.what = "gate"
		s.visStreak.what = OpChangeMessageVisibilityBatch
		s.delStreak.what = OpDeleteMessageBatch
		srcs[i] = s
	}
	return srcs
}

// health is what the Consumer last heard from one queue, for
// Consumer.Health: whether Run has found the queue, when the queue last
// answered a call, and whether the latest call failed, and why. The calls
// are those that show SQS answering for this queue: ReceiveMessage and
// GetQueueAttributes (discovery, the idle check).
type health struct {
	mu         sync.Mutex
	started    time.Time // when Run began; zero before
	discovered bool
	lastOK     time.Time
	failing    bool  // the latest call failed
	lastErr    error // its error
}

func (h *health) start(now time.Time) {
	h.mu.Lock()
	h.started = now
	h.mu.Unlock()
}

func (h *health) found() {
	h.mu.Lock()
	h.discovered = true
	h.mu.Unlock()
}

func (h *health) ok() {
	now := time.Now()
	h.mu.Lock()
	h.lastOK, h.failing, h.lastErr = now, false, nil
	h.mu.Unlock()
}

func (h *health) fail(err error) {
	h.mu.Lock()
	h.failing, h.lastErr = true, err
	h.mu.Unlock()
}

// check says what is wrong with the queue, or nil: see Consumer.Health.
func (h *health) check(name string, bound time.Duration) error {
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case h.started.IsZero():
		return fmt.Errorf("sqs: queue %s: not started", name)
	case !h.failing && !h.discovered:
		return fmt.Errorf("sqs: queue %s: waiting for its first answer", name)
	case !h.failing:
		return nil
	}
	// With no answer yet, the silence counts from Run's start.
	since := h.lastOK
	if since.IsZero() {
		since = h.started
	}
	silent := now.Sub(since)
	if h.discovered && silent <= bound {
		return nil // a short failure streak; SQS answered recently
	}
	return fmt.Errorf("sqs: queue %s: no answer for %v: %w", name, silent.Round(time.Second), h.lastErr)
}

// QueueName is a queue's name, as Message.Queue gives it and the metrics
// label it: the last path segment of its URL, as in
// https://sqs.us-east-1.amazonaws.com/123456789012/pcsync-realtime.
func QueueName(queueURL string) string {
	if u, err := url.Parse(queueURL); err == nil {
		if name := path.Base(u.Path); name != "/" && name != "." {
			return name
		}
		if u.Host != "" {
			return u.Host
		}
	}
	return queueURL
}

// roomChangedLocked wakes the pollers of s when a full receive now fits.
func (c *Consumer) roomChangedLocked(s *source) {
	if s.room != nil && c.cfg.MaxHeld-s.held-s.reserved >= c.recvBatch {
		close(s.room)
		s.room = nil
	}
}

// prepare reads what Run needs from each queue: its visibility timeout
// (unless configured) and its dead-letter queue (unless configured).
// Transient errors are retried; permanent ones end Run.
//
// The heartbeat is one loop for all queues: it ticks at a quarter of the
// shortest visibility timeout, and extends each message when half of its
// own queue's timeout is gone. Every message is then checked at least four
// times per visibility timeout of its queue and extended with at least a
// quarter of it to spare for the call itself; a queue with a longer timeout
// is only looked at more often than it needs, which costs a walk over the
// held messages, no SQS call.
func (c *Consumer) prepare(ctx context.Context) error {
	consumed := make(map[string]*source, len(c.srcs))
	for _, s := range c.srcs {
		consumed[s.url] = s
	}
	c.hbTick = 0
	for _, s := range c.srcs {
		if err := c.discoverWithRetry(ctx, s); err != nil {
			return err
		}
		if other, ok := consumed[s.dlqURL]; ok {
			return fmt.Errorf("%w: the dead-letter queue of %s (from its RedrivePolicy) is %s, which is consumed too; a dead-letter queue must not be",
				ErrInvalidConfig, s.url, other.url)
		}
		s.extendAhead = s.vt / 2
		if c.hbTick == 0 || s.vt/4 < c.hbTick {
			c.hbTick = s.vt / 4
		}
		if s.dlqURL != "" {
			s.dlq = NewProducer(c.client, s.dlqURL, ProducerConfig{Observer: c.obs, Logger: s.log, MaxAttempts: 3})
			s.dlqDepth.setName(QueueName(s.dlqURL))
		}
	}
	return nil
}

// discoverWithRetry discovers s, retrying transient errors with backoff.
func (c *Consumer) discoverWithRetry(ctx context.Context, s *source) error {
	failures := streak{what: "queue discovery"}
	for attempt := 1; ; attempt++ {
		err := c.discover(ctx, s)
		if err == nil {
			failures.ok(s.log)
			s.health.found()
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
		s.health.fail(err)
		if isPermanent(err) {
			return err
		}
		failures.fail(s.log, err)
		if !retry.Sleep(ctx, backoff(attempt, recvBackoffBase, recvBackoffMax)) {
			return ctx.Err()
		}
	}
}

// discover reads the attributes of s's queue: the visibility timeout unless
// it is configured, and the dead-letter queue unless it is configured.
func (c *Consumer) discover(ctx context.Context, s *source) error {
	attrs, err := c.queueAttributes(ctx, s, types.QueueAttributeNameVisibilityTimeout, types.QueueAttributeNameRedrivePolicy)
	if err != nil {
		return err
	}

	s.vt = c.cfg.VisibilityTimeout
	if s.vt == 0 {
		v := attrs[string(types.QueueAttributeNameVisibilityTimeout)]
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 1 {
			return fmt.Errorf("%w: VisibilityTimeout is not set and the VisibilityTimeout attribute of queue %s is %q; set it between 1s and 12h",
				ErrInvalidConfig, s.url, v)
		}
		s.vt = time.Duration(secs) * time.Second
	}

	if s.dlqURL != "" {
		return nil // configured
	}
	policy := attrs[string(types.QueueAttributeNameRedrivePolicy)]
	if policy == "" {
		s.log.Warn("queue has no dead-letter queue; DeadLetter outcomes keep their messages on the queue",
			"keep_delay", c.cfg.KeepDelay)
		return nil
	}
	arn, err := deadLetterTarget(policy)
	if err != nil {
		return fmt.Errorf("%w: RedrivePolicy of queue %s: %w", ErrInvalidConfig, s.url, err)
	}
	dlqURL, err := c.queueURLFromARN(ctx, arn)
	if err != nil {
		return fmt.Errorf("dead-letter queue %s from the RedrivePolicy of %s: %w", arn, s.url, err)
	}
	s.dlqURL = dlqURL
	return nil
}

// queueAttributes reads attributes of s's queue.
// The answer, or the failure unless ctx ended it, goes to s's health.
func (c *Consumer) queueAttributes(ctx context.Context, s *source, names ...types.QueueAttributeName) (map[string]string, error) {
	attrs, err := c.attributes(ctx, s.url, names...)
	if err != nil {
		if ctx.Err() == nil {
			s.health.fail(err)
		}
		return nil, err
	}
	s.health.ok()
	return attrs, nil
}

// attributes reads attributes of the queue at url.
func (c *Consumer) attributes(ctx context.Context, url string, names ...types.QueueAttributeName) (map[string]string, error) {
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	out, err := c.client.GetQueueAttributes(callCtx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: names})
	c.obs.SQSCall(OpGetQueueAttributes, errorCode(err), time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("read attributes of queue %s: %w", url, err)
	}
	return out.Attributes, nil
}

// deadLetterTarget returns the deadLetterTargetArn of a RedrivePolicy.
func deadLetterTarget(policy string) (string, error) {
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
	}
	if err := json.Unmarshal([]byte(policy), &p); err != nil {
		return "", fmt.Errorf("parse %q: %w", policy, err)
	}
	if p.DeadLetterTargetArn == "" {
		return "", fmt.Errorf("no deadLetterTargetArn in %q", policy)
	}
	return p.DeadLetterTargetArn, nil
}

// queueURLFromARN looks a queue's URL up by the name and account in its ARN
// (arn:partition:sqs:region:account:name).
func (c *Consumer) queueURLFromARN(ctx context.Context, arn string) (string, error) {
	start := time.Now()
	u, err := lookupQueueURL(ctx, c.client, arn)
	c.obs.SQSCall(OpGetQueueURL, errorCode(err), time.Since(start))
	return u, err
}

type queueURLGetter interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

func lookupQueueURL(ctx context.Context, client queueURLGetter, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" || parts[5] == "" {
		return "", fmt.Errorf("%w: %q is not an SQS queue ARN", ErrInvalidConfig, arn)
	}
	in := &sqs.GetQueueUrlInput{QueueName: &parts[5]}
	if parts[4] != "" {
		in.QueueOwnerAWSAccountId = &parts[4]
	}
	out, err := client.GetQueueUrl(ctx, in)
	if err != nil {
		return "", err
	}
	if deref(out.QueueUrl) == "" {
		return "", errors.New("GetQueueUrl returned no URL")
	}
	return *out.QueueUrl, nil
}

// sourceList logs the queues in priority order, each with its dead-letter
// queue: queues.0.name=… queues.0.dlq=… in text, an object per priority in
// JSON.
type sourceList []*source

func (l sourceList) LogValue() slog.Value {
	attrs := make([]slog.Attr, len(l))
	for i, s := range l {
		attrs[i] = slog.Group(strconv.Itoa(s.priority),
			"name", s.name, "url", s.url, "dlq", s.dlqURL, "fifo", s.fifo, "visibility_timeout", s.vt)
	}
	return slog.GroupValue(attrs...)
}

package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// Message attributes a dead-lettered copy carries on top of the original's.
// A redrive tool should strip them before sending the body back.
const (
	AttrErrorClass      = "ErrorClass"      // String: the DeadLetter class
	AttrErrorReason     = "ErrorReason"     // String: the DeadLetter reason
	AttrSourceMessageID = "SourceMessageId" // String: the original message id
	AttrReceiveCount    = "ReceiveCount"    // Number: ApproximateReceiveCount when dead-lettered
	AttrDeadLetteredAt  = "DeadLetteredAt"  // String: RFC 3339 time, UTC
)

// SQS accepts at most this many message attributes per message.
const maxMessageAttributes = 10

// maxReasonBytes bounds the reason attribute: enough for a list of field
// errors, small next to the 1 MiB message limit.
const maxReasonBytes = 4096

// queueAttributes reads attributes of the job queue.
func (c *Consumer) queueAttributes(ctx context.Context, names ...types.QueueAttributeName) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	out, err := c.client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &c.cfg.QueueURL, AttributeNames: names})
	c.obs.SQSCall(OpGetQueueAttributes, errorCode(err), time.Since(start))
	if err != nil {
		return nil, fmt.Errorf("read attributes of queue %s: %w", c.cfg.QueueURL, err)
	}
	return out.Attributes, nil
}

// discover reads the queue's attributes: the visibility timeout unless it is
// configured, and the dead-letter queue unless it is configured.
func (c *Consumer) discover(ctx context.Context) error {
	attrs, err := c.queueAttributes(ctx, types.QueueAttributeNameVisibilityTimeout, types.QueueAttributeNameRedrivePolicy)
	if err != nil {
		return err
	}

	c.vt = c.cfg.VisibilityTimeout
	if c.vt == 0 {
		v := attrs[string(types.QueueAttributeNameVisibilityTimeout)]
		secs, err := strconv.Atoi(v)
		if err != nil || secs < 1 {
			return fmt.Errorf("%w: VisibilityTimeout is not set and the queue's VisibilityTimeout attribute is %q; set it between 1s and 12h",
				ErrInvalidConfig, v)
		}
		c.vt = time.Duration(secs) * time.Second
	}

	c.dlqURL = c.cfg.DLQURL
	if c.dlqURL != "" {
		return nil
	}
	policy := attrs[string(types.QueueAttributeNameRedrivePolicy)]
	if policy == "" {
		c.log.Warn("queue has no dead-letter queue; DeadLetter outcomes keep their messages on the queue",
			"keep_delay", c.cfg.KeepDelay)
		return nil
	}
	arn, err := deadLetterTarget(policy)
	if err != nil {
		return fmt.Errorf("%w: RedrivePolicy of queue %s: %w", ErrInvalidConfig, c.cfg.QueueURL, err)
	}
	url, err := c.queueURLFromARN(ctx, arn)
	if err != nil {
		return fmt.Errorf("dead-letter queue %s from the RedrivePolicy of %s: %w", arn, c.cfg.QueueURL, err)
	}
	c.dlqURL = url
	return nil
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
	url, err := lookupQueueURL(ctx, c.client, arn)
	c.obs.SQSCall(OpGetQueueURL, errorCode(err), time.Since(start))
	return url, err
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

// deadLetter sends copies of msgs to the dead-letter queue and deletes the
// ones that arrived. A message whose copy could not be sent is kept.
func (c *Consumer) deadLetter(ctx context.Context, msgs []*Message, outs []Outcome) {
	if c.dlq == nil {
		c.keep(msgs, outs, "no dead-letter queue", nil)
		return
	}
	now := time.Now()
	entries := make([]Entry, len(msgs))
	for i, m := range msgs {
		var dropped []string
		entries[i], dropped = deadLetterEntry(m, outs[i], now, c.dlq.fifo, c.dlq.cfg.MaxMessageSize)
		if len(dropped) > 0 {
			c.log.Warn("dead letter: original attributes left out to stay within SQS's limits",
				"message_id", m.ID, "key", m.Key(), "dropped", dropped)
		}
	}
	res, err := c.dlq.Send(ctx, entries)

	var sent, kept []*Message
	var keptOuts []Outcome
	for i, m := range msgs {
		if res.MessageIDs[i] == "" {
			kept = append(kept, m)
			keptOuts = append(keptOuts, outs[i])
			continue
		}
		sent = append(sent, m)
		c.obs.DeadLettered(outs[i].Class())
		c.log.Warn("message dead-lettered", "message_id", m.ID, "key", m.Key(), "class", outs[i].Class(),
			"reason", outs[i].Reason(), "receive_count", m.ReceiveCount, "dlq_message_id", res.MessageIDs[i])
	}
	if len(sent) > 0 {
		c.mu.Lock()
		for _, m := range sent {
			m.state = stateDeleting
		}
		c.mu.Unlock()
		c.del.add(sent)
	}
	if len(kept) > 0 {
		c.keep(kept, keptOuts, "sending to the dead-letter queue failed", err)
	}
}

// keep hands back messages that should have been dead-lettered but could
// not be: they come back after KeepDelay, never dropped.
func (c *Consumer) keep(msgs []*Message, outs []Outcome, why string, err error) {
	c.mu.Lock()
	for _, m := range msgs {
		c.setFinalLocked(m, keepDelay(c.cfg.KeepDelay, m.ReceiveCount), finalKeep)
	}
	c.mu.Unlock()
	c.kickVisibility()
	c.obs.KeptWithoutDLQ(len(msgs))
	for i, m := range msgs {
		args := []any{"why", why, "message_id", m.ID, "key", m.Key(), "class", outs[i].Class(),
			"reason", outs[i].Reason(), "receive_count", m.ReceiveCount, "returns_in", keepDelay(c.cfg.KeepDelay, m.ReceiveCount)}
		if err != nil {
			c.log.Error("message could not be dead-lettered; kept on the queue", append(args, "err", err)...)
			continue
		}
		c.log.Warn("message could not be dead-lettered; kept on the queue", args...)
	}
}

// keepDelay is how long a message that could not be dead-lettered stays
// away: KeepDelay, doubled for every earlier delivery, up to 12 hours. Each
// return costs a call that fails again, so a job that can never apply must
// come back ever more rarely instead of eating the quota every 5 minutes.
//
// It has no jitter, unlike the other backoffs, so that the "returns_in" the
// log reports is the delay the message was actually given.
func keepDelay(base time.Duration, receiveCount int) time.Duration {
	return retry.Nth(receiveCount, base, maxVisibility-time.Minute, 0)
}

// deadLetterEntry builds the dead-letter copy of m: the body unchanged, the
// five dead-letter attributes, and as many of the original attributes (by
// name order) as SQS's ten-attribute and size limits leave room for. It
// returns the names of the original attributes left out.
func deadLetterEntry(m *Message, o Outcome, now time.Time, fifo bool, maxSize int) (Entry, []string) {
	class := o.Class()
	if class == "" {
		class = "unspecified" // SQS refuses empty attribute values
	}
	reason := truncateUTF8(o.Reason(), maxReasonBytes)
	if reason == "" {
		reason = "(no reason given)"
	}
	attrs := make(map[string]types.MessageAttributeValue, maxMessageAttributes)
	attrs[AttrErrorClass] = stringAttr("String", class)
	attrs[AttrErrorReason] = stringAttr("String", reason)
	attrs[AttrSourceMessageID] = stringAttr("String", m.ID)
	attrs[AttrReceiveCount] = stringAttr("Number", strconv.Itoa(max(m.ReceiveCount, 0)))
	attrs[AttrDeadLetteredAt] = stringAttr("String", now.UTC().Format(time.RFC3339Nano))
	ours := len(attrs)

	var dropped []string
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range m.Attributes {
			if !yield(name) {
				return
			}
		}
	})
	for _, name := range names {
		if _, clash := attrs[name]; clash || len(attrs) >= maxMessageAttributes {
			dropped = append(dropped, name)
			continue
		}
		attrs[name] = m.Attributes[name]
	}

	e := Entry{ID: "dead letter of " + m.ID, Body: m.Body, Attributes: attrs}
	if fifo {
		e.GroupID = m.GroupID
		if e.GroupID == "" {
			e.GroupID = strings.TrimPrefix(m.key, unkeyed)
		}
		// The source id makes a resend after a lost response a duplicate
		// SQS drops, instead of a second copy.
		e.DeduplicationID = m.ID
	}

	// Too big (the original was close to the limit): give up original
	// attributes, largest first, then shorten the reason.
	for e.size() > maxSize && len(attrs) > ours {
		largest, size := "", -1
		for name, v := range attrs {
			if isDeadLetterAttr(name) {
				continue
			}
			if s := attrSize(name, v); s > size {
				largest, size = name, s
			}
		}
		delete(attrs, largest)
		dropped = append(dropped, largest)
	}
	if over := e.size() - maxSize; over > 0 {
		short := truncateUTF8(reason, max(len(reason)-over, 1))
		attrs[AttrErrorReason] = stringAttr("String", short)
	}
	slices.Sort(dropped)
	return e, dropped
}

func isDeadLetterAttr(name string) bool {
	switch name {
	case AttrErrorClass, AttrErrorReason, AttrSourceMessageID, AttrReceiveCount, AttrDeadLetteredAt:
		return true
	}
	return false
}

func stringAttr(dataType, v string) types.MessageAttributeValue {
	return types.MessageAttributeValue{DataType: &dataType, StringValue: &v}
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

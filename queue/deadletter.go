package queue

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

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

// deadLetter sends copies of msgs to the dead-letter queues of their own
// queues and deletes the ones that arrived. A message whose copy could not
// be sent, or whose queue has no dead-letter queue, is kept. A batch may
// mix queues; each queue's messages go out in one Send.
func (c *Consumer) deadLetter(ctx context.Context, msgs []*Message, outs []Outcome) {
	for _, s := range c.srcs {
		var ms []*Message
		var os []Outcome
		for i, m := range msgs {
			if m.src == s {
				ms = append(ms, m)
				os = append(os, outs[i])
			}
		}
		if len(ms) > 0 {
			c.deadLetterTo(ctx, s, ms, os)
		}
	}
}

// deadLetterTo dead-letters messages of s.
func (c *Consumer) deadLetterTo(ctx context.Context, s *source, msgs []*Message, outs []Outcome) {
	if s.dlq == nil {
		c.keep(msgs, outs, "no dead-letter queue", nil)
		return
	}
	now := time.Now()
	entries := make([]Entry, len(msgs))
	for i, m := range msgs {
		var dropped []string
		entries[i], dropped = deadLetterEntry(m, outs[i], now, s.dlq.fifo, s.dlq.cfg.MaxMessageSize)
		if len(dropped) > 0 {
			s.log.Warn("dead letter: original attributes left out to stay within SQS's limits",
				"message_id", m.ID, "key", m.Key(), "dropped", dropped)
		}
	}
	res, err := s.dlq.Send(ctx, entries)

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
		s.log.Warn("message dead-lettered", "message_id", m.ID, "key", m.Key(), "class", outs[i].Class(),
			"reason", outs[i].Reason(), "receive_count", m.ReceiveCount, "dlq", s.dlqURL, "dlq_message_id", res.MessageIDs[i])
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
			m.src.log.Error("message could not be dead-lettered; kept on the queue", append(args, "err", err)...)
			continue
		}
		m.src.log.Warn("message could not be dead-lettered; kept on the queue", args...)
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

package queue

import (
	"fmt"
	"time"
)

// OutcomeKind says what the Consumer does with a handled message.
type OutcomeKind uint8

const (
	// OutcomeNone is the zero Outcome: the handler gave none. The Consumer
	// treats it as a failure and lets the message come back after the
	// visibility timeout.
	OutcomeNone OutcomeKind = iota
	// OutcomeAck deletes the message.
	OutcomeAck
	// OutcomeRetry makes the message visible again after a delay.
	OutcomeRetry
	// OutcomeDeadLetter sends a copy to the dead-letter queue, then
	// deletes the message.
	OutcomeDeadLetter
	// OutcomeAbandon leaves the message alone: the handler stopped before
	// it was done (shutdown). It reappears when its visibility runs out,
	// as after a crash, for another worker.
	OutcomeAbandon
)

// Outcome is the handler's verdict on one message. It is small (the common
// Ack carries no strings) because a handler returns one per message.
type Outcome struct {
	kind  OutcomeKind
	delay time.Duration
	dead  *deadLetterCause
}

type deadLetterCause struct{ class, reason string }

// Ack says the message is done: it is deleted (in a batch).
func Ack() Outcome { return Outcome{kind: OutcomeAck} }

// RetryAfter says the message should come back after d: its visibility is
// set to d (rounded up to whole seconds, at most what is left of SQS's 12 h
// limit). Growing d with Message.ReceiveCount is the caller's policy.
func RetryAfter(d time.Duration) Outcome {
	return Outcome{kind: OutcomeRetry, delay: max(d, 0)}
}

// DeadLetter says the message can never succeed: its body goes unchanged to
// the dead-letter queue with class and reason as attributes, then it is
// deleted. class should be a short, bounded word (it becomes a metric label);
// reason is for people and may name fields, never personal data.
func DeadLetter(class, reason string) Outcome {
	return Outcome{kind: OutcomeDeadLetter, dead: &deadLetterCause{class: class, reason: reason}}
}

// Abandon says the handler gave up on the message without a verdict (the
// worker is stopping): it reappears after the visibility timeout.
func Abandon() Outcome { return Outcome{kind: OutcomeAbandon} }

// Kind returns what the outcome asks for.
func (o Outcome) Kind() OutcomeKind { return o.kind }

// Delay returns the RetryAfter delay.
func (o Outcome) Delay() time.Duration { return o.delay }

// Class returns the DeadLetter error class.
func (o Outcome) Class() string {
	if o.dead == nil {
		return ""
	}
	return o.dead.class
}

// Reason returns the DeadLetter reason.
func (o Outcome) Reason() string {
	if o.dead == nil {
		return ""
	}
	return o.dead.reason
}

func (o Outcome) String() string {
	switch o.kind {
	case OutcomeAck:
		return "ack"
	case OutcomeRetry:
		return fmt.Sprintf("retry after %v", o.delay)
	case OutcomeDeadLetter:
		return fmt.Sprintf("dead letter (%s): %s", o.Class(), o.Reason())
	case OutcomeAbandon:
		return "abandon"
	}
	return "none"
}

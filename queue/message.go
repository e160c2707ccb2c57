package queue

import (
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Message is one received SQS message. The exported fields are set before
// Handler.Key is called and never change afterwards.
type Message struct {
	ID            string
	ReceiptHandle string
	Body          string
	// Priority is the index of the message's queue in Config.Queues: 0 is
	// the highest.
	Priority int
	// Queue is the name of the message's queue, the last segment of its URL
	// (for example "pcsync-realtime"), for metric labels and logs.
	Queue string
	// GroupID is the MessageGroupId on a FIFO queue, else "".
	GroupID string
	// ReceiveCount is ApproximateReceiveCount: 1 on the first delivery.
	ReceiveCount int
	// SentAt is when SQS accepted the message (SentTimestamp).
	SentAt time.Time
	// ReceivedAt is when this process received it.
	ReceivedAt time.Time
	// Attributes are the message attributes the sender set.
	Attributes map[string]types.MessageAttributeValue

	src *source // the message's queue; set with Priority and Queue

	// The fields below belong to the Consumer and are guarded by its mutex.
	key          string
	state        msgState
	final        finalKind
	finalVis     int32     // visibility, in seconds, of the pending final change
	visibleUntil time.Time // when SQS will show the message again, conservatively early
	expiresAt    time.Time // receive + 12 h: SQS refuses to hide it longer
	lost         bool      // SQS no longer accepts our receipt handle
	capped       bool      // reached the 12 h limit; no more extensions
}

// Key returns the message's lane key: the Handler's key, else its
// MessageGroupId; "" when the message had a lane of its own.
func (m *Message) Key() string {
	if strings.HasPrefix(m.key, unkeyed) {
		return ""
	}
	return m.key
}

// unkeyed prefixes the lane key of a message without a key; no key a
// handler derives from a job can start with it.
const unkeyed = "\x00"

// msgState is where a held message is in its life.
type msgState uint8

const (
	stateWaiting       msgState = iota // in its lane, not started
	stateRunning                       // in a Handle call
	stateDeadLettering                 // its copy is being sent to the dead-letter queue
	stateDeleting                      // waiting for DeleteMessageBatch
	stateFinal                         // waiting for the visibility change that hands it back
	stateAbandoned                     // handler overran the drain deadline; left to reappear
	stateDone                          // no longer held
)

// finalKind says why a message is handed back.
type finalKind uint8

const (
	finalRetry   finalKind = iota + 1 // RetryAfter outcome
	finalKeep                         // dead letter impossible: kept on the queue
	finalRelease                      // never started (shutdown, FIFO lane after a retry)
	finalAbandon                      // outcome missing: the handler panicked or returned too few outcomes
)

func (k finalKind) String() string {
	switch k {
	case finalRetry:
		return "retry"
	case finalKeep:
		return "keep"
	case finalRelease:
		return "release"
	case finalAbandon:
		return "retry after handler failure"
	}
	return "unknown"
}

// newMessage converts a message received from s. start is when the receive
// call began: SQS started the visibility timeout no earlier than that, so
// deadlines computed from it are safe.
func newMessage(sm *types.Message, s *source, start, now time.Time) *Message {
	m := &Message{
		ID:            deref(sm.MessageId),
		ReceiptHandle: deref(sm.ReceiptHandle),
		Body:          deref(sm.Body),
		Priority:      s.priority,
		Queue:         s.name,
		Attributes:    sm.MessageAttributes,
		ReceivedAt:    now,
		src:           s,
		visibleUntil:  start.Add(s.vt),
		expiresAt:     start.Add(maxVisibility),
	}
	if v, ok := sm.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)]; ok {
		m.ReceiveCount, _ = strconv.Atoi(v)
	}
	if v, ok := sm.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			m.SentAt = time.UnixMilli(ms)
		}
	}
	m.GroupID = sm.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)]
	return m
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

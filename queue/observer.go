package queue

import "time"

// Observer receives the events of a Consumer and a Producer, for metrics.
//
// Concurrency contract: methods are called from many goroutines at once and
// must be safe for that. They must return quickly and never block: they run
// on the message path. The Consumer never holds its lock while it calls
// them. Counts are deltas. The current values (messages held, workers busy)
// are not events: read them with Consumer.Held and Consumer.Busy.
type Observer interface {
	// Received counts messages returned by ReceiveMessage.
	Received(n int)
	// ReceiveEmpty counts receives that returned no message.
	ReceiveEmpty()
	// Acked counts messages deleted after an Ack or a dead letter.
	Acked(n int)
	// DeadLettered counts one message accepted by the dead-letter queue,
	// by its error class.
	DeadLettered(class string)
	// Retried counts RetryAfter outcomes.
	Retried(n int)
	// Released counts messages handed back unstarted (shutdown, or the
	// rest of a FIFO lane after a retry) with visibility 0.
	Released(n int)
	// KeptWithoutDLQ counts dead-letter outcomes that could not be sent
	// to a dead-letter queue (none configured, or the send failed): the
	// message is kept on the source queue and returns later.
	KeptWithoutDLQ(n int)
	// VisibilityExtended counts visibility extensions by the heartbeat.
	VisibilityExtended(n int)
	// SQSCall reports one SQS request: its operation (Op* constants), its
	// error code ("" on success) and its latency.
	SQSCall(op, code string, latency time.Duration)
	// BatchEntryFailed counts one failed entry of a successful batch call.
	BatchEntryFailed(op, code string)
}

// NopObserver is an Observer that does nothing; it is the default.
type NopObserver struct{}

func (NopObserver) Received(int)                          {}
func (NopObserver) ReceiveEmpty()                         {}
func (NopObserver) Acked(int)                             {}
func (NopObserver) DeadLettered(string)                   {}
func (NopObserver) Retried(int)                           {}
func (NopObserver) Released(int)                          {}
func (NopObserver) KeptWithoutDLQ(int)                    {}
func (NopObserver) VisibilityExtended(int)                {}
func (NopObserver) SQSCall(string, string, time.Duration) {}
func (NopObserver) BatchEntryFailed(string, string)       {}

// Package queue owns the Amazon SQS side of pcsync: a Consumer that long-polls
// one or more queues in full batches, keeps a bounded number of messages of
// each in hand, runs them in per-key lanes on one fixed worker pool, starting
// the lanes of the highest-priority queue first, keeps every held message
// invisible with one batched heartbeat, and carries out the outcome the
// handler returns on the message's own queue (batched delete, delayed retry,
// dead letter to that queue's dead-letter queue); and a Producer that sends
// messages in batches of ten with per-entry retry, used by the enqueue command
// and for dead letters. The Consumer also says how far behind each queue is
// (Consumer.Depths): SQS's counts of the queue and of its dead-letter queue,
// asked periodically, and the oldest message it holds.
//
// The package is generic over the job: it never looks into a message body.
// What a message means, which key it belongs to and what its fate is are the
// Handler's business. Metrics are reported through the Observer interface and
// exported by another package; the SQS client, its credentials and endpoint
// are built by the caller.
//
// Delivery is at least once. A message leaves the queue only through a
// successful DeleteMessageBatch after the handler acknowledged it or after
// its copy was accepted by the dead-letter queue; in every other case (crash,
// shutdown, failed delete, no dead-letter queue) it becomes visible again.
package queue

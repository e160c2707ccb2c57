package daemon

import (
	"context"

	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

// jobs adapts the updater to the queue: it is the queue.Handler of
// pcsync. The queue knows messages and what to do with them (delete, send
// back, dead-letter, leave); the updater knows jobs and what became of
// them. This is the one place that translates between the two.
type jobs struct{ u *updater.Updater }

// Key puts every job of one engagement in one lane, so that they never
// run at the same time and coalesce.
func (j jobs) Key(m *queue.Message) string { return updater.LaneKey(m.Body) }

func (j jobs) Handle(ctx context.Context, batch []*queue.Message) []queue.Outcome {
	ds := make([]updater.Delivery, len(batch))
	for i, m := range batch {
		ds[i] = updater.Delivery{ID: m.ID, Body: m.Body, ReceiveCount: m.ReceiveCount, SentAt: m.SentAt,
			Priority: m.Priority, Queue: m.Queue}
	}
	verdicts := j.u.Apply(ctx, ds)
	outs := make([]queue.Outcome, len(verdicts))
	for i, v := range verdicts {
		outs[i] = outcomeOf(v)
	}
	return outs
}

// outcomeOf is what the queue does with a message after the updater's
// verdict on its job.
func outcomeOf(v updater.Verdict) queue.Outcome {
	switch v.Outcome {
	case updater.OutcomeApplied, updater.OutcomeUnchanged, updater.OutcomeAlreadyApplied, updater.OutcomeCoalesced, updater.OutcomeStale:
		return queue.Ack()
	case updater.OutcomeDeadLettered:
		return queue.DeadLetter(v.Class, v.Reason)
	case updater.OutcomeRetried:
		return queue.RetryAfter(v.Delay)
	}
	// Abandoned: the worker stopped mid-job.
	return queue.Abandon()
}

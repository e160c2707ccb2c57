package retry

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy paces the attempts at one job. The zero value is not usable; use
// DefaultPolicy and change what you need.
type Policy struct {
	// InitialBackoff, MaxBackoff and Multiplier shape the waits between
	// attempts inside one delivery of a message (jittered by half either
	// way, as cenkalti/backoff does).
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Multiplier     float64
	// AttemptBudget bounds how long one delivery may keep retrying before
	// the job goes back to the queue for later (RetryAfter). It keeps a
	// message from being held for ever by a service that keeps failing.
	AttemptBudget time.Duration
	// MaxConflictRetries bounds the re-read-and-retry rounds after
	// ConflictException within one delivery; a context that another writer
	// keeps changing goes back to the queue after that.
	MaxConflictRetries int
	// RequeueBase and RequeueMax shape the visibility delay given to a job
	// sent back to the queue: RequeueBase doubled for every earlier receive,
	// capped at RequeueMax, with jitter.
	RequeueBase time.Duration
	RequeueMax  time.Duration
}

// DefaultPolicy is what pcsync runs with unless configured otherwise.
func DefaultPolicy() Policy {
	return Policy{
		InitialBackoff:     250 * time.Millisecond,
		MaxBackoff:         20 * time.Second,
		Multiplier:         2,
		AttemptBudget:      2 * time.Minute,
		MaxConflictRetries: 5,
		RequeueBase:        30 * time.Second,
		RequeueMax:         15 * time.Minute,
	}
}

// Backoff returns a fresh backoff for one delivery of one job: jittered
// exponential waits that stop (backoff.Stop) once AttemptBudget has passed.
func (p Policy) Backoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.InitialBackoff),
		backoff.WithMaxInterval(p.MaxBackoff),
		backoff.WithMultiplier(p.Multiplier),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(p.AttemptBudget),
	)
	return b
}

// ConflictWait is the jittered pause before retry number n (1-based) after
// a conflict: short, since the fresh timestamp is already in hand, and
// spread so that two writers racing on one engagement fall out of step.
// InitialBackoff/5 doubled per retry up to 64 times that, then jittered by
// half either way.
func (p Policy) ConflictWait(n int) time.Duration {
	base := p.InitialBackoff / 5
	return Nth(n, base, base<<6, 0.5)
}

// RequeueDelay is the visibility delay for a job going back to the queue on
// its receiveCount-th delivery: it grows with every delivery, so a job that
// keeps failing costs less and less, and is jittered so that a batch that
// failed together does not come back together. RequeueBase doubled per
// earlier delivery up to RequeueMax, then between 75 % and 125 % of that,
// never past RequeueMax: the cap is on the delay itself, since it is the
// longest a job may stay away.
func (p Policy) RequeueDelay(receiveCount int) time.Duration {
	return min(Nth(receiveCount, p.RequeueBase, p.RequeueMax, 0.25), p.RequeueMax)
}

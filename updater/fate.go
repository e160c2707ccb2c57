package updater

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/cenkalti/backoff/v4"

	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/retry"
)

// This file is the one place that decides a job's fate from an error:
// decide maps every error a job can meet, and the state of its attempt, to
// the next step. retry.Classify says what an error is; decide says what
// that means for the job. README's "What each API error means for a job"
// is its table test (fate_test.go).

// stepKind is what happens next to a job whose call failed.
type stepKind uint8

const (
	// stepRetry calls again after wait (0: at once; the limiter paces it).
	stepRetry stepKind = iota + 1
	// stepHold waits for the circuit's next probe, then calls again: the
	// service refuses everyone, and the job is not at fault.
	stepHold
	// stepReread waits, reads the engagement for a fresh ModifiedAt (and
	// to see whether the job is already applied), then writes again.
	stepReread
	// stepSendBack hands the job back to the queue for delay.
	stepSendBack
	// stepDeadLetter sends the job to the dead-letter queue: it can never
	// be applied as it is.
	stepDeadLetter
	// stepAbandon stops at once: the worker is shutting down. The message
	// reappears for another worker.
	stepAbandon
)

var stepNames = [...]string{"", "retry", "hold", "re-read", "send back", "dead-letter", "abandon"}

func (k stepKind) String() string { return stepNames[k] }

// step is decide's answer.
type step struct {
	kind  stepKind
	wait  time.Duration // retry, hold, re-read: the pause before the next call
	delay time.Duration // send back: when the job comes back from the queue
	// class is a bounded word for metrics: a dead letter's error class
	// (Class* constants), a send-back's reason (SendBack* constants).
	class string
	// reason says why, for people: the DLQ attribute of a dead letter, the
	// log line of a send-back.
	reason string
}

// Dead-letter classes: what an operator filters the DLQ by.
const (
	ClassInvalidJob = "invalid_job"    // the body breaks the API model's rules; never sent
	ClassRejected   = "api_validation" // the service's ValidationException
	ClassNotFound   = "not_found"      // the engagement or context does not exist
	ClassAPIError   = "api_error"      // another error the service says is the request's
	ClassDenied     = "access_denied"  // refused for this job alone while others go through
)

// DeadLetterClasses returns every dead-letter class.
func DeadLetterClasses() []string {
	return []string{ClassInvalidJob, ClassRejected, ClassNotFound, ClassAPIError, ClassDenied}
}

// Send-back reasons: why a job went back to the queue to be tried later,
// in a word fit for a metric label (the step's reason says it in full, for
// the log).
const (
	SendBackFailing     = "failing"      // its calls kept failing (5xx, network, timeouts) for the whole attempt budget
	SendBackThrottled   = "throttled"    // throttled for the whole attempt budget
	SendBackConflicts   = "conflicts"    // the engagement kept changing under it (MaxConflictRetries)
	SendBackWriteBudget = "write_budget" // the daily write budget is spent
	SendBackReadBudget  = "read_budget"  // the daily read budget is spent
	SendBackState       = "state"        // the state file or table could not be read or written
	SendBackClaimed     = "claimed"      // another worker of the fleet was writing its context (state table)
	SendBackDraining    = "draining"     // the worker stopped while the job waited for its turn
)

// SendBackReasons returns every send-back reason.
func SendBackReasons() []string {
	return []string{SendBackFailing, SendBackThrottled, SendBackConflicts, SendBackWriteBudget, SendBackReadBudget, SendBackState, SendBackClaimed, SendBackDraining}
}

// maxRequeueDelay keeps a send-back inside SQS's 12-hour visibility limit.
const maxRequeueDelay = 12*time.Hour - 5*time.Minute

// attempt is the state of one delivery of one job, as decide keeps it.
type attempt struct {
	policy       retry.Policy
	receiveCount int
	// deadline ends the retries of this delivery (Policy.AttemptBudget):
	// past it, a job that keeps failing goes back to the queue.
	deadline  time.Time
	backoff   backoff.BackOff // transient errors; made on first use
	conflicts int             // ConflictException rounds so far
	// systemic: the job met a systemic error while the circuit had closed
	// systemicCloses times.
	systemic       bool
	systemicCloses uint64
}

func newAttempt(p retry.Policy, receiveCount int, now time.Time) *attempt {
	return &attempt{policy: p, receiveCount: receiveCount, deadline: now.Add(p.AttemptBudget)}
}

// circuitView is what decide needs to know of the circuit.
type circuitView struct {
	closes    uint64    // how many times it has closed (Circuit.Closes)
	nextProbe time.Time // when the next probe may go (Circuit.NextProbe)
}

// decide returns the next step for a job whose call op (OpUpdate or OpGet)
// failed with err, and advances the attempt's state. ctx is the job's
// context: an error because it ended means the worker is stopping.
func decide(ctx context.Context, err error, op string, a *attempt, cv circuitView, now time.Time) step {
	var (
		invalid *InvalidJobError
		future  *futureError
		state   *stateError
		spent   *budgetSpentError
		claimed *ClaimedError
	)
	switch {
	case errors.Is(err, errHandBack) && ctx.Err() == nil:
		// The worker is draining and the job only waited for its turn:
		// back to the queue now, for another worker.
		return step{kind: stepSendBack, class: SendBackDraining, reason: err.Error()}
	case errors.As(err, &invalid), errors.As(err, &future):
		return step{kind: stepDeadLetter, class: ClassInvalidJob, reason: err.Error()}
	case errors.As(err, &claimed):
		// Another worker writes the context, and did not finish while
		// this one waited a moment (claimPatience): back to the queue
		// until its claim ends, or for claimRecheck when that is sooner
		// (a live worker's claim ends with its job; only a crashed one's
		// lasts), doubled for each delivery before (a hot context), and
		// spread over a few seconds so that the jobs it held do not all
		// return at once.
		recheck := claimRecheck << min(max(a.receiveCount-1, 0), 3)
		wait := min(max(claimed.Until.Sub(now), 0), recheck) + time.Duration(rand.Int64N(int64(5*time.Second)))
		return step{kind: stepSendBack, class: SendBackClaimed, reason: claimed.Error(), delay: min(wait, maxRequeueDelay)}
	case errors.As(err, &state):
		// No write may escape the versions' store: the job waits in the
		// queue until the store can be read and written again.
		return a.sendBack(SendBackState, err.Error())
	case errors.As(err, &spent):
		// Hours, maybe: the job goes back to the queue for then, spread
		// over a minute so that the backlog does not return at once.
		why := SendBackWriteBudget
		if spent.op == OpGet {
			why = SendBackReadBudget
		}
		return step{kind: stepSendBack, class: why, reason: err.Error(),
			delay: min(spent.wait+time.Duration(rand.Int64N(int64(time.Minute))), maxRequeueDelay)}
	}

	class := retry.Classify(ctx, err)
	if errors.Is(err, errNoModifiedAt) && class != retry.Canceled {
		// A read that said nothing to write with: try again, within the
		// attempt's budget, as after any transient failure.
		class = retry.Transient
	}
	switch class {
	case retry.Permanent:
		return step{kind: stepDeadLetter, class: deadLetterClass(err), reason: retry.Reason(err)}
	case retry.Canceled:
		return step{kind: stepAbandon}
	case retry.Systemic:
		// The circuit is open now; the next call waits in Circuit.Acquire
		// until a probe gets through. The job is held meanwhile, never
		// dead-lettered: it is not at fault. Unless the circuit closed
		// since this job last met the error: other jobs go through, so
		// the refusal is this job's own (a catalog or an engagement the
		// role may not touch), and holding it would stall everyone.
		if a.systemic && cv.closes > a.systemicCloses {
			return step{kind: stepDeadLetter, class: deadLetterClass(err), reason: retry.Reason(err)}
		}
		a.systemic, a.systemicCloses = true, cv.closes
		// Step aside until just past the next probe, so that another held
		// job, not this one again, tells whether the service is back; if
		// this job is the only one refused, that is how it finds out.
		if d := cv.nextProbe.Sub(now); d > 0 {
			return step{kind: stepHold, wait: d + time.Duration(rand.Int64N(int64(50*time.Millisecond)))}
		}
		return step{kind: stepHold}
	case retry.Throttle:
		// The limiter has already slowed down; the next call waits its
		// turn there. Only the attempt's time budget bounds the retries.
		if now.After(a.deadline) {
			return a.sendBack(SendBackThrottled, "throttled for the whole attempt budget")
		}
		return step{kind: stepRetry}
	case retry.Conflict:
		if op == OpUpdate {
			a.conflicts++
			if a.conflicts > a.policy.MaxConflictRetries {
				return a.sendBack(SendBackConflicts, "engagement keeps changing: "+retry.Reason(err))
			}
			return step{kind: stepReread, wait: a.policy.ConflictWait(a.conflicts)}
		}
		// A read cannot conflict; should one, it is treated as transient.
	}

	// Transient: back off, within the attempt's budget.
	if a.backoff == nil {
		a.backoff = a.policy.Backoff()
	}
	d := a.backoff.NextBackOff()
	if d < 0 || now.Add(d).After(a.deadline) {
		return a.sendBack(SendBackFailing, op+" kept failing: "+retry.Reason(err))
	}
	if op == OpUpdate && ambiguous(err) {
		// A write whose answer never came may have been applied: read
		// before writing again, so that a lost response costs a cheap
		// read instead of a conflicting write.
		return step{kind: stepReread, wait: d}
	}
	return step{kind: stepRetry, wait: d}
}

// sendBack hands the job back to the queue, later on every delivery; why
// is a SendBack* constant.
func (a *attempt) sendBack(why, reason string) step {
	return step{kind: stepSendBack, class: why, reason: reason, delay: a.policy.RequeueDelay(a.receiveCount)}
}

func deadLetterClass(err error) string {
	var (
		validation *types.ValidationException
		notFound   *types.ResourceNotFoundException
		denied     *types.AccessDeniedException
	)
	switch {
	case errors.As(err, &validation):
		return ClassRejected
	case errors.As(err, &notFound):
		return ClassNotFound
	case errors.As(err, &denied):
		return ClassDenied
	}
	return ClassAPIError
}

// ambiguous says whether a failed write may have been applied anyway.
func ambiguous(err error) bool {
	var (
		send     *smithyhttp.RequestSendError
		internal *types.InternalServerException
		timeout  *aws.RequestCanceledError
		unread   *smithy.DeserializationError
	)
	return errors.As(err, &send) || errors.As(err, &internal) || errors.As(err, &timeout) || errors.As(err, &unread)
}

// errNoModifiedAt says a read gave no ModifiedAt to write with.
var errNoModifiedAt = errors.New("GetEngagement returned no ModifiedAt")

// maxClockSkew is how far in the future a SourceUpdatedAt may be.
const maxClockSkew = 5 * time.Minute

// futureError says a job's SourceUpdatedAt is in the future. Such a
// timestamp would make every later, correct version of the context look
// stale for the life of the process (a CRM exporting local time with a Z,
// say), so the job is refused as invalid.
type futureError struct{ source, now time.Time }

func (e *futureError) Error() string {
	return fmt.Sprintf("invalid job: SourceUpdatedAt: %s is in the future (now %s)",
		e.source.UTC().Format(time.RFC3339), e.now.UTC().Format(time.RFC3339))
}

// stateError says the versions' store could not be read, or could not
// record the version about to be written.
type stateError struct{ err error }

func (e *stateError) Error() string {
	return "versions store: " + e.err.Error()
}

func (e *stateError) Unwrap() error { return e.err }

// claimRecheck is the longest a job, on its first delivery, waits in the
// queue for another worker's claim on its context to end, before it looks
// again.
const claimRecheck = 15 * time.Second

// claimPatience is how long a job waits, held, for another worker's claim
// on its context to end before it goes back to the queue: most claims end
// with their job, within a second.
const claimPatience = 3 * time.Second

// maxBudgetHold is the longest a job waits, held, for room in the daily
// budget; a longer wait sends it back to the queue for then.
const maxBudgetHold = time.Minute

// budgetSpentError says the daily budget of op's class (writes or reads)
// has no room for a while.
type budgetSpentError struct {
	op   string
	wait time.Duration
}

func (e *budgetSpentError) Error() string {
	class := "write"
	if e.op == OpGet {
		class = "read"
	}
	return fmt.Sprintf("daily %s budget spent; room again in %v", class, e.wait.Round(time.Second))
}

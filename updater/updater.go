package updater

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
)

// API is the two Partner Central calls the updater makes.
// *partnercentral.Client satisfies it; it must be safe for concurrent use.
type API interface {
	UpdateEngagementContext(ctx context.Context, in *partnercentral.UpdateEngagementContextInput, optFns ...func(*partnercentral.Options)) (*partnercentral.UpdateEngagementContextOutput, error)
	GetEngagement(ctx context.Context, in *partnercentral.GetEngagementInput, optFns ...func(*partnercentral.Options)) (*partnercentral.GetEngagementOutput, error)
}

// Operation names, as reported to Observer.APICall.
const (
	OpUpdate = "UpdateEngagementContext"
	OpGet    = "GetEngagement"
)

// Observer receives the updater's events, for metrics. Its methods are
// called from many goroutines at once and must not block.
type Observer interface {
	// JobDone reports a job's outcome, how long the updater spent on it,
	// and the message's age (since SQS's SentTimestamp; 0 when unknown).
	JobDone(outcome string, took, age time.Duration)
	// APICall reports one Partner Central call: the operation, "OK" or the
	// error code (Classify's view for errors without one: "network",
	// "timeout", "canceled"), and its latency.
	APICall(op, code string, latency time.Duration)
	// Conflicts reports, for a job that met ConflictException, how many
	// re-read-and-retry rounds it took.
	Conflicts(rounds int)
	// LimiterWait reports how long a call waited for its turn under the
	// rate limiter of its class ("write" or "read"), and for the daily
	// write budget.
	LimiterWait(class string, d time.Duration)
	BudgetWait(d time.Duration)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

func (NopObserver) JobDone(string, time.Duration, time.Duration) {}
func (NopObserver) APICall(string, string, time.Duration)        {}
func (NopObserver) Conflicts(int)                                {}
func (NopObserver) LimiterWait(string, time.Duration)            {}
func (NopObserver) BudgetWait(time.Duration)                     {}

// Config holds the updater's collaborators. Writes and Reads are required;
// the rest have defaults.
type Config struct {
	Policy  retry.Policy
	Writes  *retry.Limiter // UpdateEngagementContext, shared by every worker
	Reads   *retry.Limiter // GetEngagement
	Budget  *retry.Budget  // rolling daily write budget; nil: none
	Circuit *retry.Circuit // nil: a default circuit
	// MaxRemembered bounds how many engagements' ModifiedAt and contexts'
	// watermarks are remembered; the least recently written are forgotten
	// first. 0 means 100,000.
	MaxRemembered int
	// StateFile, when set, keeps across restarts the newest version each
	// context was set to, so that a restarted worker does not write an
	// older version over it (see stateFile). "": memory only.
	StateFile string
	Observer  Observer
	Logger    *slog.Logger
}

// Updater applies jobs: it is the queue.Handler of pcsync. It is safe for
// concurrent use; the queue guarantees that one engagement's jobs never run
// at the same time.
type Updater struct {
	api     API
	dec     *Decoder
	cfg     Config
	obs     Observer
	log     *slog.Logger
	circuit *retry.Circuit

	// modifiedAt is the engagement's ModifiedAt as last returned to us,
	// by engagement key: the timestamp for its next write.
	modifiedAt *boundedMap[string]
	// watermark is the SourceUpdatedAt of the last job applied to a
	// context: an older job for it is stale.
	watermark *boundedMap[time.Time]
	// appliedIDs are the messages this worker applied (or found applied):
	// a delivery of one of them again is acknowledged without a call.
	appliedIDs *boundedMap[struct{}]
	// intended is the newest SourceUpdatedAt this worker set out to write
	// to a context, kept in the state file across restarts: an older job
	// is stale even when the newer one's write never got through (its
	// message comes back and is written then).
	intended *boundedMap[time.Time]
	state    *stateFile
}

// New returns an updater calling api.
func New(api API, dec *Decoder, cfg Config) (*Updater, error) {
	if cfg.Writes == nil || cfg.Reads == nil {
		return nil, errors.New("updater: Config.Writes and Config.Reads are required")
	}
	if cfg.Policy == (retry.Policy{}) {
		cfg.Policy = retry.DefaultPolicy()
	}
	if cfg.MaxRemembered <= 0 {
		cfg.MaxRemembered = 100_000
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Circuit == nil {
		cfg.Circuit = retry.NewCircuit(retry.CircuitConfig{Logger: cfg.Logger})
	}
	u := &Updater{
		api: api, dec: dec, cfg: cfg, obs: cfg.Observer, log: cfg.Logger, circuit: cfg.Circuit,
		modifiedAt: newBoundedMap[string](cfg.MaxRemembered),
		watermark:  newBoundedMap[time.Time](cfg.MaxRemembered),
		appliedIDs: newBoundedMap[struct{}](cfg.MaxRemembered),
		intended:   newBoundedMap[time.Time](cfg.MaxRemembered),
	}
	if cfg.StateFile != "" {
		st, err := openState(cfg.StateFile, cfg.MaxRemembered, u.intended)
		if err != nil {
			return nil, err
		}
		u.state = st
	}
	return u, nil
}

// maxRequeueDelay keeps a requeue inside SQS's 12-hour visibility limit.
const maxRequeueDelay = 12*time.Hour - 5*time.Minute

// maxClockSkew is how far in the future a SourceUpdatedAt may be.
const maxClockSkew = 5 * time.Minute

// Close releases the state file.
func (u *Updater) Close() error {
	if u.state == nil {
		return nil
	}
	return u.state.close()
}

// intend records that the newest job of a context is about to be written.
// It returns an error only when the state file cannot be written: the job
// is then not written either, so that no write escapes the file.
func (u *Updater) intend(ck string, src time.Time) error {
	if src.IsZero() {
		return nil
	}
	newer := false
	u.intended.update(ck, func(old time.Time, found bool) time.Time {
		if found && !src.After(old) {
			return old
		}
		newer = true
		return src
	})
	if !newer || u.state == nil {
		return nil
	}
	return u.state.record(ck, src, u.intended)
}

// decoded is what Key leaves on a message for Handle.
type decoded struct {
	job *Job
	err error
}

// Key decodes the job and names its lane: the engagement. An invalid job
// gets a lane of its own and is dead-lettered by Handle.
func (u *Updater) Key(m *queue.Message) string {
	job, err := u.dec.Decode([]byte(m.Body))
	m.Value = decoded{job: job, err: err}
	if err != nil {
		return ""
	}
	return EngagementKey(&job.Input)
}

// EngagementKey names an engagement whichever way a job identifies it
// (its id or its ARN, whose last segment is the id), with its catalog:
// "Sandbox/eng-abcdefghij1234". It is the queue lane and the FIFO message
// group of the job.
func EngagementKey(in *partnercentral.UpdateEngagementContextInput) string {
	id := aws.ToString(in.EngagementIdentifier)
	if i := strings.LastIndexByte(id, '/'); strings.HasPrefix(id, "arn:") && i >= 0 {
		id = id[i+1:]
	}
	return aws.ToString(in.Catalog) + "/" + id
}

func contextKey(in *partnercentral.UpdateEngagementContextInput) string {
	return EngagementKey(in) + "/" + aws.ToString(in.ContextIdentifier)
}

// pending is one message of a batch on its way to an outcome.
type pending struct {
	i     int
	m     *queue.Message
	job   *Job
	fresh time.Time
}

// Handle applies one lane's batch: every job of one engagement that was
// waiting. Jobs for the same context are coalesced: only the newest is
// written, and the older ones are acknowledged once it is applied.
func (u *Updater) Handle(ctx context.Context, batch []*queue.Message) []queue.Outcome {
	start := time.Now()
	out := make([]queue.Outcome, len(batch))
	var order []string
	groups := map[string][]pending{}
	for i, m := range batch {
		d, ok := m.Value.(decoded)
		if !ok {
			job, err := u.dec.Decode([]byte(m.Body))
			d = decoded{job: job, err: err}
		}
		if d.err == nil && d.job.SourceUpdatedAt.After(start.Add(maxClockSkew)) {
			// A timestamp from the future would make every later, correct
			// version of the context look stale for the life of the process
			// (a CRM exporting local time with a Z, say).
			d.err = fmt.Errorf("invalid job: SourceUpdatedAt: %s is in the future (now %s)",
				d.job.SourceUpdatedAt.UTC().Format(time.RFC3339), start.UTC().Format(time.RFC3339))
		}
		if d.err != nil {
			out[i] = queue.DeadLetter(ClassInvalidJob, d.err.Error())
			u.jobDone(m, OutcomeDeadLettered, start)
			continue
		}
		ck := contextKey(&d.job.Input)
		if _, seen := groups[ck]; !seen {
			order = append(order, ck)
		}
		fresh := d.job.SourceUpdatedAt
		if fresh.IsZero() {
			fresh = m.SentAt
		}
		groups[ck] = append(groups[ck], pending{i: i, m: m, job: d.job, fresh: fresh})
	}
	for _, ck := range order {
		u.handleContext(ctx, ck, groups[ck], out, start)
	}
	return out
}

// handleContext settles every job of one context: the newest is applied,
// the rest follow its fate.
func (u *Updater) handleContext(ctx context.Context, ck string, jobs []pending, out []queue.Outcome, start time.Time) {
	// Newest first; on a tie the later received wins.
	slices.SortStableFunc(jobs, func(a, b pending) int {
		if c := b.fresh.Compare(a.fresh); c != 0 {
			return c
		}
		return b.i - a.i
	})
	done := func(p pending, o queue.Outcome, outcome string) {
		out[p.i] = o
		u.jobDone(p.m, outcome, start)
	}
	// First settle what needs no call: a message this worker already
	// applied (SQS delivers at least once), and versions no newer than the
	// one last applied to the context (a standard queue reorders).
	wm, haveWM := u.watermark.get(ck)
	intent, haveIntent := u.intended.get(ck)
	live := jobs[:0:0]
	for _, p := range jobs {
		src := p.job.SourceUpdatedAt
		switch {
		case u.appliedIDs.has(p.m.ID):
			done(p, queue.Ack(), OutcomeAlreadyApplied)
		case haveIntent && !src.IsZero() && src.Before(intent):
			done(p, queue.Ack(), OutcomeStale)
			u.messageLog(p.m, p.job).Info("stale job skipped: a newer one was already written", "source_updated_at", src, "newer", intent)
		case haveWM && !src.IsZero() && src.Before(wm):
			done(p, queue.Ack(), OutcomeStale)
			u.messageLog(p.m, p.job).Info("stale job skipped: a newer one was already applied", "source_updated_at", src, "applied", wm)
		case haveWM && !src.IsZero() && src.Equal(wm):
			// The version already applied, sent again.
			done(p, queue.Ack(), OutcomeAlreadyApplied)
		default:
			live = append(live, p)
		}
	}
	for n, p := range live {
		log := u.messageLog(p.m, p.job)
		if err := u.intend(ck, p.job.SourceUpdatedAt); err != nil {
			log.Error("cannot record the version about to be written; the job goes back to the queue", "error", err)
			for _, q := range live[n:] {
				done(q, queue.RetryAfter(u.cfg.Policy.RequeueDelay(q.m.ReceiveCount)), OutcomeRetried)
			}
			return
		}
		r := u.apply(ctx, p.m, p.job, log)
		switch r.outcome {
		case OutcomeApplied, OutcomeAlreadyApplied:
			if src := p.job.SourceUpdatedAt; !src.IsZero() {
				u.watermark.update(ck, func(old time.Time, found bool) time.Time {
					if found && old.After(src) {
						return old
					}
					return src
				})
			}
			u.appliedIDs.put(p.m.ID, struct{}{})
			done(p, queue.Ack(), r.outcome)
			for _, q := range live[n+1:] {
				u.appliedIDs.put(q.m.ID, struct{}{})
				done(q, queue.Ack(), OutcomeCoalesced)
			}
			return
		case OutcomeDeadLettered:
			// This version can never be applied; an older one still may.
			// The queue logs the dead letter with its reason.
			done(p, queue.DeadLetter(r.class, r.reason), OutcomeDeadLettered)
		case OutcomeRetried:
			for _, q := range live[n:] {
				done(q, queue.RetryAfter(r.delay), OutcomeRetried)
			}
			log.Info("job sent back to the queue", "reason", r.reason, "retry_in", r.delay)
			return
		default:
			// Abandoned: the worker is stopping. The outcomes stay unset,
			// so the queue lets these messages reappear for another worker.
			for _, q := range live[n:] {
				u.jobDone(q.m, OutcomeAbandoned, start)
			}
			return
		}
	}
}

func (u *Updater) jobDone(m *queue.Message, outcome string, start time.Time) {
	now := time.Now()
	var age time.Duration
	if !m.SentAt.IsZero() {
		age = now.Sub(m.SentAt)
	}
	u.obs.JobDone(outcome, now.Sub(start), age)
}

func (u *Updater) messageLog(m *queue.Message, job *Job) *slog.Logger {
	log := u.log.With("message_id", m.ID)
	if job != nil {
		log = log.With("engagement", aws.ToString(job.Input.EngagementIdentifier), "context", aws.ToString(job.Input.ContextIdentifier))
	}
	return log
}

// result is how applying one job ended.
type result struct {
	outcome string
	class   string        // dead letters: the error class
	reason  string        // dead letters and retries
	delay   time.Duration // retries
}

// apply writes one job, healing stale timestamps, until it is applied, is
// found already applied, fails for good, or is sent back for later.
func (u *Updater) apply(ctx context.Context, m *queue.Message, job *Job, log *slog.Logger) result {
	in := job.Input
	eng := EngagementKey(&in)
	a := attempt{u: u, ctx: ctx, m: m, log: log, deadline: time.Now().Add(u.cfg.Policy.AttemptBudget)}
	// The best known timestamp: the job's own, unless this worker has
	// since seen a newer one for the engagement (its own last write, most
	// often). ModifiedAt only moves forward, so the newer is the better
	// guess, and the job's own would be a sure conflict.
	ts := in.EngagementLastModifiedAt
	if known, ok := u.modifiedAt.get(eng); ok && (ts == nil || newer(known, *ts)) {
		ts = aws.String(known)
	}
	// A message delivered before may have been applied by that delivery
	// (by this worker before a restart, or by another): read first, so
	// that it is found applied instead of written again.
	needRead := ts == nil || m.ReceiveCount > 1
	for {
		if needRead {
			ge, err := u.getEngagement(ctx, &in)
			if err != nil {
				if r, stop := a.failed(err, OpGet); stop {
					return r
				}
				continue
			}
			needRead = false
			if ge.ModifiedAt != nil {
				u.modifiedAt.put(eng, *ge.ModifiedAt)
			}
			if Holds(ge, &in) {
				// Written before: by a response lost on the way back, by an
				// earlier delivery of this message, or by someone else.
				a.reportConflicts()
				return result{outcome: OutcomeAlreadyApplied}
			}
			ts = ge.ModifiedAt
			if a.conflicts > 0 && !a.wait(u.cfg.Policy.ConflictWait(a.conflicts)) {
				return result{outcome: OutcomeAbandoned}
			}
		}
		in.EngagementLastModifiedAt = ts
		outp, err := u.updateContext(ctx, &in)
		if err == nil {
			if outp.EngagementLastModifiedAt != nil {
				u.modifiedAt.put(eng, *outp.EngagementLastModifiedAt)
			}
			a.reportConflicts()
			return result{outcome: OutcomeApplied}
		}
		if retry.Classify(ctx, err) == retry.Conflict {
			a.conflicts++
			if a.conflicts > u.cfg.Policy.MaxConflictRetries {
				a.reportConflicts()
				return a.requeue("engagement keeps changing: " + retry.Reason(err))
			}
			needRead = true
			continue
		}
		var spent *budgetSpentError
		if errors.As(err, &spent) {
			return result{outcome: OutcomeRetried, reason: err.Error(), delay: min(spent.wait+time.Duration(rand.Int64N(int64(time.Minute))), maxRequeueDelay)}
		}
		r, stop := a.failed(err, OpUpdate)
		if stop {
			return r
		}
		// A write whose answer never came may have been applied: read
		// before writing again, so that a lost response costs a cheap read
		// instead of a conflicting write.
		needRead = needRead || ambiguous(err)
	}
}

// newer says whether timestamp a is after b. An unreadable one is never
// newer: the job's own then stands.
func newer(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.After(tb)
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

// attempt is the retry state of one job.
type attempt struct {
	u         *Updater
	ctx       context.Context
	m         *queue.Message
	log       *slog.Logger
	deadline  time.Time
	backoff   interface{ NextBackOff() time.Duration }
	conflicts int
	// systemic: the job met a systemic error while the circuit had
	// closed systemicCloses times.
	systemic       bool
	systemicCloses uint64
}

// failed decides what a failed call means for the job: stop with a result,
// or (after any wait) try again.
func (a *attempt) failed(err error, op string) (result, bool) {
	class := retry.Classify(a.ctx, err)
	switch class {
	case retry.Permanent:
		return result{outcome: OutcomeDeadLettered, class: deadLetterClass(err), reason: retry.Reason(err)}, true
	case retry.Canceled:
		return result{outcome: OutcomeAbandoned}, true
	case retry.Systemic:
		// The circuit is open now; the next call waits in Circuit.Acquire
		// until a probe gets through. The job is held meanwhile, never
		// dead-lettered: it is not at fault. Unless the circuit closed
		// since this job last met the error: other jobs go through, so
		// the refusal is this job's own (a catalog or an engagement the
		// role may not touch), and holding it would stall everyone.
		closes := a.u.circuit.Closes()
		if a.systemic && closes > a.systemicCloses {
			return result{outcome: OutcomeDeadLettered, class: deadLetterClass(err), reason: retry.Reason(err)}, true
		}
		a.systemic, a.systemicCloses = true, closes
		// Step aside until just past the next probe, so that another
		// held job, not this one again, tells whether the service is
		// back; if this job is the only one refused, that is how it
		// finds out.
		if d := time.Until(a.u.circuit.NextProbe()); d > 0 && !a.wait(d+time.Duration(rand.Int64N(int64(50*time.Millisecond)))) {
			return result{outcome: OutcomeAbandoned}, true
		}
		return result{}, false
	case retry.Throttle:
		// The limiter has already slowed down; the next call waits its
		// turn there. Only the job's time budget bounds the retries.
		if time.Now().After(a.deadline) {
			return a.requeue("throttled for the whole attempt budget"), true
		}
		return result{}, false
	}
	// Transient (and a conflict from a read, which cannot happen).
	if a.backoff == nil {
		a.backoff = a.u.cfg.Policy.Backoff()
	}
	d := a.backoff.NextBackOff()
	if d < 0 || time.Now().Add(d).After(a.deadline) {
		return a.requeue(op + " kept failing: " + retry.Reason(err)), true
	}
	a.log.Debug("call failed, retrying", "operation", op, "error", retry.Reason(err), "wait", d)
	if !a.wait(d) {
		return result{outcome: OutcomeAbandoned}, true
	}
	return result{}, false
}

func (a *attempt) requeue(reason string) result {
	return result{outcome: OutcomeRetried, reason: reason, delay: a.u.cfg.Policy.RequeueDelay(a.m.ReceiveCount)}
}

func (a *attempt) reportConflicts() {
	if a.conflicts > 0 {
		a.u.obs.Conflicts(a.conflicts)
	}
}

// wait pauses for d, or until the job's context ends (false).
func (a *attempt) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-a.ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// updateContext makes one UpdateEngagementContext call under the circuit,
// the daily budget and the write limiter.
func (u *Updater) updateContext(ctx context.Context, in *partnercentral.UpdateEngagementContextInput) (*partnercentral.UpdateEngagementContextOutput, error) {
	var out *partnercentral.UpdateEngagementContextOutput
	err := u.call(ctx, OpUpdate, u.cfg.Writes, true, func() error {
		var err error
		out, err = u.api.UpdateEngagementContext(ctx, in)
		return err
	})
	return out, err
}

// getEngagement reads the engagement a job updates, under the circuit and
// the read limiter.
func (u *Updater) getEngagement(ctx context.Context, in *partnercentral.UpdateEngagementContextInput) (*partnercentral.GetEngagementOutput, error) {
	var out *partnercentral.GetEngagementOutput
	err := u.call(ctx, OpGet, u.cfg.Reads, false, func() error {
		var err error
		out, err = u.api.GetEngagement(ctx, &partnercentral.GetEngagementInput{Catalog: in.Catalog, Identifier: in.EngagementIdentifier})
		return err
	})
	return out, err
}

func (u *Updater) call(ctx context.Context, op string, lim *retry.Limiter, write bool, fn func() error) error {
	probe, err := u.circuit.Acquire(ctx)
	if err != nil {
		return err
	}
	if write && u.cfg.Budget != nil {
		if d := u.cfg.Budget.Delay(); d > maxBudgetHold {
			// Hours, maybe: hand the job back for then rather than hold
			// it (and heartbeat it) that long.
			u.circuit.Record(probe, retry.Canceled, "")
			return &budgetSpentError{wait: d}
		}
		waited, err := u.cfg.Budget.Take(ctx)
		u.obs.BudgetWait(waited)
		if err != nil {
			u.circuit.Record(probe, retry.Canceled, "")
			return err
		}
	}
	sentAt, waited, err := lim.Wait(ctx)
	class := "read"
	if write {
		class = "write"
	}
	u.obs.LimiterWait(class, waited)
	if err != nil {
		u.circuit.Record(probe, retry.Canceled, "")
		return err
	}
	start := time.Now()
	err = fn()
	latency := time.Since(start)
	errClass := retry.Classify(ctx, err)
	lim.Done(sentAt, errClass == retry.Throttle)
	u.circuit.Record(probe, errClass, errorCode(err))
	u.obs.APICall(op, codeOf(err, errClass), latency)
	return err
}

// Dead-letter classes: what an operator filters the DLQ by.
const (
	ClassInvalidJob = "invalid_job"    // the body breaks the API model's rules; never sent
	ClassRejected   = "api_validation" // the service's ValidationException
	ClassNotFound   = "not_found"      // the engagement or context does not exist
	ClassAPIError   = "api_error"      // another error the service says is the request's
	ClassDenied     = "access_denied"  // refused for this job alone while others go through
)

func deadLetterClass(err error) string {
	var validation *types.ValidationException
	var notFound *types.ResourceNotFoundException
	switch {
	case errors.As(err, &validation):
		return ClassRejected
	case errors.As(err, &notFound):
		return ClassNotFound
	}
	var denied *types.AccessDeniedException
	if errors.As(err, &denied) {
		return ClassDenied
	}
	return ClassAPIError
}

// maxBudgetHold is the longest a job waits, held, for room in the daily
// write budget; a longer wait sends it back to the queue for then.
const maxBudgetHold = time.Minute

// budgetSpentError says the daily write budget has no room for a while.
type budgetSpentError struct{ wait time.Duration }

func (e *budgetSpentError) Error() string {
	return fmt.Sprintf("daily write budget spent; room again in %v", e.wait.Round(time.Second))
}

// errorCode is the API's error code, or "" when the error has none.
func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func codeOf(err error, class retry.Class) string {
	if err == nil {
		return "OK"
	}
	if c := errorCode(err); c != "" {
		return c
	}
	switch class {
	case retry.Canceled:
		return "canceled"
	case retry.Transient:
		var send *smithyhttp.RequestSendError
		if errors.As(err, &send) {
			return "network"
		}
		return "timeout"
	}
	return "client"
}

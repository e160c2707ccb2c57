package updater

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/retry"
)

// apply writes one job, healing stale timestamps, until it is applied, is
// found in place, or decide ends its turn: sent back for later,
// dead-lettered, or abandoned.
//
// prio is the priority its calls take under the rate limiters: the highest
// of the jobs it stands for (coalesce.go). claim, when the versions are a
// fleet's (Config.Claims), is this worker's hold on the context: every write is
// made under it.
func (u *Updater) apply(ctx context.Context, d *Delivery, prio int, job *Job, log *slog.Logger, claim Claim) Verdict {
	in := job.Input
	eng := EngagementKey(&in)
	a := newAttempt(u.cfg.Policy, d.ReceiveCount, time.Now())
	// The best known timestamp: the job's own, unless this worker has
	// since seen a newer one for the engagement (its own last write, most
	// often). ModifiedAt only moves forward, so the newer is the better
	// guess, and the job's own would be a sure conflict.
	ts := in.EngagementLastModifiedAt
	if known, ok := u.modifiedAt.get(eng); ok && (ts == nil || newer(known, *ts)) {
		ts = aws.String(known)
	}
	// What to compare the job with before writing: the engagement as read
	// moments ago for another of its jobs, or a read now when the job
	// needs one or reading first pays (readfirst.go). A message delivered
	// before may have been applied by that delivery (by this worker before
	// a restart, or by another): it is read, so that it is found in place
	// instead of written again.
	seen := u.freshView(eng, time.Now())
	switch {
	case seen == nil:
	case ts != nil && (seen.ModifiedAt == nil || newer(*ts, *seen.ModifiedAt)):
		// The job's own timestamp says the engagement changed since that
		// read: it cannot tell what the context holds now.
		seen = nil
	case findContext(seen, aws.ToString(in.ContextIdentifier)) == nil:
		// This worker wrote the context since that read (wrote): what
		// it holds now is not in the view.
		seen = nil
	}
	// A job that appends a Lead interaction needs a read (unless the view
	// above holds its context): the service appends every interaction it
	// is sent, so whether this one is already listed must be known before
	// the write, even when a timestamp to write with is at hand (this
	// worker's own last write gave one).
	needRead := ts == nil || d.ReceiveCount > 1 || interactionOf(job) != nil
	read := seen == nil && (needRead || u.reads.readFirst())
	wrote := false
	for {
		op, err := OpUpdate, error(nil)
		if read {
			op = OpGet
			var ge *partnercentral.GetEngagementOutput
			ge, err = u.getEngagement(ctx, prio, &in, !needRead && !wrote)
			switch {
			case err == nil && ge.ModifiedAt == nil:
				// Nothing to write with; the service always says.
				err = errNoModifiedAt
			case err == nil:
				read, seen = false, ge
				u.views.put(eng, view{ge: ge, at: time.Now()})
				u.modifiedAt.put(eng, *ge.ModifiedAt)
			case errors.Is(err, errReadSkipped):
				read, err = false, nil
			}
		}
		if seen != nil {
			holds := Holds(seen, &in)
			if !wrote {
				u.reads.observe(holds)
			}
			if holds {
				a.reportConflicts(u.obs)
				if !wrote && a.conflicts == 0 && d.ReceiveCount <= 1 {
					// The context held the payload before this job came:
					// a record the CRM sent again. Nothing to write.
					return Verdict{Outcome: OutcomeUnchanged}
				}
				// Written before: by a response lost on the way back, by
				// an earlier delivery of this message, or by someone else.
				return Verdict{Outcome: OutcomeAlreadyApplied}
			}
			if seen.ModifiedAt != nil && (ts == nil || !newer(*ts, *seen.ModifiedAt)) {
				ts = seen.ModifiedAt
			}
			in = withoutRepeatedInteraction(seen, in)
			seen = nil
		}
		if err == nil && ts == nil {
			// Nothing to write with (cannot happen: a read only this job's
			// economy asked for is the only one skipped, and such a job
			// has a timestamp). Read, after a backoff.
			op, err, read, needRead = OpGet, errNoModifiedAt, true, true
		}
		if err == nil {
			op = OpUpdate
			in.EngagementLastModifiedAt = ts
			wrote = true
			out, werr := u.updateContext(ctx, prio, &in, claim)
			if werr == nil {
				if out.EngagementLastModifiedAt != nil {
					u.modifiedAt.put(eng, *out.EngagementLastModifiedAt)
				}
				u.wrote(eng, aws.ToString(in.ContextIdentifier), out.EngagementLastModifiedAt)
				a.reportConflicts(u.obs)
				return Verdict{Outcome: OutcomeApplied}
			}
			// A failed write may have been applied (a lost response) or
			// met someone else's: the engagement's last read no longer
			// says what it holds.
			u.views.remove(eng)
			err = werr
		}
		s := decide(ctx, err, op, a, circuitView{closes: u.circuit.Closes(), nextProbe: u.circuit.NextProbe()}, time.Now())
		switch s.kind {
		case stepSendBack:
			if a.conflicts > a.policy.MaxConflictRetries {
				a.reportConflicts(u.obs)
			}
			return verdictOf(s)
		case stepDeadLetter, stepAbandon:
			return verdictOf(s)
		case stepReread:
			read, needRead = true, true
		}
		if s.wait > 0 {
			log.Debug("call failed, trying again", "operation", op, "step", s.kind.String(), "error", err, "wait", s.wait)
			wctx, endWait := u.waitContext(ctx)
			slept := retry.Sleep(wctx, s.wait)
			endWait()
			if !slept {
				if err := u.waitError(ctx, wctx.Err()); errors.Is(err, errHandBack) {
					return verdictOf(decide(ctx, err, op, a, circuitView{}, time.Now()))
				}
				return Verdict{Outcome: OutcomeAbandoned}
			}
		}
	}
}

func (a *attempt) reportConflicts(obs Observer) {
	if a.conflicts > 0 {
		obs.Conflicts(a.conflicts)
	}
}

// newer says whether timestamp a is after b. An unreadable one is never
// newer: the job's own then stands.
func newer(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.After(tb)
}

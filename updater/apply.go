package updater

import (
	"context"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
)

// apply writes one job, healing stale timestamps, until it is applied, is
// found already applied, or decide ends its turn: sent back for later,
// dead-lettered, or abandoned.
func (u *Updater) apply(ctx context.Context, d *Delivery, job *Job, log *slog.Logger) Verdict {
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
	// A message delivered before may have been applied by that delivery
	// (by this worker before a restart, or by another): read first, so
	// that it is found applied instead of written again.
	read := ts == nil || d.ReceiveCount > 1
	for {
		op, err := OpUpdate, error(nil)
		if read {
			op = OpGet
			var ge *partnercentral.GetEngagementOutput
			if ge, err = u.getEngagement(ctx, &in); err == nil {
				read = false
				if ge.ModifiedAt != nil {
					u.modifiedAt.put(eng, *ge.ModifiedAt)
				}
				if Holds(ge, &in) {
					// Written before: by a response lost on the way back,
					// by an earlier delivery of this message, or by
					// someone else.
					a.reportConflicts(u.obs)
					return Verdict{Outcome: OutcomeAlreadyApplied}
				}
				ts = ge.ModifiedAt
				op = OpUpdate
			}
		}
		if err == nil {
			in.EngagementLastModifiedAt = ts
			out, werr := u.updateContext(ctx, &in)
			if werr == nil {
				if out.EngagementLastModifiedAt != nil {
					u.modifiedAt.put(eng, *out.EngagementLastModifiedAt)
				}
				a.reportConflicts(u.obs)
				return Verdict{Outcome: OutcomeApplied}
			}
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
			read = true
		}
		if s.wait > 0 {
			log.Debug("call failed, trying again", "operation", op, "step", s.kind.String(), "error", err, "wait", s.wait)
			if !sleep(ctx, s.wait) {
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

// sleep pauses for d, or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// newer says whether timestamp a is after b. An unreadable one is never
// newer: the job's own then stands.
func newer(a, b string) bool {
	ta, err1 := time.Parse(time.RFC3339Nano, a)
	tb, err2 := time.Parse(time.RFC3339Nano, b)
	return err1 == nil && err2 == nil && ta.After(tb)
}

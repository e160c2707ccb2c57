package updater

import (
	"context"
	"errors"
	"slices"
	"time"
)

// This file is coalescing: the jobs of one batch (every job of one
// engagement that was waiting) are grouped by context; per context only the
// newest is written, and the older ones follow its fate. Versions no newer
// than one already applied or written are settled without a call.

// pending is one delivery of a batch on its way to a verdict.
type pending struct {
	i     int // its place in the batch
	d     *Delivery
	job   *Job
	fresh time.Time // its version: SourceUpdatedAt, else when it was sent
}

// Apply applies one batch of deliveries (the caller keeps one engagement's
// batches from running at the same time) and returns one verdict per
// delivery, in order. ctx ends only when the worker stops waiting for the
// batch (the drain deadline): the jobs still running are then abandoned.
func (u *Updater) Apply(ctx context.Context, batch []Delivery) []Verdict {
	start := time.Now()
	out := make([]Verdict, len(batch))
	settle := func(p pending, v Verdict) {
		out[p.i] = v
		u.jobDone(p.d, v, start)
	}
	var order []string
	groups := map[string][]pending{}
	prio := map[string]int{} // by context: the highest priority (lowest number) of its jobs
	for i := range batch {
		d := &batch[i]
		job, err := u.dec.Decode([]byte(d.Body))
		if err == nil && job.SourceUpdatedAt.After(start.Add(maxClockSkew)) {
			err = &futureError{source: job.SourceUpdatedAt, now: start}
		}
		p := pending{i: i, d: d, job: job}
		if err != nil {
			s := decide(ctx, err, "", newAttempt(u.cfg.Policy, d.ReceiveCount, start), circuitView{}, start)
			settle(p, verdictOf(s))
			continue
		}
		ck := ContextKey(&job.Input)
		if _, seen := groups[ck]; !seen {
			order = append(order, ck)
			prio[ck] = d.Priority
		}
		prio[ck] = min(prio[ck], d.Priority)
		p.fresh = job.SourceUpdatedAt
		if p.fresh.IsZero() {
			p.fresh = d.SentAt
		}
		groups[ck] = append(groups[ck], p)
	}
	// A batch may mix queues (the lane is the engagement's, whichever
	// queue its jobs came from): the contexts of realtime jobs go first,
	// and each context's calls take the highest priority among its jobs.
	slices.SortStableFunc(order, func(a, b string) int { return prio[a] - prio[b] })
	for _, ck := range order {
		u.applyContext(ctx, ck, prio[ck], groups[ck], settle)
	}
	return out
}

// applyContext settles every job of one context: the newest is applied,
// the rest follow its fate.
func (u *Updater) applyContext(ctx context.Context, ck string, prio int, jobs []pending, settle func(pending, Verdict)) {
	// Newest first; on a tie the later received wins.
	slices.SortStableFunc(jobs, func(a, b pending) int {
		if c := b.fresh.Compare(a.fresh); c != 0 {
			return c
		}
		return b.i - a.i
	})
	// First settle what needs no call: a message this worker already
	// applied (SQS delivers at least once), and versions no newer than the
	// one last applied to the context (a standard queue reorders).
	wm, haveWM := u.watermark.get(ck)
	var (
		intent     time.Time
		haveIntent bool
		err        error
	)
	if u.cfg.Claims == nil {
		// With claims there is nothing to ask: the claim of the newest
		// job checks the recorded version in the same step as it takes
		// the context.
		intent, haveIntent, err = u.versions.Intended(ctx, ck)
	}
	if err != nil {
		// Without the newest version intended, an older job might be
		// written over it: every job waits in the queue until the store
		// answers again.
		for _, p := range jobs {
			v := verdictOf(decide(ctx, &stateError{err: err}, OpUpdate, newAttempt(u.cfg.Policy, p.d.ReceiveCount, time.Now()), circuitView{}, time.Now()))
			settle(p, v)
			u.messageLog(p.d, p.job).Info("job sent back to the queue", "reason", v.Reason, "retry_in", v.Delay)
		}
		return
	}
	live := jobs[:0:0]
	for _, p := range jobs {
		src := p.job.SourceUpdatedAt
		switch {
		case u.appliedIDs.has(p.d.ID):
			settle(p, Verdict{Outcome: OutcomeAlreadyApplied})
		case haveIntent && !src.IsZero() && src.Before(intent):
			settle(p, Verdict{Outcome: OutcomeStale})
			u.messageLog(p.d, p.job).Info("stale job skipped: a newer one was already written", "source_updated_at", src, "newer", intent)
		case haveWM && !src.IsZero() && src.Before(wm):
			settle(p, Verdict{Outcome: OutcomeStale})
			u.messageLog(p.d, p.job).Info("stale job skipped: a newer one was already applied", "source_updated_at", src, "applied", wm)
		case haveWM && !src.IsZero() && src.Equal(wm):
			// The version already applied, sent again.
			settle(p, Verdict{Outcome: OutcomeAlreadyApplied})
		default:
			live = append(live, p)
		}
	}
	for n, p := range live {
		log := u.messageLog(p.d, p.job)
		var v Verdict
		claim, err := u.claim(ctx, ck, p.job.SourceUpdatedAt)
		switch {
		case errors.Is(err, ErrSuperseded):
			v = Verdict{Outcome: OutcomeStale}
			log.Info("stale job skipped: another worker set out to write a newer one", "source_updated_at", p.job.SourceUpdatedAt)
		case err != nil:
			v = verdictOf(decide(ctx, &stateError{err: err}, OpUpdate, newAttempt(u.cfg.Policy, p.d.ReceiveCount, time.Now()), circuitView{}, time.Now()))
		default:
			v = u.apply(ctx, p.d, prio, p.job, log, claim)
			// Released even when the worker is stopping, so that the next
			// worker need not wait for the claim to lapse; but not when
			// the job was cut off, maybe mid-call: a request still on its
			// way must not land after another worker's write, so the
			// claim lapses by itself.
			if claim != nil && v.Outcome != OutcomeAbandoned {
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), releaseTimeout)
				if err := claim.Release(rctx); err != nil {
					log.Warn("could not release the context's claim; it lapses by itself", "error", err)
				}
				cancel()
			}
		}
		switch v.Outcome {
		case OutcomeStale:
			// Another worker writes a newer version: this one and the
			// older ones are stale.
			for _, q := range live[n:] {
				settle(q, v)
			}
			return
		case OutcomeApplied, OutcomeUnchanged, OutcomeAlreadyApplied:
			if src := p.job.SourceUpdatedAt; !src.IsZero() {
				u.watermark.update(ck, func(old time.Time, found bool) time.Time {
					if found && old.After(src) {
						return old
					}
					return src
				})
			}
			u.appliedIDs.put(p.d.ID, struct{}{})
			settle(p, v)
			for _, q := range live[n+1:] {
				u.appliedIDs.put(q.d.ID, struct{}{})
				settle(q, Verdict{Outcome: OutcomeCoalesced})
			}
			return
		case OutcomeDeadLettered:
			// This version can never be applied; an older one still may.
			// The queue logs the dead letter with its reason.
			settle(p, v)
		case OutcomeRetried:
			// The older versions go back with it: written before it, they
			// would be stale by the time it is.
			for _, q := range live[n:] {
				settle(q, v)
			}
			log.Info("job sent back to the queue", "reason", v.Reason, "retry_in", v.Delay)
			return
		default:
			// Abandoned: the worker is stopping; these messages reappear
			// for another worker.
			for _, q := range live[n:] {
				settle(q, v)
			}
			return
		}
	}
}

// verdictOf turns a step that ends the job's turn into its verdict.
func verdictOf(s step) Verdict {
	switch s.kind {
	case stepDeadLetter:
		return Verdict{Outcome: OutcomeDeadLettered, Class: s.class, Reason: s.reason}
	case stepSendBack:
		return Verdict{Outcome: OutcomeRetried, Class: s.class, Reason: s.reason, Delay: s.delay}
	}
	return Verdict{Outcome: OutcomeAbandoned}
}

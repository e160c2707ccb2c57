package updater

import (
	"context"
	"errors"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/retry"
)

// This file makes the updater's two calls under everything that guards
// them: the circuit, the daily budget and the rate limiter of their class,
// and reports each to the observer.

// updateContext makes one UpdateEngagementContext call under the circuit,
// the daily budget and the write limiter, and under claim (nil: none).
func (u *Updater) updateContext(ctx context.Context, prio int, in *partnercentral.UpdateEngagementContextInput, claim Claim) (*partnercentral.UpdateEngagementContextOutput, error) {
	var out *partnercentral.UpdateEngagementContextOutput
	err := u.call(ctx, OpUpdate, prio, u.cfg.Writes, u.cfg.Budget, claim, func(ctx context.Context) error {
		var err error
		out, err = u.api.UpdateEngagementContext(ctx, in)
		return err
	})
	return out, err
}

// getEngagement reads the engagement a job updates, under the circuit,
// the daily read budget and the read limiter. optional says the job could
// do without the read (it would only save a write): while the read budget
// is spent, it is skipped (errReadSkipped) rather than waited for.
func (u *Updater) getEngagement(ctx context.Context, prio int, in *partnercentral.UpdateEngagementContextInput, optional bool) (*partnercentral.GetEngagementOutput, error) {
	if optional && u.cfg.ReadBudget != nil && u.cfg.ReadBudget.Delay() > 0 {
		return nil, errReadSkipped
	}
	var out *partnercentral.GetEngagementOutput
	err := u.call(ctx, OpGet, prio, u.cfg.Reads, u.cfg.ReadBudget, nil, func(ctx context.Context) error {
		var err error
		out, err = u.api.GetEngagement(ctx, &partnercentral.GetEngagementInput{Catalog: in.Catalog, Identifier: in.EngagementIdentifier})
		return err
	})
	return out, err
}

// waitContext is ctx, ended too when the worker starts draining: the
// context of a job's waits.
func (u *Updater) waitContext(ctx context.Context) (context.Context, context.CancelFunc) {
	wctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(u.draining, cancel)
	return wctx, func() { stop(); cancel() }
}

// waitError is the error of a wait that ctx's waitContext ended: errHandBack
// when it was the drain, err otherwise.
func (u *Updater) waitError(ctx context.Context, err error) error {
	if ctx.Err() == nil && u.draining.Err() != nil {
		return errHandBack
	}
	return err
}

// errHandBack says the worker started draining while the job waited for
// its turn: it goes back to the queue at once.
var errHandBack = errors.New("worker stopping: handed back while waiting for its turn")

// errReadSkipped says an optional read was not made: the daily read budget
// is spent.
var errReadSkipped = errors.New("read skipped: daily read budget spent")

// call makes one call: it waits for the circuit, for room in the daily
// budget of its class (nil: none), and for its turn under the rate
// limiter, where a job of a higher-priority queue (prio 0 the highest)
// goes before those of lower ones, then reports the call to the limiter,
// the circuit and the observer. Under a claim (nil: none), the call is
// made only while the claim holds, and ends before it may lapse.
//
// Its waits (for the circuit, the budget, a turn) end when the worker
// starts draining (Drain): the job then goes back to the queue at once
// (errHandBack), for another worker, rather than hold the drain.
func (u *Updater) call(ctx context.Context, op string, prio int, lim *retry.Limiter, budget *retry.Budget, claim Claim, fn func(context.Context) error) error {
	wctx, endWait := u.waitContext(ctx)
	defer endWait()
	probe, err := u.circuit.Acquire(wctx)
	if err != nil {
		return u.waitError(ctx, err)
	}
	if claim != nil {
		// Renewed, if it must be, before the budget and the turn are
		// spent: a claim lost here costs neither.
		if _, err := claim.Hold(ctx); err != nil {
			u.circuit.Record(probe, retry.Canceled, nil)
			return &stateError{err: err}
		}
	}
	if budget != nil {
		if d := budget.Delay(); d > maxBudgetHold {
			// Hours, maybe: hand the job back for then rather than hold
			// it (and heartbeat it) that long.
			u.circuit.Record(probe, retry.Canceled, nil)
			return &budgetSpentError{op: op, wait: d}
		}
		waited, err := budget.TakeWithin(wctx, maxBudgetHold)
		if op == OpUpdate {
			u.obs.BudgetWait(waited)
		}
		var long *retry.ErrLongWait
		if errors.As(err, &long) {
			// The fleet spent the room seen a moment ago.
			u.circuit.Record(probe, retry.Canceled, nil)
			return &budgetSpentError{op: op, wait: long.Wait}
		}
		if err != nil {
			u.circuit.Record(probe, retry.Canceled, nil)
			if wctx.Err() == nil {
				// A fleet's budget could not be counted: no call
				// escapes it.
				return &stateError{err: err}
			}
			return u.waitError(ctx, err)
		}
	}
	sentAt, waited, err := lim.WaitPriority(wctx, prio)
	class := "read"
	if op == OpUpdate {
		class = "write"
	}
	u.obs.LimiterWait(class, waited)
	if err != nil {
		u.circuit.Record(probe, retry.Canceled, nil)
		return u.waitError(ctx, err)
	}
	callCtx := ctx
	if claim != nil {
		// Held above; renewed again only if the turn took long.
		deadline, err := claim.Hold(ctx)
		if err != nil {
			u.circuit.Record(probe, retry.Canceled, nil)
			return &stateError{err: err}
		}
		var cancel context.CancelFunc
		callCtx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	start := time.Now()
	err = fn(callCtx)
	latency := time.Since(start)
	errClass := retry.Classify(ctx, err)
	lim.Done(sentAt, errClass == retry.Throttle)
	u.circuit.Record(probe, errClass, err)
	u.obs.APICall(op, codeOf(err, errClass), latency)
	return err
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

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
// the daily budget and the write limiter.
func (u *Updater) updateContext(ctx context.Context, prio int, in *partnercentral.UpdateEngagementContextInput) (*partnercentral.UpdateEngagementContextOutput, error) {
	var out *partnercentral.UpdateEngagementContextOutput
	err := u.call(ctx, OpUpdate, prio, u.cfg.Writes, u.cfg.Budget, func() error {
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
	err := u.call(ctx, OpGet, prio, u.cfg.Reads, u.cfg.ReadBudget, func() error {
		var err error
		out, err = u.api.GetEngagement(ctx, &partnercentral.GetEngagementInput{Catalog: in.Catalog, Identifier: in.EngagementIdentifier})
		return err
	})
	return out, err
}

// errReadSkipped says an optional read was not made: the daily read budget
// is spent.
var errReadSkipped = errors.New("read skipped: daily read budget spent")

// call makes one call: it waits for the circuit, for room in the daily
// budget of its class (nil: none), and for its turn under the rate
// limiter, where a job of a higher-priority queue (prio 0 the highest)
// goes before those of lower ones, then reports the call to the limiter,
// the circuit and the observer.
func (u *Updater) call(ctx context.Context, op string, prio int, lim *retry.Limiter, budget *retry.Budget, fn func() error) error {
	probe, err := u.circuit.Acquire(ctx)
	if err != nil {
		return err
	}
	if budget != nil {
		if d := budget.Delay(); d > maxBudgetHold {
			// Hours, maybe: hand the job back for then rather than hold
			// it (and heartbeat it) that long.
			u.circuit.Record(probe, retry.Canceled, nil)
			return &budgetSpentError{op: op, wait: d}
		}
		waited, err := budget.Take(ctx)
		if op == OpUpdate {
			u.obs.BudgetWait(waited)
		}
		if err != nil {
			u.circuit.Record(probe, retry.Canceled, nil)
			return err
		}
	}
	sentAt, waited, err := lim.WaitPriority(ctx, prio)
	class := "read"
	if op == OpUpdate {
		class = "write"
	}
	u.obs.LimiterWait(class, waited)
	if err != nil {
		u.circuit.Record(probe, retry.Canceled, nil)
		return err
	}
	start := time.Now()
	err = fn()
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

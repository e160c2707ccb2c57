package updater

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/retry"
)

// TestFate is README's "What each API error means for a job", row by row,
// against decide alone: no API, no queue, no clock but the one given.
func TestFate(t *testing.T) {
	p := retry.DefaultPolicy()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	probe := now.Add(5 * time.Second)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	var (
		conflict   = apiError(409, &types.ConflictException{Message: aws.String("stale timestamp")})
		throttle   = apiError(429, &types.ThrottlingException{Message: aws.String("slow down")})
		bare429    = apiError(429, errors.New("too many requests"))
		internal   = apiError(500, &types.InternalServerException{Message: aws.String("oops")})
		bare502    = apiError(502, errors.New("bad gateway"))
		network    = &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}}
		timeout    = &smithy.OperationError{Err: &aws.RequestCanceledError{Err: context.DeadlineExceeded}}
		validation = apiError(400, &types.ValidationException{Message: aws.String("bad"), ErrorList: []types.ValidationExceptionError{{FieldName: aws.String("Payload.CustomerProject.Project.Title"), Message: aws.String("too long")}}})
		notFound   = apiError(404, &types.ResourceNotFoundException{Message: aws.String("no such engagement")})
		denied     = apiError(403, &types.AccessDeniedException{Message: aws.String("not allowed")})
		quota      = apiError(402, &types.ServiceQuotaExceededException{Message: aws.String("over quota")})
		proxy404   = apiError(404, errors.New("<html>not found</html>"))
		badJob     = &InvalidJobError{Violations: nil}
	)

	tests := []struct {
		name  string
		err   error
		op    string
		ctx   context.Context
		setup func(a *attempt, cv *circuitView)
		// want
		kind    stepKind
		class   string
		reason  string        // a part of the reason
		minWait time.Duration // retry, hold, re-read: the wait's bounds
		maxWait time.Duration
	}{
		// conflict
		{name: "conflict: re-read and write again", err: conflict, op: OpUpdate,
			kind: stepReread, maxWait: p.InitialBackoff / 5 * 3 / 2},
		{name: "conflict: back to the queue after MaxConflictRetries rounds", err: conflict, op: OpUpdate,
			setup: func(a *attempt, _ *circuitView) { a.conflicts = p.MaxConflictRetries },
			kind:  stepSendBack, class: SendBackConflicts, reason: "engagement keeps changing: ConflictException"},
		// throttle
		{name: "throttle: again in the limiter's turn", err: throttle, op: OpUpdate, kind: stepRetry},
		{name: "bare 429: a throttle", err: bare429, op: OpGet, kind: stepRetry},
		{name: "throttle: back to the queue after the attempt budget", err: throttle, op: OpUpdate,
			setup: func(a *attempt, _ *circuitView) { a.deadline = now.Add(-time.Second) },
			kind:  stepSendBack, class: SendBackThrottled, reason: "throttled for the whole attempt budget"},
		// transient
		{name: "500 on a write: back off, then read first", err: internal, op: OpUpdate,
			kind: stepReread, minWait: p.InitialBackoff / 2, maxWait: p.InitialBackoff * 3 / 2},
		{name: "500 on a read: back off and read again", err: internal, op: OpGet,
			kind: stepRetry, minWait: p.InitialBackoff / 2, maxWait: p.InitialBackoff * 3 / 2},
		{name: "network error on a write: read first", err: network, op: OpUpdate,
			kind: stepReread, minWait: p.InitialBackoff / 2, maxWait: p.InitialBackoff * 3 / 2},
		{name: "timeout on a write: read first", err: timeout, op: OpUpdate,
			kind: stepReread, minWait: p.InitialBackoff / 2, maxWait: p.InitialBackoff * 3 / 2},
		{name: "a proxy's 502 on a write: never reached the service, write again", err: bare502, op: OpUpdate,
			kind: stepRetry, minWait: p.InitialBackoff / 2, maxWait: p.InitialBackoff * 3 / 2},
		{name: "transient: back to the queue when the budget runs out", err: internal, op: OpUpdate,
			setup: func(a *attempt, _ *circuitView) { a.deadline = now.Add(time.Millisecond) },
			kind:  stepSendBack, class: SendBackFailing, reason: "UpdateEngagementContext kept failing: InternalServerException"},
		// permanent
		{name: "validation: DLQ with every field", err: validation, op: OpUpdate,
			kind: stepDeadLetter, class: ClassRejected, reason: "Payload.CustomerProject.Project.Title: too long"},
		{name: "not found: DLQ", err: notFound, op: OpGet, kind: stepDeadLetter, class: ClassNotFound, reason: "no such engagement"},
		// systemic
		{name: "access denied: held until the next probe", err: denied, op: OpUpdate,
			kind: stepHold, minWait: 5 * time.Second, maxWait: 5*time.Second + 50*time.Millisecond},
		{name: "service quota: held", err: quota, op: OpUpdate,
			kind: stepHold, minWait: 5 * time.Second, maxWait: 5*time.Second + 50*time.Millisecond},
		{name: "a proxy's 404 page: held, never the DLQ", err: proxy404, op: OpUpdate,
			kind: stepHold, minWait: 5 * time.Second, maxWait: 5*time.Second + 50*time.Millisecond},
		{name: "probe due: call again at once", err: denied, op: OpUpdate,
			setup: func(_ *attempt, cv *circuitView) { cv.nextProbe = now.Add(-time.Second) },
			kind:  stepHold},
		{name: "refused again after the circuit closed: its own refusal, DLQ", err: denied, op: OpUpdate,
			setup: func(a *attempt, cv *circuitView) { a.systemic, a.systemicCloses, cv.closes = true, 1, 2 },
			kind:  stepDeadLetter, class: ClassDenied, reason: "AccessDeniedException"},
		{name: "refused again, circuit never closed: still held", err: denied, op: OpUpdate,
			setup: func(a *attempt, cv *circuitView) { a.systemic, a.systemicCloses, cv.closes = true, 1, 1 },
			kind:  stepHold, minWait: 5 * time.Second, maxWait: 5*time.Second + 50*time.Millisecond},
		// the job's own errors and the worker's
		{name: "invalid body: DLQ before any call", err: badJob, kind: stepDeadLetter, class: ClassInvalidJob, reason: "invalid job"},
		{name: "SourceUpdatedAt in the future: DLQ", err: &futureError{source: now.Add(time.Hour), now: now},
			kind: stepDeadLetter, class: ClassInvalidJob, reason: "SourceUpdatedAt: 2026-11-30T13:00:00Z is in the future"},
		{name: "daily budget spent: back to the queue for then", err: &budgetSpentError{op: OpUpdate, wait: 3 * time.Hour}, op: OpUpdate,
			kind: stepSendBack, class: SendBackWriteBudget, reason: "daily write budget spent"},
		{name: "daily read budget spent: back to the queue for then", err: &budgetSpentError{op: OpGet, wait: time.Hour}, op: OpGet,
			kind: stepSendBack, class: SendBackReadBudget, reason: "daily read budget spent"},
		{name: "state file unwritable: back to the queue, no write", err: &stateError{err: errors.New("disk full")}, op: OpUpdate,
			kind: stepSendBack, class: SendBackState, reason: "disk full"},
		{name: "context claimed by another worker: back to the queue, no write", err: &ClaimedError{Holder: "w2", Until: now.Add(time.Minute)}, op: OpUpdate,
			kind: stepSendBack, class: SendBackClaimed, reason: "being written by another worker (w2)"},
		{name: "worker draining while the job waits for its turn: back to the queue now", err: errHandBack, op: OpUpdate,
			kind: stepSendBack, class: SendBackDraining, reason: "handed back while waiting for its turn"},
		{name: "worker stopping: abandon", err: context.Canceled, op: OpUpdate, ctx: canceled, kind: stepAbandon},
		{name: "worker stopping mid-call: abandon, whatever the error", err: network, op: OpUpdate, ctx: canceled, kind: stepAbandon},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAttempt(p, 1, now)
			cv := circuitView{nextProbe: probe}
			if tt.setup != nil {
				tt.setup(a, &cv)
			}
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			got := decide(ctx, tt.err, tt.op, a, cv, now)
			if got.kind != tt.kind {
				t.Fatalf("step: got %v (%+v), want %v", got.kind, got, tt.kind)
			}
			if got.class != tt.class {
				t.Errorf("class: got %q, want %q", got.class, tt.class)
			}
			if !strings.Contains(got.reason, tt.reason) {
				t.Errorf("reason: got %q, want it to contain %q", got.reason, tt.reason)
			}
			if got.wait < tt.minWait || got.wait > tt.maxWait {
				t.Errorf("wait: got %v, want %v to %v", got.wait, tt.minWait, tt.maxWait)
			}
			if got.kind == stepSendBack && tt.err != errHandBack && (got.delay <= 0 || got.delay > maxRequeueDelay) {
				t.Errorf("send-back delay: got %v, want within (0, %v]", got.delay, maxRequeueDelay)
			}
			if tt.err == errHandBack && got.delay != 0 {
				t.Errorf("hand-back delay: got %v, want 0 (visible again at once, for another worker)", got.delay)
			}
		})
	}
}

// TestFateSendBackGrowsWithDeliveries: a job that keeps failing comes back
// later on every delivery, up to RequeueMax; a spent budget sends it back
// for when there is room again.
func TestFateSendBackDelays(t *testing.T) {
	p := retry.DefaultPolicy()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	throttled := apiError(429, &types.ThrottlingException{})
	for _, tt := range []struct {
		name          string
		err           error
		receive       int
		minDelay, max time.Duration
	}{
		{"first delivery", throttled, 1, p.RequeueBase * 3 / 4, p.RequeueBase * 5 / 4},
		{"third delivery", throttled, 3, 4 * p.RequeueBase * 3 / 4, 4 * p.RequeueBase * 5 / 4},
		{"fiftieth delivery: capped", throttled, 50, p.RequeueMax * 3 / 4, p.RequeueMax},
		{"budget room in 3 h", &budgetSpentError{wait: 3 * time.Hour}, 1, 3 * time.Hour, 3*time.Hour + time.Minute},
		{"budget room in 20 h: inside SQS's 12 h", &budgetSpentError{wait: 20 * time.Hour}, 1, maxRequeueDelay, maxRequeueDelay},
		{"claim ends in 4 s", &ClaimedError{Until: now.Add(4 * time.Second)}, 1, 4 * time.Second, 9 * time.Second},
		{"claim ends in 1 min: looked at again sooner", &ClaimedError{Until: now.Add(time.Minute)}, 1, claimRecheck, claimRecheck + 5*time.Second},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for range 200 {
				a := newAttempt(p, tt.receive, now)
				a.deadline = now.Add(-time.Second)
				got := decide(context.Background(), tt.err, OpUpdate, a, circuitView{}, now)
				if got.kind != stepSendBack || got.delay < tt.minDelay || got.delay > tt.max {
					t.Fatalf("got %v after %v, want a send-back after %v to %v", got.kind, got.delay, tt.minDelay, tt.max)
				}
			}
		})
	}
}

// TestFateTransientBackoffGrows: the waits between transient failures grow
// until the attempt budget sends the job back to the queue.
func TestFateTransientBackoffGrows(t *testing.T) {
	p := retry.DefaultPolicy()
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	a := newAttempt(p, 1, now)
	internal := apiError(500, &types.InternalServerException{})
	var total time.Duration
	for n := 1; ; n++ {
		s := decide(context.Background(), internal, OpGet, a, circuitView{}, now.Add(total))
		if s.kind == stepSendBack {
			if total > p.AttemptBudget || n < 5 {
				t.Errorf("sent back after %d tries and %v, want several tries within the %v budget", n, total, p.AttemptBudget)
			}
			return
		}
		if s.kind != stepRetry || s.wait > p.MaxBackoff*3/2 {
			t.Fatalf("try %d: got %v after %v, want a retry after at most %v", n, s.kind, s.wait, p.MaxBackoff*3/2)
		}
		total += s.wait
	}
}

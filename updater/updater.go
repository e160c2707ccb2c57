// Package updater turns a job (one SQS message's body) into one applied
// engagement context update. Its files, by job:
//
//   - updater.go: the types (Updater, Config, Delivery, Verdict, Observer).
//   - coalesce.go: a batch of one engagement's jobs, grouped by context;
//     only the newest version of each is written, stale ones never are.
//   - apply.go: one job's read and write calls until it is applied.
//   - fate.go: the one place that decides a job's fate from an error.
//   - call.go: one call under the circuit, the daily budget and the limiter.
//   - equality.go: whether a context already holds a job's payload.
//   - job.go: the job format and its checks; versions.go and cache.go:
//     what the updater remembers (Versions: the newest version set out to
//     be written to each context, which a durable store keeps across
//     restarts).
//
// Package updater does not own the queue (package queue; internal/daemon
// adapts one to the other), the classes of errors, the limiters, budget and
// circuit (package retry), the wire client (package partnercentral), or a
// durable store of versions (internal/state implements Versions).
package updater

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
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
	// JobDone reports a job's outcome, the queue it came from
	// (Delivery.Queue), how long the updater spent on it, and the
	// message's age (since SQS's SentTimestamp; 0 when unknown).
	JobDone(queue, outcome string, took, age time.Duration)
	// SentBack reports, for a job that ended "retried", the queue it came
	// from and why it went back (a SendBack* constant).
	SentBack(queue, reason string)
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

func (NopObserver) JobDone(string, string, time.Duration, time.Duration) {}
func (NopObserver) SentBack(string, string)                              {}
func (NopObserver) APICall(string, string, time.Duration)                {}
func (NopObserver) Conflicts(int)                                        {}
func (NopObserver) LimiterWait(string, time.Duration)                    {}
func (NopObserver) BudgetWait(time.Duration)                             {}

// Config holds the updater's collaborators. Writes and Reads are required;
// the rest have defaults.
type Config struct {
	Policy retry.Policy
	Writes *retry.Limiter // UpdateEngagementContext, shared by every worker
	Reads  *retry.Limiter // GetEngagement
	Budget *retry.Budget  // rolling daily write budget; nil: none
	// ReadBudget is the rolling daily read budget; nil: none. A read the
	// job needs waits for it like a write; a read that would only save a
	// write is skipped while it is spent.
	ReadBudget *retry.Budget
	// ReadFreshFor is how long one GetEngagement serves the jobs of its
	// engagement that follow it (see freshView). 0 means
	// DefaultReadFreshFor.
	ReadFreshFor time.Duration
	Circuit      *retry.Circuit // nil: a default circuit
	// MaxRemembered bounds how many engagements' ModifiedAt and contexts'
	// watermarks are remembered; the least recently written are forgotten
	// first. 0 means DefaultMaxRemembered.
	MaxRemembered int
	// Versions keeps the newest version set out to be written to each
	// context. nil: in memory, bounded by MaxRemembered, lost on restart.
	// The caller owns it (and closes it, if it needs closing) and must not
	// close it while Apply runs.
	Versions Versions
	// Claims, when set, is the fleet's store of versions (see Claimer):
	// every write is made under a claim on its context, and Versions is
	// not used.
	Claims   Claimer
	Observer Observer
	Logger   *slog.Logger
}

// Updater applies jobs. It is safe for concurrent use; its caller (the
// queue, through internal/daemon) guarantees that one engagement's jobs
// never run at the same time.
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
	// versions holds the newest SourceUpdatedAt this worker set out to
	// write to each context (see Versions).
	versions Versions
	// views are the engagements as last read, by engagement key: one
	// read serves every job of its engagement for a while.
	views *boundedMap[view]
	// reads decides when reading first pays.
	reads readPolicy
	// draining ends when the worker starts draining (Drain): jobs that
	// only wait for their turn go back to the queue.
	draining context.Context
	drain    context.CancelFunc
}

// Drain tells the updater that the worker is stopping: a job waiting for
// its turn (the circuit, the daily budget, the rate limiter, a backoff) is
// handed back to the queue at once, for another worker, instead of holding
// the drain until its deadline. A call already made runs to its end.
func (u *Updater) Drain() { u.drain() }

// New returns an updater calling api.
func New(api API, dec *Decoder, cfg Config) (*Updater, error) {
	if cfg.Writes == nil || cfg.Reads == nil {
		return nil, errors.New("updater: Config.Writes and Config.Reads are required")
	}
	if cfg.Policy == (retry.Policy{}) {
		cfg.Policy = retry.DefaultPolicy()
	}
	if cfg.MaxRemembered <= 0 {
		cfg.MaxRemembered = DefaultMaxRemembered
	}
	if cfg.ReadFreshFor <= 0 {
		cfg.ReadFreshFor = DefaultReadFreshFor
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
		versions:   cfg.Versions,
		// Views are large (every context's payload) and live seconds:
		// a few thousand cover what the read limiter lets in meanwhile.
		views: newBoundedMap[view](maxViews),
	}
	if u.versions == nil {
		u.versions = newMemoryVersions(cfg.MaxRemembered)
	}
	u.draining, u.drain = context.WithCancel(context.Background())
	return u, nil
}

// maxViews bounds the engagements whose last read is kept.
const maxViews = 4096

// claim takes context ck for the write of its newest job, of version src:
// from Config.Claims, a claim the write is made under (see Claimer);
// otherwise the version is recorded (Versions.Intend) and the claim is nil.
// An error means the job must not be written: ErrSuperseded says it is
// stale.
func (u *Updater) claim(ctx context.Context, ck string, src time.Time) (Claim, error) {
	if c := u.cfg.Claims; c != nil {
		// Another worker's claim most often ends with its job, in
		// moments: try again for claimPatience before giving up.
		wait, deadline := 100*time.Millisecond, time.Now().Add(claimPatience)
		for {
			claim, err := c.Claim(ctx, ck, src)
			var held *ClaimedError
			if !errors.As(err, &held) || time.Now().Add(wait).After(deadline) {
				return claim, err
			}
			wctx, endWait := u.waitContext(ctx)
			slept := retry.Sleep(wctx, wait)
			endWait()
			if !slept {
				return nil, err
			}
			wait *= 2
		}
	}
	if src.IsZero() {
		return nil, nil
	}
	return nil, u.versions.Intend(ctx, ck, src)
}

// releaseTimeout bounds the release of a claim.
const releaseTimeout = 5 * time.Second

// Delivery is one delivery of a job's message, as the queue received it.
type Delivery struct {
	ID   string // the SQS message id
	Body string
	// ReceiveCount is how many times the message was delivered: 1 the
	// first time. A job delivered before may have been applied already.
	ReceiveCount int
	// SentAt is when the queue accepted the message (zero when unknown):
	// the version of a job without a SourceUpdatedAt, and its age.
	SentAt time.Time
	// Priority is the priority of the queue it came from, 0 the highest
	// (event-driven updates before the nightly batch): its calls take
	// their turn under the rate limiters ahead of lower priorities.
	Priority int
	// Queue names the queue it came from, for the metrics.
	Queue string
}

// Verdict is what became of one delivery.
type Verdict struct {
	Outcome string        // an Outcome* constant
	Class   string        // OutcomeDeadLettered: the dead-letter class (Class* constants); OutcomeRetried: why (SendBack* constants)
	Reason  string        // OutcomeDeadLettered and OutcomeRetried: why, for people
	Delay   time.Duration // OutcomeRetried: when the job should come back
}

// LaneKey names, from a job's body, the lane it is applied in: its
// engagement (EngagementKey). The queue calls it for every message it
// receives, so it reads the two fields it needs and nothing else; the
// full check comes in Apply. A body without them gets "": a lane of its
// own, where Apply dead-letters it.
func LaneKey(body string) string {
	var ids struct{ Catalog, EngagementIdentifier *string }
	if json.Unmarshal([]byte(body), &ids) != nil || ids.Catalog == nil || ids.EngagementIdentifier == nil {
		return ""
	}
	return EngagementKey(&partnercentral.UpdateEngagementContextInput{Catalog: ids.Catalog, EngagementIdentifier: ids.EngagementIdentifier})
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

// ContextKey names one context of an engagement: the unit of coalescing
// and of staleness ("Sandbox/eng-abcdefghij1234/1").
func ContextKey(in *partnercentral.UpdateEngagementContextInput) string {
	return EngagementKey(in) + "/" + aws.ToString(in.ContextIdentifier)
}

func (u *Updater) jobDone(d *Delivery, v Verdict, start time.Time) {
	now := time.Now()
	var age time.Duration
	if !d.SentAt.IsZero() {
		age = now.Sub(d.SentAt)
	}
	u.obs.JobDone(d.Queue, v.Outcome, now.Sub(start), age)
	if v.Outcome == OutcomeRetried {
		u.obs.SentBack(d.Queue, v.Class)
	}
}

func (u *Updater) messageLog(d *Delivery, job *Job) *slog.Logger {
	log := u.log.With("message_id", d.ID)
	if job != nil {
		log = log.With("engagement", aws.ToString(job.Input.EngagementIdentifier), "context", aws.ToString(job.Input.ContextIdentifier))
	}
	return log
}

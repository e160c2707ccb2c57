package updater

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Versions keeps, per context (ContextKey), the newest SourceUpdatedAt the
// updater set out to write to it. An older job for the context is stale
// even when the newer one's write never got through: its message comes
// back and is written then.
//
// Where the versions live decides how far the guarantee reaches. In memory
// (the default when Config.Versions is nil) it holds within one process; a durable
// store (internal/state) carries it across restarts of that process, which
// on a standard queue can otherwise write an older version over a newer
// one (the newer one applied, the older one's message not yet
// acknowledged when the worker died); a store shared by a fleet would
// carry it across replicas.
//
// Implementations must be safe for concurrent use. The updater never calls
// them for one context from two goroutines at once (one engagement's jobs
// run in one lane), but does for different contexts.
type Versions interface {
	// Intended returns the newest version recorded for context key, and
	// whether there is one.
	Intended(ctx context.Context, key string) (time.Time, bool, error)
	// Intend records v as the newest version of context key unless one as
	// new or newer is recorded. It returns once the record is kept as far
	// as the implementation keeps anything, before the write it precedes:
	// a write never happens that the store does not know of. An error
	// means the write must not happen.
	Intend(ctx context.Context, key string, v time.Time) error
}

// DefaultMaxRemembered is how many engagements and contexts the updater
// remembers by default (Config.MaxRemembered), and the bound a durable
// Versions should keep too.
const DefaultMaxRemembered = 100_000

// memoryVersions keeps the versions in a bounded map: they last as long as
// the process.
type memoryVersions struct {
	m *boundedMap[time.Time]
}

// newMemoryVersions returns versions kept in memory, of the max most
// recently written contexts.
func newMemoryVersions(max int) memoryVersions {
	return memoryVersions{m: newBoundedMap[time.Time](max)}
}

func (v memoryVersions) Intended(_ context.Context, key string) (time.Time, bool, error) {
	t, ok := v.m.get(key)
	return t, ok, nil
}

func (v memoryVersions) Intend(_ context.Context, key string, t time.Time) error {
	v.m.update(key, func(old time.Time, found bool) time.Time {
		if found && !t.After(old) {
			return old
		}
		return t
	})
	return nil
}

// Claimer is a Versions shared by several processes (a fleet of replicas
// on a standard queue): recording a version is not enough there, since
// another replica may write an older version between this one's check and
// its write, or the same job at the same moment. A Claimer hands out one
// claim per context at a time, and the updater writes a context only while
// it holds the claim: the check of the newest version and the write are
// then one step for the fleet. internal/fleet implements it on DynamoDB.
//
// A Lead interaction (the one part of a write that is not idempotent) is
// not appended twice by two workers either way: a write carries the
// engagement's ModifiedAt as the worker last saw it, so the second of two
// writes made from the same read is refused (ConflictException) and its
// job reads again, finds the interaction and drops it
// (withoutRepeatedInteraction); a job without a timestamp, or delivered
// before, reads first. The claim makes such a race rare, and the versions
// keep an older job from being written after a newer one.
//
// With Config.Claims set, Config.Versions is not used: the claims keep the
// versions.
type Claimer interface {
	// Claim takes context key for a write of version v (zero: the job
	// has none). It records v as the newest version intended, in the same
	// step. It fails with ErrSuperseded when a newer
	// version is recorded, and with a *ClaimedError when another process
	// holds the context. Any other error means the write must not happen.
	Claim(ctx context.Context, key string, v time.Time) (Claim, error)
}

// Claim is a process's hold on one context, for the write of one job.
type Claim interface {
	// Hold makes sure the claim lasts long enough for one call and says
	// until when the call may run: a call still running then could land
	// after another process took the context. It fails when the claim is
	// lost (it lapsed and another process took it).
	Hold(ctx context.Context) (deadline time.Time, err error)
	// Release gives the context up. A claim not released lapses by
	// itself, so a crashed process holds a context for a short while only.
	Release(ctx context.Context) error
}

// ErrSuperseded says another process set out to write a newer version of
// the context: the job is stale.
var ErrSuperseded = errors.New("a newer version of the context was set out to be written")

// ClaimedError says another process holds the context, until Until at the
// latest: the job goes back to the queue for then.
type ClaimedError struct {
	Holder string
	Until  time.Time
}

func (e *ClaimedError) Error() string {
	return fmt.Sprintf("context being written by another worker (%s) until %s at the latest", e.Holder, e.Until.UTC().Format(time.RFC3339))
}

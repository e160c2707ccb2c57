package updater

import (
	"context"
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

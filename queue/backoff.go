package queue

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pcsync/pcsync/retry"
)

// backoff returns the wait before retry number attempt (1-based): base
// doubled per attempt up to limit, with "equal jitter" (half fixed, half
// random) so that replicas failing together do not retry in lockstep.
// Equal jitter, [d/2, d] for the doubled d, is retry.Nth's symmetric jitter
// of a third either way around 3/4 of d; limit also caps the result, in case
// the float arithmetic rounds a nanosecond past it.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	return min(retry.Nth(attempt, base-base/4, limit-limit/4, 1.0/3), limit)
}

// streak logs a run of failures of one kind of call once when it starts and
// once when it ends, however many goroutines report into it, so an outage
// makes two log lines instead of thousands.
type streak struct {
	what    string
	failing atomic.Bool // fast path for ok, which runs on every success

	mu    sync.Mutex
	count int
	since time.Time
}

func (s *streak) fail(log *slog.Logger, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count++
	if s.count == 1 {
		s.since = time.Now()
		s.failing.Store(true)
		log.Warn(s.what+" failing; retrying with backoff", "op", s.what, "code", errorCode(err), "err", err)
	}
}

func (s *streak) ok(log *slog.Logger) {
	if !s.failing.Load() {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == 0 {
		return
	}
	log.Info(s.what+" recovered", "op", s.what, "failures", s.count, "outage", time.Since(s.since).Round(time.Millisecond))
	s.count = 0
	s.failing.Store(false)
}

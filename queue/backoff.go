package queue

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// backoff returns the wait before retry number attempt (1-based): base
// doubled per attempt up to limit, with "equal jitter" (half fixed, half
// random) so that replicas failing together do not retry in lockstep.
func backoff(attempt int, base, limit time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// wait blocks for d or until ctx is done; it reports whether the full time
// passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
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

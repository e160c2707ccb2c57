package retry

import (
	"context"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// LimiterConfig tunes a Limiter.
type LimiterConfig struct {
	// Ceiling is the highest rate, in calls per second, ever used: the
	// account's quota for this class of calls, the same for every replica.
	Ceiling float64
	// Floor is the lowest rate throttles can push it to; 0 means
	// Ceiling/20.
	Floor float64
}

// Limiter paces one class of Partner Central calls (writes or reads) for
// the whole process, so that the processes sharing the account's quota
// together use all of it, each a fair share, and are rarely throttled.
//
// The pacing is a golang.org/x/time/rate limiter with a burst of one:
// calls leave evenly spaced at the rate in force. The rate comes from an
// Estimate, fed every call's outcome; see Estimate for the law and why a
// fleet of replicas that each know only their own calls converges to a
// fair share of the quota without being told how many they are.
//
// Callers are served in arrival order: a queue of waiters is released one
// at a time by a pacer goroutine, each when the rate limiter has a token,
// so a cut takes effect for the very next call, not after a queue of turns
// handed out at the old pace.
//
// Limiter is safe for concurrent use.
type Limiter struct {
	cfg  LimiterConfig
	pace *rate.Limiter

	mu     sync.Mutex
	est    *Estimate
	queue  []*waiter
	pacing bool          // a goroutine is releasing the queue
	wake   chan struct{} // tells the pacer a waiter left
}

type waiter struct {
	release chan struct{}
	gone    bool // the caller stopped waiting
}

// NewLimiter returns a limiter at cfg.Ceiling.
func NewLimiter(cfg LimiterConfig) *Limiter {
	est := NewEstimate(cfg.Ceiling, cfg.Floor)
	return &Limiter{
		cfg:  cfg,
		pace: rate.NewLimiter(paced(est.Rate()), 1),
		est:  est,
		wake: make(chan struct{}, 1),
	}
}

// Wait blocks until the next call may be sent. It returns the time the
// call was let through, to be handed back to Done, and how long it waited.
func (l *Limiter) Wait(ctx context.Context) (sentAt time.Time, waited time.Duration, err error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return time.Time{}, 0, err
	}
	l.mu.Lock()
	if len(l.queue) == 0 && !l.pacing && l.pace.AllowN(start, 1) {
		// Nobody waiting and a turn free: demand is below the rate for
		// the moment, which tells the estimate nothing about the quota.
		l.est.Idle(start)
		l.mu.Unlock()
		return start, 0, nil
	}
	w := &waiter{release: make(chan struct{})}
	l.queue = append(l.queue, w)
	if !l.pacing {
		l.pacing = true
		go l.run()
	}
	l.mu.Unlock()
	select {
	case <-w.release:
		now := time.Now()
		return now, now.Sub(start), nil
	case <-ctx.Done():
		l.mu.Lock()
		w.gone = true
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return time.Time{}, time.Since(start), ctx.Err()
	}
}

// run lets the queued callers through one by one, each as soon as the
// rate limiter has a whole token again. It runs only while callers are
// waiting. (It waits for the token rather than reserving it ahead: a
// reservation keeps the time it was given at the old rate, and a rate that
// went up meanwhile would let the next call follow it too closely.) A
// waiter that leaves wakes it, so that it stops when nobody is left.
func (l *Limiter) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for len(l.queue) > 0 && l.queue[0].gone {
			l.queue[0] = nil
			l.queue = l.queue[1:]
		}
		if len(l.queue) == 0 {
			l.pacing = false
			l.mu.Unlock()
			return
		}
		now := time.Now()
		if l.pace.AllowN(now, 1) {
			close(l.queue[0].release)
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.mu.Unlock()
			continue
		}
		need := (1 - l.pace.TokensAt(now)) / float64(l.pace.Limit())
		l.mu.Unlock()
		timer.Reset(max(time.Duration(need*float64(time.Second)), time.Microsecond))
		select {
		case <-timer.C:
		case <-l.wake:
			timer.Stop()
		}
	}
}

// Done reports how a call let through at sentAt ended: throttled by the
// service or not. Any answer other than a throttle counts as accepted,
// since the service spent quota on it.
func (l *Limiter) Done(sentAt time.Time, throttled bool) {
	now := time.Now()
	l.mu.Lock()
	before := l.est.Rate()
	var r float64
	if throttled {
		r = l.est.Throttled(now, sentAt)
	} else {
		r = l.est.Accepted(now, sentAt)
	}
	if r != before {
		l.pace.SetLimitAt(now, paced(r))
	}
	l.mu.Unlock()
}

// Rate is the current rate in calls per second. Metrics read it when they
// are scraped.
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.est.Rate()
}

// Ceiling is the configured highest rate.
func (l *Limiter) Ceiling() float64 { return l.cfg.Ceiling }

// paced is the pacing for rate r: a hair under it, so that calls spaced by
// a float's rounding never reach a strict (burst 1) service a nanosecond
// early.
func paced(r float64) rate.Limit { return rate.Limit(r * (1 - 1e-6)) }

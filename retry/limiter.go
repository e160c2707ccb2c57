package retry

import (
	"container/heap"
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
// Callers are served by priority, then in arrival order (see
// WaitPriority): a queue of waiters is released one at a time by a pacer
// goroutine, each when the rate limiter has a token, so a cut takes effect
// for the very next call, not after a queue of turns handed out at the old
// pace. The pacer picks whom to release only when the token is there, so a
// caller of a higher priority that arrives while others wait takes the
// very next turn.
//
// Limiter is safe for concurrent use.
type Limiter struct {
	cfg  LimiterConfig
	pace *rate.Limiter

	mu     sync.Mutex
	est    *Estimate
	queue  waiters
	seq    uint64        // arrivals so far, the FIFO order within a priority
	pacing bool          // a goroutine is releasing the queue
	wake   chan struct{} // tells the pacer a waiter left
}

type waiter struct {
	release  chan struct{}
	priority int    // 0 is the highest
	seq      uint64 // arrival order
	gone     bool   // the caller stopped waiting
}

// waiters is the queue of callers waiting for a turn: a min-heap
// (container/heap) on (priority, arrival), so the next turn is always
// queue[0], and queuing or releasing a caller costs O(log n) whatever the
// priorities in use. A caller that leaves stays in it, marked gone, until
// it reaches the top, as it did in the plain FIFO this replaced.
type waiters []*waiter

func (q waiters) Len() int { return len(q) }

func (q waiters) Less(i, j int) bool {
	if q[i].priority != q[j].priority {
		return q[i].priority < q[j].priority
	}
	return q[i].seq < q[j].seq
}

func (q waiters) Swap(i, j int) { q[i], q[j] = q[j], q[i] }

func (q *waiters) Push(x any) { *q = append(*q, x.(*waiter)) }

func (q *waiters) Pop() any {
	old := *q
	n := len(old)
	w := old[n-1]
	old[n-1] = nil // the released caller's channel is not kept alive
	*q = old[:n-1]
	return w
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
// It is WaitPriority at priority 0, the highest.
func (l *Limiter) Wait(ctx context.Context) (sentAt time.Time, waited time.Duration, err error) {
	return l.WaitPriority(ctx, 0)
}

// WaitPriority is Wait for a caller of the given priority: 0 is the
// highest, and a lower number is served first; callers of one priority
// are served in arrival order. A negative priority counts as 0.
//
// Priority decides who goes next, never how fast: every priority shares
// the one rate, and the estimate sees the same calls whoever makes them.
//
// The priority is strict: a caller gets a turn only when no caller of a
// higher priority is waiting, however long it has waited. That is right
// here because the high priority is pcsync's realtime queue, driven by
// events and small, and the low one the nightly bulk queue: realtime jobs
// take the next turn ahead of a bulk backlog, and bulk gets the whole rate
// whenever no realtime job waits, which is most of the time. A weighted
// share would make realtime jobs wait behind bulk turns without giving
// bulk more in the end: the account's quota is the shared limit either
// way, and bulk already has all of it while realtime is idle. Bulk is
// starved only while realtime callers fill the whole rate, so its
// starvation is bounded by the realtime arrival rate: it gets the rate
// less what realtime arrivals take, and all of it once they stop.
func (l *Limiter) WaitPriority(ctx context.Context, priority int) (sentAt time.Time, waited time.Duration, err error) {
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
	w := &waiter{release: make(chan struct{}), priority: max(priority, 0), seq: l.seq}
	l.seq++
	heap.Push(&l.queue, w)
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

// run lets the queued callers through one by one, the first by priority
// then arrival each time, as soon as the rate limiter has a whole token
// again. It runs only while callers are waiting. (It waits for the token rather than reserving it ahead: a
// reservation keeps the time it was given at the old rate, and a rate that
// went up meanwhile would let the next call follow it too closely.) A
// waiter that leaves wakes it, so that it stops when nobody is left.
func (l *Limiter) run() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		l.mu.Lock()
		for len(l.queue) > 0 && l.queue[0].gone {
			heap.Pop(&l.queue)
		}
		if len(l.queue) == 0 {
			l.pacing = false
			l.mu.Unlock()
			return
		}
		now := time.Now()
		if l.pace.AllowN(now, 1) {
			close(heap.Pop(&l.queue).(*waiter).release)
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

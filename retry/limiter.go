package retry

import (
	"context"
	"sync"
	"time"
)

// LimiterConfig tunes a Limiter.
type LimiterConfig struct {
	// Ceiling is the highest rate, in calls per second, ever used: the
	// configured quota. The limiter starts there.
	Ceiling float64
	// Floor is the lowest rate a run of throttles can push it to; 0 means
	// Ceiling/20.
	Floor float64
	// Probe is the growth per accepted call once the limiter sits just
	// under the lowest throttled rate: it creeps past it this slowly, so
	// that a raised quota is found without paying more than about one
	// throttle per few thousand calls. 0 means 1/100000.
	Probe float64
	// OnChange, if set, is called with the new rate whenever it changes,
	// for metrics. It runs under the limiter's lock: keep it cheap.
	OnChange func(rate float64)
}

// Limiter paces one class of Partner Central calls (writes or reads) for
// the whole process, below the account's rate quota.
//
// The quota is rarely known exactly, and the service only says "too many"
// after the fact. So the limiter searches for it: a rate that goes a
// window of calls unthrottled is a lower bound, a throttled rate an upper
// bound, and the limiter halves the gap between them until it sits just
// under the quota (a binary search, rather than the blind halving and slow
// regrowth of AIMD, which wastes a large share of the quota on every
// throttle). From there it creeps upwards very slowly, so that a raised
// quota is found at the cost of a throttle every few thousand calls.
//
// A service with a large burst allowance fools that search: a rate a few
// percent over the quota goes many windows unthrottled while the burst
// drains, and the search saws just above the quota, throttled every few
// seconds. So the limiter also measures the quota from what the service
// accepts: its bucket is empty at every throttle, so between two throttles
// it accepted exactly the quota times the time between them (as long as
// the rate stayed above the quota and the limiter busy, so the bucket
// never filled). Once such a span is long enough, and the first throttle
// showed a burst too large for windows to be trusted, the limiter settles
// on the measure, and each later throttle lengthens the span and refines
// it. Throttles that come faster than the measure allows mean the quota
// fell, and the search starts over.
//
// Calls are let through one at a time, first come first served, each
// spaced from the last by the rate in force when it leaves; a cut takes
// effect for the very next call, not after a queue of turns handed out at
// the old pace.
//
// Limiter is safe for concurrent use.
type Limiter struct {
	cfg LimiterConfig

	mu          sync.Mutex
	rate        float64
	lastRelease time.Time
	queue       []*waiter
	pacing      bool          // a goroutine is releasing the queue
	wake        chan struct{} // tells the pacer a waiter left

	// The quota lies between lower, the highest rate that went a whole
	// window unthrottled, and upper, the lowest rate throttled since (0:
	// none). The limiter closes in on upper by halving the gap, then sits
	// just under it.
	lower, upper  float64
	changedAt     time.Time // calls sent before this went at an older rate
	accepted      int       // accepted calls in the current window
	throttles     int       // throttles since the last change
	lastThrottle  time.Time
	sinceThrottle int // accepted calls since the last throttle

	// The span estimate. The service's token bucket is empty whenever it
	// throttles, so between two throttles it accepted exactly what it
	// refilled: the quota times the time between them, less whatever
	// overflowed a full bucket (only while the limiter was below the quota
	// or idle). The calls accepted over a span of throttles, divided by its
	// length, measure the quota, the more precisely the longer the span:
	// the limiter settles there instead of sawing around it.
	spanStart    time.Time // the throttle that opened the span; zero: none
	spanAccepted int       // calls accepted since spanStart, at any rate
	spanMinRate  float64   // the lowest rate since spanStart
	// The burst the service allows, from the first throttle of a busy
	// spell: it accepted burstCalls in burstTime, its bucket's fill plus
	// the quota's refill. A small burst makes a short clean window proof
	// of a safe rate; a large one hides an excess for many calls.
	busySince     time.Time
	busyAccepted  int
	burstCalls    int
	burstTime     time.Duration
	burstKnown    bool
	measured      bool      // the rate was last set from a span measure; upper > 0 while it is
	measuredCalls int       // accepted calls of that span
	slackAt       time.Time // the last time a caller found the limiter idle
}

type waiter struct {
	release chan struct{}
	gone    bool // the caller stopped waiting
}

// NewLimiter returns a limiter at cfg.Ceiling.
func NewLimiter(cfg LimiterConfig) *Limiter {
	if cfg.Floor <= 0 {
		cfg.Floor = cfg.Ceiling / 20
	}
	if cfg.Probe <= 0 {
		cfg.Probe = 1.0 / 100000
	}
	return &Limiter{cfg: cfg, rate: cfg.Ceiling, wake: make(chan struct{}, 1)}
}

// interval is the spacing between calls at the current rate.
func (l *Limiter) interval() time.Duration {
	return time.Duration(float64(time.Second) / l.rate)
}

// Wait blocks until the next call may be sent. It returns the time the
// call was let through, to be handed back to Done, and how long it waited.
func (l *Limiter) Wait(ctx context.Context) (sentAt time.Time, waited time.Duration, err error) {
	start := time.Now()
	if err := ctx.Err(); err != nil {
		return time.Time{}, 0, err
	}
	l.mu.Lock()
	if len(l.queue) == 0 && !start.Before(l.lastRelease.Add(l.interval())) {
		// No caller was waiting: demand fell below the rate for a moment,
		// the service's bucket may have refilled, and a span across this
		// moment says less than the quota (a worker slowed by its own
		// work, or a drying queue, would pass for a low quota).
		l.slackAt = start
		if start.After(l.lastRelease.Add(2 * l.interval())) {
			// Idle for longer: the burst is worth measuring again.
			l.busySince, l.busyAccepted, l.burstKnown = start, 0, false
		}
		l.lastRelease = start
		l.mu.Unlock()
		return start, 0, nil
	}
	w := &waiter{release: make(chan struct{})}
	l.queue = append(l.queue, w)
	if !l.pacing {
		l.pacing = true
		go l.pace()
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

// pace lets the queued callers through one by one, each an interval after
// the last, reading the rate afresh every time. It runs only while callers
// are waiting.
func (l *Limiter) pace() {
	var timer *time.Timer
	for {
		l.mu.Lock()
		for len(l.queue) > 0 && l.queue[0].gone {
			l.queue = l.queue[1:]
		}
		if len(l.queue) == 0 {
			l.pacing = false
			l.mu.Unlock()
			if timer != nil {
				timer.Stop()
			}
			return
		}
		wait := time.Until(l.lastRelease.Add(l.interval()))
		if wait <= 0 {
			w := l.queue[0]
			l.queue[0] = nil
			l.queue = l.queue[1:]
			l.lastRelease = time.Now()
			close(w.release)
			l.mu.Unlock()
			continue
		}
		l.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
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
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if l.busySince.IsZero() {
		l.busySince = sentAt
	}
	if !throttled {
		l.spanAccepted++
		l.sinceThrottle++
		l.busyAccepted++
	} else if !l.burstKnown {
		l.burstKnown = true
		l.burstCalls, l.burstTime = l.busyAccepted, now.Sub(l.busySince)
		if l.upper == 0 {
			// The first throttle of a busy spell, with nothing known: the
			// service's bucket is empty from here on, so the share it
			// accepts from now on is the quota's share of the rate; the
			// calls before, served from the full bucket, would inflate it.
			l.throttles, l.lastThrottle, l.sinceThrottle = 0, now, 0
			l.upper, l.lower = l.rate, 0
			l.changedAt, l.accepted = now, 0
			return
		}
	}
	if throttled {
		if q, ok := l.span(now); ok {
			l.settle(now, q)
			return
		}
	}
	if sentAt.Before(l.changedAt) {
		// Sent at an older pace; it says nothing about the current one.
		return
	}
	if throttled {
		l.throttled(now)
		return
	}
	l.accepted++
	if l.measured {
		// The measure is good to one call in measuredCalls, either way:
		// creep across that much over the next measuredCalls calls. Past
		// the quota, the next throttle measures a longer span.
		l.set(min(l.rate*(1+1/float64(10*l.measuredCalls*l.measuredCalls)), l.upper))
	}
	if l.accepted < windowCalls {
		if l.upper > 0 && l.rate >= l.upper*(1-margin) {
			l.probe()
		}
		return
	}
	// A clean window: the current rate is safe.
	l.lower = max(l.lower, l.rate)
	if l.upper > 0 && (now.Sub(l.lastThrottle) > upperTTL || l.sinceThrottle > upperTTLCalls) {
		// No throttle for long: whatever capped the rate then (a storm of
		// another client's calls, a lowered quota) may be gone.
		l.upper, l.measured = 0, false
	}
	switch {
	case l.upper == 0:
		// No throttle seen at or below this rate: the quota may be higher
		// still; double, as TCP's slow start does.
		l.change(now, l.rate*2)
	case l.rate < l.upper*(1-margin) && !l.measured:
		// Halve the distance to the lowest rate known to be throttled.
		// (Not when settled on a measure: with a large burst a clean
		// window proves nothing; the span's next throttle refines it.)
		l.change(now, min(l.rate+(l.upper-l.rate)/2, l.upper*(1-margin)))
	default:
		l.accepted = 0 // a new window at this rate
	}
}

// throttled answers a throttle of a call sent at the current rate.
func (l *Limiter) throttled(now time.Time) {
	l.measured = false
	l.throttles++
	l.lastThrottle, l.sinceThrottle = now, 0
	l.upper = l.rate
	if l.lower >= l.rate {
		// Throttled at a rate that used to be clean: the quota fell.
		l.lower = 0
	}
	next := min(l.lower, l.rate*(1-margin))
	if l.lower == 0 {
		// Nothing known to be safe: measure before cutting. The rate at
		// which the service accepted calls since the last change is the
		// quota, once three calls or three throttles tell.
		if l.accepted < 3 && l.throttles < 3 {
			return
		}
		// Over a quota Q at rate r the service accepts a share Q/r of
		// the calls, so the share accepted since the last change, counted
		// generously, scales the rate. (Not the accepted calls per second:
		// after an idle spell that measures demand, not the quota.)
		next = l.rate * float64(l.accepted+1) / float64(l.accepted+l.throttles+1) * (1 - margin)
	}
	l.change(now, next)
}

// span closes a span of throttles at a throttle now and returns the quota
// it measures. A span counts only while the limiter was busy and its rate
// stayed at or above the measure: then the service's bucket, empty at the
// first throttle, did not fill up in between, and the measure is exact to
// one call. Anything else starts a new span here.
func (l *Limiter) span(now time.Time) (float64, bool) {
	if l.measured && l.sinceThrottle < spanCalls {
		// Throttled again within a few calls of a rate set from a
		// measure: the quota fell. What was safe is no longer; the search
		// measures afresh, and so does a span from the last throttle.
		l.lower = 0
		l.spanStart, l.spanAccepted, l.spanMinRate = l.lastThrottle, l.sinceThrottle, l.rate
		return 0, false
	}
	if l.spanStart.IsZero() || !l.slackAt.Before(l.spanStart) {
		l.spanStart, l.spanAccepted, l.spanMinRate = now, 0, l.rate
		return 0, false
	}
	if l.spanAccepted < spanCalls || !now.After(l.spanStart) {
		return 0, false
	}
	q := float64(l.spanAccepted) / now.Sub(l.spanStart).Seconds()
	if l.spanMinRate < q {
		// Below the measure for a while: the bucket may have filled.
		l.spanStart, l.spanAccepted, l.spanMinRate = now, 0, l.rate
		return 0, false
	}
	if float64(l.burstCalls)-q*l.burstTime.Seconds() < windowCalls {
		// A small burst: clean windows tell a safe rate, and the search
		// needs no measure (whose span may have filled a small bucket).
		return 0, false
	}
	return q, true
}

// settle moves to a measured quota q, where a long span keeps running: a
// rate at q throttles again only as far as q falls short of the quota,
// and each throttle makes the span longer and the measure finer. The
// search above q is bounded by the measure's precision (one call over the
// span), so the rate does not climb back to where a large burst allowance
// hid its excess.
func (l *Limiter) settle(now time.Time, q float64) {
	hi := q * float64(l.spanAccepted+1) / float64(l.spanAccepted)
	l.throttles++
	l.lastThrottle, l.sinceThrottle = now, 0
	l.lower, l.upper = q*(1-margin), hi
	l.change(now, q)
	l.measured, l.measuredCalls = true, l.spanAccepted
}

// probe lets the rate creep past the lowest throttled rate, so that a
// raised quota is found; past it by a margin, the old bound is forgotten.
func (l *Limiter) probe() {
	l.set(l.rate * (1 + l.cfg.Probe))
	if l.rate > l.upper*(1+margin) {
		l.upper, l.measured = 0, false
	}
}

// change moves to rate r and starts a new window there.
func (l *Limiter) change(now time.Time, r float64) {
	l.set(r)
	l.changedAt, l.accepted, l.throttles = now, 0, 0
}

const (
	// upperTTL and upperTTLCalls say how long a throttled rate stays a
	// bound without a new throttle. In steady state the slow probe meets
	// the quota again within a few hundred calls, which renews the bound;
	// after a storm of another client's calls, it lapses within minutes
	// and the rate doubles back up instead of creeping for hours.
	upperTTL      = 10 * time.Minute
	upperTTLCalls = 2000
	// windowCalls accepted calls in a row at one rate make it safe.
	windowCalls = 10
	// spanCalls accepted calls between two throttles make a span measure
	// of the quota, good to one call in spanCalls.
	spanCalls = 20
	// margin is how far below the lowest throttled rate the limiter
	// settles: room for the network's jitter, little enough to leave no
	// more than half a percent of the quota unused.
	margin = 0.005
)

// set is the one place the rate changes. It keeps it between the floor
// and the ceiling whatever it is handed: a rate of 0 (or NaN) would let
// every call through at once.
func (l *Limiter) set(r float64) {
	if !(r >= l.cfg.Floor) {
		r = l.cfg.Floor
	}
	r = min(r, l.cfg.Ceiling)
	if r == l.rate {
		return
	}
	l.rate = r
	l.spanMinRate = min(l.spanMinRate, r)
	if l.cfg.OnChange != nil {
		l.cfg.OnChange(r)
	}
}

// Rate is the current rate in calls per second.
func (l *Limiter) Rate() float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rate
}

// Ceiling is the configured highest rate.
func (l *Limiter) Ceiling() float64 { return l.cfg.Ceiling }

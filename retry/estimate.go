package retry

import (
	"math"
	"time"
)

// Estimate is the rate one process should use for a class of calls whose
// quota it shares with callers it cannot see: other replicas of pcsync,
// restarts of itself, other tools of the partner account. It is a plain
// value fed events with their times and answering the rate to use; it has
// no clock, no lock and no goroutine, so it can be tested as a pure
// function of its inputs. Limiter owns one and serialises calls to it.
//
// The law is additive increase, multiplicative decrease, written in time
// rather than in calls, with a start like TCP's:
//   - A new process starts at a quarter of the ceiling and doubles its
//     rate every slowStartCalls of busy time until its first throttle,
//     which halves it if it had reached half the ceiling (the last
//     doubling overshot) and cuts it as below otherwise. A replica joining
//     a busy fleet so starts near a fair share, not at the whole quota.
//   - While callers are waiting (the process wants more than it gets), the
//     rate grows by the same absolute amount per second in every process:
//     growthPerCall × ceiling² per second, scaled to the ceiling so that a
//     quota of 1/s and one of 30/s go through the same cycle measured in
//     calls. After accelAfterCalls of busy time with no cut, the growth
//     doubles every further accelAfterCalls: a replica that left, or a
//     raised quota, is taken up within a minute or two.
//   - A throttle of a call sent at the current rate cuts it by cut (5 %),
//     and half of the cut is won back within restoreCalls. A throttle of a
//     call sent before the last cut says nothing new and is ignored.
//   - heavyCalls answers with fewer than half accepted mean a heavy
//     overload (a start far above the quota): the rate is cut to the share
//     accepted at once.
//   - refusedCalls throttles in a row (another client takes the whole
//     quota, or the quota was cut to nothing) leave nothing known of the
//     quota: the process starts again from its floor in slow start, which
//     doubles only on accepted calls, so that it finds the quota within a
//     minute once calls go through again and does not hammer the service
//     while they do not.
//
// Why this converges to a fair share without knowing how many share: all
// processes grow by the same amount, and each throttle lands on a call, so
// a process sending twice as many calls is throttled twice as often and
// cut twice as often. The equal growth and the cuts proportional to the
// rate pull every process towards the same rate (Chiu and Jain's argument
// for AIMD). A small cut keeps the random "who was throttled this time"
// from scattering the shares; the bucket of a service with a burst
// allowance absorbs the dips.
//
// Idle time does not count as growth: a process whose callers do not fill
// its rate learns nothing about the quota, and must not climb to a rate it
// never tested.
type Estimate struct {
	ceiling, floor float64
	rate           float64

	started bool
	grownAt time.Time     // growth is accounted up to here
	busy    time.Duration // busy time since the last cut
	cutAt   time.Time     // the last cut; calls sent before it are old news
	// The share accepted of the calls sent since heavyAt: under a heavy
	// overload every process sees about the same share, and cutting to it
	// brings the fleet to the quota at once, keeping the shares as they
	// were.
	heavyAt          time.Time
	heavyOK, heavyNo int
	// refused counts the throttles since the last accepted call.
	refused int
	// slow is true in slow start: the rate doubles every slowStartCalls of
	// busy time. slowOK counts the calls accepted since it began: a
	// throttle before any says the quota is taken (not that the rate
	// overshot), and leaves slow start as it is.
	slow   bool
	slowOK int
	// After a cut the rate climbs back fast to restoreTo, half way back
	// to where it was cut, at restoreRate per second: a lone process at a
	// strict quota loses little to the cut, while the half kept off is
	// what moves a fleet towards fair shares.
	restoreTo, restoreRate float64
}

// The law's constants. They are measured in calls at the ceiling, so that
// they hold for any quota: see the type's comment.
const (
	// cut is the share of the rate given up at a throttle.
	cut = 0.05
	// heavyCalls answered calls, fewer than half of them accepted, make a
	// heavy overload.
	heavyCalls = 6
	// refusedCalls throttles in a row, nothing accepted in between, mean
	// the quota is taken: start over from the floor in slow start.
	refusedCalls = 12
	// restoreCalls is the busy time, in calls at the ceiling, in which
	// half a cut is won back.
	restoreCalls = 30
	// slowStartCalls is the busy time, in calls at the ceiling, in which
	// the rate doubles from its start until the first throttle.
	slowStartCalls = 15
	// growthPerCall is the growth, as a share of the ceiling, per ceiling
	// call of busy time: 30/s × 1e-5 × 30/s = 0.009/s per second at a
	// ceiling of 30/s.
	growthPerCall = 1e-5
	// accelAfterCalls is the busy time, in calls at the ceiling, after a
	// cut from which the growth doubles, and again each such time after.
	accelAfterCalls = 450
	// maxDoublings bounds the acceleration.
	maxDoublings = 12
)

// NewEstimate starts in slow start at a quarter of the ceiling: alone,
// with the ceiling at the quota, it reaches the quota within 30 calls at
// the ceiling and is never throttled. A floor of 0 or less (or above the
// ceiling) means ceiling/20.
func NewEstimate(ceiling, floor float64) *Estimate {
	if floor <= 0 || floor > ceiling {
		floor = ceiling / 20
	}
	e := &Estimate{ceiling: ceiling, floor: floor, slow: true}
	e.set(ceiling / 4)
	return e
}

// Rate is the rate to use, in calls per second.
func (e *Estimate) Rate() float64 { return e.rate }

// accelAfter is accelAfterCalls as a duration.
func (e *Estimate) accelAfter() time.Duration {
	return time.Duration(accelAfterCalls / e.ceiling * float64(time.Second))
}

// grow accounts the busy time up to now. In slow start the rate doubles
// only on the way to an accepted call (ok): while every call is refused,
// doubling would only hammer a service that has nothing to give.
func (e *Estimate) grow(now time.Time, ok bool) {
	if !e.started {
		e.started, e.grownAt = true, now
		return
	}
	dt := now.Sub(e.grownAt)
	if dt <= 0 {
		return
	}
	e.grownAt = now
	if e.slow {
		if ok {
			e.set(e.rate * math.Exp2(dt.Seconds()*e.ceiling/slowStartCalls))
		}
		return
	}
	if e.rate < e.restoreTo {
		// Winning back half the cut takes the first part of dt; growth
		// goes on with the rest.
		need := time.Duration((e.restoreTo - e.rate) / e.restoreRate * float64(time.Second))
		if dt <= need {
			e.set(e.rate + e.restoreRate*dt.Seconds())
			return
		}
		e.set(e.restoreTo)
		dt -= need
	}
	g := growthPerCall * e.ceiling * e.ceiling // per second
	// The growth over dt, with the acceleration integrated exactly, so
	// that one long step and many short ones agree.
	a := e.accelAfter()
	from, to := e.busy, e.busy+dt
	e.busy = to
	e.set(e.rate + g*accelIntegral(from, to, a))
}

// accelIntegral is the integral over [from, to] of the growth multiplier:
// 1 up to a, then 2^((t-a)/a), capped at 2^maxDoublings; in seconds.
func accelIntegral(from, to, a time.Duration) float64 {
	m := func(t time.Duration) float64 { // the integral from 0 to t
		s, as := t.Seconds(), a.Seconds()
		if s <= as {
			return s
		}
		capAt := as * (1 + maxDoublings)
		x := min(s, capAt)
		v := as + as/math.Ln2*(math.Exp2((x-as)/as)-1)
		if s > capAt {
			v += (s - capAt) * math.Exp2(maxDoublings)
		}
		return v
	}
	return m(to) - m(from)
}

// Accepted reports a call sent at sentAt that the service did not
// throttle, answered at now.
func (e *Estimate) Accepted(now, sentAt time.Time) float64 {
	e.grow(now, true)
	if e.slow {
		e.slowOK++
	}
	e.refused = 0
	if !sentAt.Before(e.heavyAt) {
		e.heavyOK++
	}
	return e.rate
}

// Throttled reports a call sent at sentAt that the service throttled,
// answered at now.
func (e *Estimate) Throttled(now, sentAt time.Time) float64 {
	e.grow(now, false)
	if e.refused++; e.refused >= refusedCalls {
		// Nothing accepted for a while: whatever was known of the quota
		// is stale. Start over as a new process would, from the floor.
		e.refused = 0
		e.heavyAt, e.heavyOK, e.heavyNo = now, 0, 0
		return e.restart(now, 0, true)
	}
	if !sentAt.Before(e.heavyAt) {
		e.heavyNo++
		if n := e.heavyOK + e.heavyNo; n >= heavyCalls && e.heavyOK < e.heavyNo {
			share := float64(e.heavyOK) / float64(n)
			e.heavyAt, e.heavyOK, e.heavyNo = now, 0, 0
			return e.restart(now, e.rate*share, false)
		}
	}
	switch {
	case sentAt.Before(e.cutAt):
		// Sent at the pace before the last cut: already answered.
		return e.rate
	case e.slow && e.slowOK == 0:
		// Nothing accepted yet in this slow start: the quota is taken,
		// and cutting would say nothing about it.
		return e.rate
	}
	if e.slow && e.rate >= e.ceiling/2 {
		// The last doubling went past the quota.
		e.slow = false
		e.set(e.rate / 2)
	} else {
		e.slow = false
		was := e.rate
		e.set(was * (1 - cut))
		e.restoreTo = was * (1 - cut/2)
		e.restoreRate = (e.restoreTo - e.rate) * e.ceiling / restoreCalls
	}
	e.cutAt, e.busy = now, 0
	return e.rate
}

// restart sets the rate to r after a heavy overload or a spell with
// nothing accepted, in slow start or not, with no half-cut to win back.
func (e *Estimate) restart(now time.Time, r float64, slow bool) float64 {
	e.slow, e.slowOK, e.restoreTo = slow, 0, 0
	e.set(r)
	e.cutAt, e.busy = now, 0
	return e.rate
}

// Idle reports that at now a caller found the rate unused: nobody was
// waiting. The time since the last event does not count as growth.
func (e *Estimate) Idle(now time.Time) float64 {
	if !e.started || now.After(e.grownAt) {
		e.started, e.grownAt = true, now
	}
	return e.rate
}

// set keeps the rate between floor and ceiling; NaN becomes the floor.
func (e *Estimate) set(r float64) {
	if !(r >= e.floor) {
		r = e.floor
	}
	e.rate = min(r, e.ceiling)
}

package retry

import (
	"math"
	"testing"
	"time"
)

// The Estimate is a pure function of the events it is fed: these tests
// give it times by hand, with no clock and no goroutine.

var t0 = time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9*math.Max(1, math.Abs(b)) }

func TestEstimateSlowStartDoublesUntilTheFirstThrottle(t *testing.T) {
	e := NewEstimate(30, 0)
	if got := e.Rate(); got != 7.5 {
		t.Fatalf("start: got %v, want a quarter of the ceiling, 7.5", got)
	}
	e.Accepted(at(0), at(0))
	// slowStartCalls at the ceiling is 0.5 s: busy for 0.5 s doubles.
	if got := e.Accepted(at(500*time.Millisecond), at(490*time.Millisecond)); !near(got, 15) {
		t.Errorf("after 0.5 s busy: got %v, want 15", got)
	}
	if got := e.Accepted(at(2*time.Second), at(1990*time.Millisecond)); got != 30 {
		t.Errorf("after 2 s busy: got %v, want the ceiling, 30", got)
	}
}

func TestEstimateIdleTimeDoesNotGrow(t *testing.T) {
	e := NewEstimate(30, 0)
	e.Accepted(at(0), at(0))
	e.Idle(at(10 * time.Second))
	if got := e.Accepted(at(10*time.Second), at(10*time.Second)); got != 7.5 {
		t.Errorf("after 10 s idle: got %v, want 7.5 still (idle time says nothing of the quota)", got)
	}
}

func TestEstimateThrottleCuts(t *testing.T) {
	e := NewEstimate(30, 0)
	e.Accepted(at(0), at(0))
	e.Accepted(at(2*time.Second), at(2*time.Second)) // at the ceiling
	if got := e.Throttled(at(3*time.Second), at(3*time.Second)); !near(got, 15) {
		t.Fatalf("first throttle out of slow start at the ceiling: got %v, want half, 15", got)
	}
	before := e.Accepted(at(5*time.Second), at(5*time.Second))
	if got := e.Throttled(at(5*time.Second), at(5*time.Second)); !near(got, before*0.95) {
		t.Fatalf("a throttle after that: got %v, want a 5 %% cut of %v", got, before)
	}
	// A call sent before the cut says nothing new.
	if got := e.Throttled(at(5100*time.Millisecond), at(4900*time.Millisecond)); got < before*0.95 {
		t.Errorf("throttle of a call sent before the cut: got %v, want no second cut (>= %v)", got, before*0.95)
	}
	// Half the cut comes back within restoreCalls at the ceiling (1 s).
	e.Accepted(at(6*time.Second), at(6*time.Second))
	if got, want := e.Rate(), before*(1-cut/2); !near(got, want) {
		t.Errorf("1 s after the cut: got %v, want half of it won back, %v", got, want)
	}
}

func TestEstimateHeavyOverloadCutsToTheAcceptedShare(t *testing.T) {
	e := NewEstimate(60, 0)
	e.Idle(at(0))
	e.rate, e.slow = 60, false // out of slow start, at the ceiling
	// A quota of 20/s: one call in three gets through.
	var got float64
	for i := range 6 {
		sent := at(3*time.Second + time.Duration(i)*time.Millisecond)
		if i%3 == 0 {
			got = e.Accepted(sent.Add(time.Millisecond), sent)
		} else {
			got = e.Throttled(sent.Add(time.Millisecond), sent)
		}
	}
	if got > 21 || got < 15 {
		t.Errorf("after six calls, four of them throttled: got %v, want about a third of the rate", got)
	}
}

func TestEstimateGrowthIsTheSameForEveryRate(t *testing.T) {
	// Equal growth in time, whatever the rate: what makes shares converge.
	grow := func(from float64) float64 {
		e := NewEstimate(30, 0)
		e.Accepted(at(0), at(0))
		e.Accepted(at(2*time.Second), at(2*time.Second))
		e.Throttled(at(2*time.Second), at(2*time.Second)) // out of slow start, at 15
		e.rate, e.restoreTo = from, 0
		before := e.Rate()
		return e.Accepted(at(7*time.Second), at(7*time.Second)) - before
	}
	a, b := grow(5), grow(20)
	if !near(a, b) || a <= 0 {
		t.Errorf("growth over 5 s from 5/s and from 20/s: got %v and %v, want the same, above 0", a, b)
	}
	if want := growthPerCall * 30 * 30 * 5; !near(a, want) {
		t.Errorf("growth over 5 s: got %v, want %v", a, want)
	}
}

func TestEstimateStaysBetweenFloorAndCeiling(t *testing.T) {
	e := NewEstimate(20, 2)
	e.Accepted(at(0), at(0))
	for i := range 200 {
		e.Throttled(at(time.Duration(i+1)*time.Millisecond), at(time.Duration(i+1)*time.Millisecond))
	}
	// Nothing accepted: at the floor, slow-starting again (1 ms of it).
	if got := e.Rate(); got < 2 || got > 2.1 {
		t.Errorf("after 200 throttles: got %v, want the floor, 2", got)
	}
	e.Accepted(at(10*time.Hour), at(10*time.Hour))
	if got := e.Rate(); got != 20 {
		t.Errorf("after hours of growth: got %v, want the ceiling, 20", got)
	}
}

func TestAccelIntegral(t *testing.T) {
	a := 15 * time.Second
	// One long step and many short ones give the same growth.
	whole := accelIntegral(0, 90*time.Second, a)
	var parts float64
	for s := time.Duration(0); s < 90*time.Second; s += 100 * time.Millisecond {
		parts += accelIntegral(s, s+100*time.Millisecond, a)
	}
	if !near(whole, parts) {
		t.Errorf("integral over 90 s: got %v in one step and %v in 900, want equal", whole, parts)
	}
	if got := accelIntegral(0, 10*time.Second, a); !near(got, 10) {
		t.Errorf("before the acceleration: got %v, want 10", got)
	}
	if got := accelIntegral(0, 1000*time.Hour, a); math.IsInf(got, 0) || math.IsNaN(got) {
		t.Errorf("a very long spell: got %v, want a finite number", got)
	}
}

func TestEstimateStartsOverWhenNothingIsAccepted(t *testing.T) {
	e := NewEstimate(10, 0)
	e.Idle(at(0))
	e.rate, e.slow = 10, false
	e.heavyAt = at(0) // only the calls below count for the heavy share
	// Every call refused, one a second, each answered before the next is
	// sent: a heavy share would need calls sent before a cut to count; a
	// run of refusedCalls throttles starts over instead.
	for i := range refusedCalls {
		e.Throttled(at(time.Duration(i+1)*time.Second), at(time.Duration(i+1)*time.Second-time.Millisecond))
	}
	if got := e.Rate(); got != 0.5 || !e.slow {
		t.Fatalf("after %d throttles in a row: got %v (slow start %v), want the floor, 0.5, in slow start", refusedCalls, got, e.slow)
	}
	// Still refused: no doubling, no cut.
	if got := e.Throttled(at(100*time.Second), at(100*time.Second-time.Millisecond)); got != 0.5 {
		t.Errorf("refused again in slow start: got %v, want 0.5 still", got)
	}
	// Accepted again: slow start doubles every 1.5 s at a ceiling of 10,
	// counted from the last refusal.
	e.Accepted(at(101*time.Second), at(101*time.Second))
	if got, want := e.Accepted(at(104*time.Second), at(104*time.Second)), 0.5*math.Exp2(4/1.5); !near(got, want) {
		t.Errorf("4 s after the last refusal: got %v, want %v", got, want)
	}
}

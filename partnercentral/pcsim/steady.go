package pcsim

import (
	"context"
	"sync"
	"time"
)

// maxSteadyRate is the fastest a steady loop acts. It keeps an infinite
// rate from turning a tick into an endless loop; it is far above any quota
// the service grants.
const maxSteadyRate = 1e6

// steady is a rate, adjustable at any time, at which a background loop of
// the Sim acts: the outside writer, and each other client of the account.
// The loop reads the rate and is woken through changed when it moves.
type steady struct {
	mu      sync.Mutex
	rate    float64
	changed chan struct{} // capacity 1: a pending wake-up is enough
}

func (r *steady) init(rate float64) {
	r.rate = steadyRate(rate)
	r.changed = make(chan struct{}, 1)
}

func (r *steady) get() float64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rate
}

// set changes the rate; the loop follows at once.
func (r *steady) set(rate float64) {
	r.mu.Lock()
	r.rate = steadyRate(rate)
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// steadyRate brings a rate into [0, maxSteadyRate]: a negative or NaN rate
// is no action at all.
func steadyRate(r float64) float64 {
	switch {
	case r > maxSteadyRate:
		return maxSteadyRate
	case r > 0:
		return r
	}
	return 0
}

// run calls act at the rate until ctx ends, idle while the rate is 0.
// Above 1000/s it ticks every millisecond and acts several times a tick,
// as timers finer than that are not kept. The ticks are the runtime's
// timers, so under testing/synctest the counts are exact.
func (r *steady) run(ctx context.Context, act func()) {
	for {
		rate := r.get()
		if rate == 0 {
			select {
			case <-ctx.Done():
				return
			case <-r.changed:
				continue
			}
		}
		if !r.runAt(ctx, rate, act) {
			return
		}
	}
}

// runAt acts at rate until the rate changes (true) or ctx ends (false).
func (r *steady) runAt(ctx context.Context, rate float64, act func()) bool {
	period := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	perTick := rate * period.Seconds()
	t := time.NewTicker(period)
	defer t.Stop()
	credit := 0.0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-r.changed:
			return true
		case <-t.C:
			for credit += perTick; credit >= 1; credit-- {
				act()
			}
		}
	}
}

package pcsim

import (
	"context"
	"sync"
	"time"
)

// outsideWriter holds the rate of outside writes. The writer goroutine
// reads it and is woken through changed when it moves.
type outsideWriter struct {
	mu      sync.Mutex
	rate    float64
	changed chan struct{} // capacity 1: a pending wake-up is enough
}

func (o *outsideWriter) init(rate float64) {
	o.rate = rate
	o.changed = make(chan struct{}, 1)
}

func (o *outsideWriter) get() float64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.rate
}

// SetOutsideWritesPerSec changes the rate of outside writes; 0 stops them.
func (s *Sim) SetOutsideWritesPerSec(r float64) {
	s.outside.mu.Lock()
	s.outside.rate = r
	s.outside.mu.Unlock()
	select {
	case s.outside.changed <- struct{}{}:
	default:
	}
}

// runOutsideWriter bumps random engagements' ModifiedAt at the configured
// rate until ctx ends, as other users of the partner account would: each
// such write turns the next UpdateEngagementContext with the old timestamp
// into a real conflict.
func (s *Sim) runOutsideWriter(ctx context.Context) {
	for {
		rate := s.outside.get()
		if !(rate > 0) { // also NaN
			select {
			case <-ctx.Done():
				return
			case <-s.outside.changed:
				continue
			}
		}
		if !s.writeOutside(ctx, rate) {
			return
		}
	}
}

// writeOutside writes at rate until the rate changes (true) or ctx ends
// (false). Above 1000/s it ticks every millisecond and writes several per
// tick, as timers finer than that are not kept.
func (s *Sim) writeOutside(ctx context.Context, rate float64) bool {
	period := max(time.Duration(float64(time.Second)/rate), time.Millisecond)
	perTick := rate * period.Seconds()
	t := time.NewTicker(period)
	defer t.Stop()
	credit := 0.0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-s.outside.changed:
			return true
		case <-t.C:
			for credit += perTick; credit >= 1; credit-- {
				if e := s.store.pick(s.outsideRand.intN); e != nil {
					s.touch(e)
				}
			}
		}
	}
}

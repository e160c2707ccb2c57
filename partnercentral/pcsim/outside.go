package pcsim

import "context"

// SetOutsideWritesPerSec changes the rate of outside writes; 0 stops them.
// A negative or NaN rate is 0, and rates above a million per second are
// held there (an infinite rate used to spin the writer forever).
func (s *Sim) SetOutsideWritesPerSec(r float64) { s.outside.set(r) }

// runOutsideWriter bumps random engagements' ModifiedAt at the configured
// rate until ctx ends, as other users of the partner account would: each
// such write turns the next UpdateEngagementContext with the old timestamp
// into a real conflict.
func (s *Sim) runOutsideWriter(ctx context.Context) {
	s.outside.run(ctx, func() {
		if e := s.store.pick(s.outsideRand.intN); e != nil {
			s.touch(e)
		}
	})
}

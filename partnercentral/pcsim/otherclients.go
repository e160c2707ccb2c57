package pcsim

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// maxOtherClientsRPS is the fastest rate another client is driven at. It
// keeps an infinite rate from turning a tick into an endless loop; it is
// far above any quota the service grants.
const maxOtherClientsRPS = 1e6

// otherClient is one steady caller from outside pcsync, such as the
// partner's CRM connector, drawing from the same bucket as pcsync: op says
// which. Its loop reads the rate and is woken through changed when it
// moves.
type otherClient struct {
	op      operation
	mu      sync.Mutex
	rate    float64
	changed chan struct{} // capacity 1: a pending wake-up is enough
}

func (c *otherClient) init(op operation, rate float64) {
	c.op = op
	c.rate = otherClientsRate(rate)
	c.changed = make(chan struct{}, 1)
}

func (c *otherClient) get() float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rate
}

func (c *otherClient) set(rate float64) {
	c.mu.Lock()
	c.rate = otherClientsRate(rate)
	c.mu.Unlock()
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// otherClientsRate brings a rate into [0, maxOtherClientsRPS]: a negative
// or NaN rate is no calls at all.
func otherClientsRate(r float64) float64 {
	switch {
	case r > maxOtherClientsRPS:
		return maxOtherClientsRPS
	case r > 0:
		return r
	}
	return 0
}

// validateOtherClientsRate reports a rate the admin API refuses, naming
// the field it came in.
func validateOtherClientsRate(field string, r float64) error {
	switch {
	case r < 0:
		return fmt.Errorf("%s: %v is negative; want calls per second, 0 for none", field, r)
	case !(r <= maxOtherClientsRPS): // also NaN
		return fmt.Errorf("%s: %v is over the most the simulator drives, %g calls per second", field, r, float64(maxOtherClientsRPS))
	}
	return nil
}

// SetOtherClients changes the rates at which other clients of the partner
// account call UpdateEngagementContext (writeRPS) and GetEngagement
// (readRPS), drawing from the same quotas as every API call; 0 stops them.
// The change takes effect at once. A negative or NaN rate is 0, and rates
// above a million per second are held there.
func (s *Sim) SetOtherClients(writeRPS, readRPS float64) {
	s.otherWrites.set(writeRPS)
	s.otherReads.set(readRPS)
}

// OtherClients returns the rates set by Options or SetOtherClients.
func (s *Sim) OtherClients() (writeRPS, readRPS float64) {
	return s.otherWrites.get(), s.otherReads.get()
}

// runOtherClient calls at c's rate until ctx ends, as a steady caller
// would: one attempt per tick, and a refused attempt is simply followed by
// the next one, with no backing off. Its calls take tokens from the same
// bucket and, for writes, the same rolling budget as API calls, at the
// Sim's clock; they touch no engagement and are counted apart from API
// calls. The ticks are the runtime's timers, so under testing/synctest
// with Options.Now nil the counts are exact.
func (s *Sim) runOtherClient(ctx context.Context, c *otherClient) {
	for {
		rate := c.get()
		if rate == 0 {
			select {
			case <-ctx.Done():
				return
			case <-c.changed:
				continue
			}
		}
		if !s.callOther(ctx, c, rate) {
			return
		}
	}
}

// callOther makes one call every 1/rate seconds until the rate changes
// (true) or ctx ends (false). Above 1000/s it ticks every millisecond and
// makes several calls per tick, as timers finer than that are not kept.
func (s *Sim) callOther(ctx context.Context, c *otherClient, rate float64) bool {
	period := time.Duration(float64(time.Second) / rate)
	perTick := 1.0
	if period < time.Millisecond {
		period, perTick = time.Millisecond, rate/1000
	}
	t := time.NewTicker(period)
	defer t.Stop()
	credit := 0.0
	for {
		select {
		case <-ctx.Done():
			return false
		case <-c.changed:
			return true
		case <-t.C:
			for credit += perTick; credit >= 1; credit-- {
				s.stats.otherCall(c.op.write, s.quotas.admit(c.op, s.now()) == admitted)
			}
		}
	}
}

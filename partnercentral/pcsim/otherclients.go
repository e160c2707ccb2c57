package pcsim

import (
	"context"
	"fmt"
)

// otherClient is one steady caller from outside pcsync, such as the
// partner's CRM connector, drawing from the same bucket as pcsync: op says
// which.
type otherClient struct {
	op operation
	steady
}

// validateOtherClientsRate reports a rate the admin API refuses, naming
// the field it came in.
func validateOtherClientsRate(field string, r float64) error {
	switch {
	case r < 0:
		return fmt.Errorf("%s: %v is negative; want calls per second, 0 for none", field, r)
	case !(r <= maxSteadyRate): // also NaN
		return fmt.Errorf("%s: %v is over the most the simulator drives, %g calls per second", field, r, float64(maxSteadyRate))
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
// calls.
func (s *Sim) runOtherClient(ctx context.Context, c *otherClient) {
	c.run(ctx, func() {
		s.stats.otherCall(c.op.write, s.quotas.admit(c.op, s.now()) == admitted)
	})
}

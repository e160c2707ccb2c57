package pcsim

import (
	"maps"
	"sync"
)

// Stats counts the API calls a Sim answered.
type Stats struct {
	// Calls maps an operation ("UpdateEngagementContext", "GetEngagement",
	// or "unknown" for a target the service does not have) to an outcome
	// and its count. Outcomes are HTTP statuses as decimal strings ("200",
	// "409", "429", ...), "drop" for a connection closed with no effect,
	// "lost" for a write applied whose response was never sent, and
	// "canceled" for a call the client gave up on while it waited.
	Calls map[string]map[string]int `json:"calls"`
	// OutsideWrites counts the outside writer's and Touch's writes.
	OutsideWrites int `json:"outsideWrites"`
	// OtherClients counts the calls of other clients on the account's
	// quotas (Options.OtherClientsWriteRPS and OtherClientsReadRPS). They
	// are not in Calls, so Admitted stays what pcsync's own calls spent.
	OtherClients OtherClientsStats `json:"otherClients"`
}

// OtherClientsStats counts other clients' calls by what the quotas said:
// admitted, or throttled by the rate quota or, for a write, the spent
// write budget.
type OtherClientsStats struct {
	WritesAdmitted  int64 `json:"writesAdmitted"`
	WritesThrottled int64 `json:"writesThrottled"`
	ReadsAdmitted   int64 `json:"readsAdmitted"`
	ReadsThrottled  int64 `json:"readsThrottled"`
}

// Outcome keys besides HTTP statuses.
const (
	outcomeDrop     = "drop"
	outcomeLost     = "lost"
	outcomeCanceled = "canceled"
)

type counters struct {
	mu      sync.Mutex
	calls   map[string]map[string]int
	outside int
	other   OtherClientsStats
}

func (c *counters) count(op, outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]map[string]int{}
	}
	m := c.calls[op]
	if m == nil {
		m = map[string]int{}
		c.calls[op] = m
	}
	m[outcome]++
}

func (c *counters) outsideWrite() {
	c.mu.Lock()
	c.outside++
	c.mu.Unlock()
}

func (c *counters) otherCall(write, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case write && ok:
		c.other.WritesAdmitted++
	case write:
		c.other.WritesThrottled++
	case ok:
		c.other.ReadsAdmitted++
	default:
		c.other.ReadsThrottled++
	}
}

// Stats returns a copy of the call counters.
func (s *Sim) Stats() Stats {
	s.stats.mu.Lock()
	defer s.stats.mu.Unlock()
	st := Stats{Calls: make(map[string]map[string]int, len(s.stats.calls)), OutsideWrites: s.stats.outside, OtherClients: s.stats.other}
	for op, m := range s.stats.calls {
		st.Calls[op] = maps.Clone(m)
	}
	return st
}

// Admitted counts the calls of op the quota let through: every outcome
// but a throttle and those decided before the quota check (a 500 or a
// dropped connection from fault injection, a call the client gave up on
// while it waited out injected latency). It is what API calls spent of the
// quota; other clients' calls are in OtherClients.
func (s Stats) Admitted(op string) int {
	n := 0
	for outcome, v := range s.Calls[op] {
		switch outcome {
		case "429", "500", "drop", "canceled":
		default:
			n += v
		}
	}
	return n
}

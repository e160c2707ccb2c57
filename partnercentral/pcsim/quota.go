package pcsim

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// quotas are the account's limits: a token bucket per operation class and a
// rolling write budget. A nil limiter or budget means no limit.
type quotas struct {
	write, read *rate.Limiter
	budget      *budget
}

func newQuotas(o Options) quotas {
	if o.Unlimited {
		return quotas{}
	}
	var q quotas
	q.write = newLimiter(o.WriteRPS, o.WriteBurst, defaultWriteRPS, defaultWriteBurst)
	q.read = newLimiter(o.ReadRPS, o.ReadBurst, defaultReadRPS, defaultReadBurst)
	limit := o.WriteBudget
	if limit == 0 {
		limit = defaultWriteBudget
	}
	window := o.BudgetWindow
	if window <= 0 {
		window = defaultBudgetWindow
	}
	if limit > 0 {
		q.budget = &budget{limit: limit, window: window}
	}
	return q
}

func newLimiter(rps float64, burst int, defRPS float64, defBurst int) *rate.Limiter {
	switch {
	case rps < 0:
		return nil
	case rps == 0:
		rps = defRPS
	}
	if burst <= 0 {
		burst = defBurst
	}
	return rate.NewLimiter(rate.Limit(rps), burst)
}

// verdict is what the account's quotas say to one call.
type verdict uint8

const (
	admitted    verdict = iota
	throttled           // over the operation's rate quota
	budgetSpent         // a write over the rolling write budget
)

// admit runs one call of op at now through the rate quota and, for a
// write the rate quota let through, the write budget. API calls and other
// clients' calls both come through here, so that they draw from the same
// buckets and budget as they do on the real account.
func (q quotas) admit(op operation, now time.Time) verdict {
	switch {
	case !q.allow(op, now):
		return throttled
	case op.write && !q.spend(now):
		return budgetSpent
	}
	return admitted
}

// allow takes a token from the operation's bucket at now. The bucket reads
// the Sim's clock, not its own, so a test with a fake clock gets exact
// counts.
func (q quotas) allow(op operation, now time.Time) bool {
	lim := q.read
	if op.write {
		lim = q.write
	}
	return lim == nil || lim.AllowN(now, 1)
}

// spend admits one write against the rolling budget.
func (q quotas) spend(now time.Time) bool {
	return q.budget == nil || q.budget.take(now)
}

// budget is a rolling window of admitted writes. It keeps the times of the
// last limit admissions in a ring: a write is admitted while fewer than
// limit writes were admitted in the window, that is while the oldest of the
// last limit admissions has left it. The ring grows as needed, so a large
// budget costs memory only once used.
type budget struct {
	mu     sync.Mutex
	limit  int
	window time.Duration
	ring   []time.Time // admission times, oldest at head once full
	head   int
}

func (b *budget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < b.limit {
		b.ring = append(b.ring, now)
		return true
	}
	if now.Sub(b.ring[b.head]) < b.window {
		return false
	}
	b.ring[b.head] = now
	b.head = (b.head + 1) % b.limit
	return true
}

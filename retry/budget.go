package retry

import (
	"context"
	"sync"
	"time"
)

// Budget is a rolling-window count of calls, such as Partner Central's
// 10,000 writes per 24 hours. Take waits while the window is full, so the
// worker pauses instead of overrunning the account's quota; it cannot rely
// on the service to say so, since a spent daily quota may come back as a
// plain ThrottlingException.
//
// The count lives in memory: a restarted worker starts with an empty
// window. Give each replica its share of the account's budget.
//
// Budget is safe for concurrent use.
type Budget struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	ring []time.Time // times of the last limit calls, oldest at head once full
	head int
}

// NewBudget returns a budget of limit calls per window. A limit of 0 or
// less means no budget: Take never waits.
func NewBudget(limit int, window time.Duration, now func() time.Time) *Budget {
	if now == nil {
		now = time.Now
	}
	return &Budget{limit: limit, window: window, now: now}
}

// Take waits until a call fits in the window, then counts it. It returns
// how long it waited, or ctx's error.
func (b *Budget) Take(ctx context.Context) (time.Duration, error) {
	start := b.now()
	for {
		wait, ok := b.tryTake()
		if ok {
			return b.now().Sub(start), nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return b.now().Sub(start), ctx.Err()
		case <-t.C:
		}
	}
}

// Delay is how long until the window has room for a call: 0 when it has
// room now.
func (b *Budget) Delay() time.Duration {
	if b.limit <= 0 {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.ring) < b.limit {
		return 0
	}
	return max(0, b.window-b.now().Sub(b.ring[b.head]))
}

// Wait blocks until the window has room for a call, without taking it: the
// queue consults it before every receive, so a spent budget takes no new
// jobs.
func (b *Budget) Wait(ctx context.Context) error {
	for {
		d := b.Delay()
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// tryTake counts a call if it fits, else says how long until the oldest
// counted call leaves the window.
func (b *Budget) tryTake() (time.Duration, bool) {
	if b.limit <= 0 {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.ring) < b.limit {
		b.ring = append(b.ring, now)
		return 0, true
	}
	if age := now.Sub(b.ring[b.head]); age < b.window {
		return b.window - age, false
	}
	b.ring[b.head] = now
	b.head = (b.head + 1) % b.limit
	return 0, true
}

// Remaining is how many calls the window has room for now; -1 when there
// is no budget.
func (b *Budget) Remaining() int {
	if b.limit <= 0 {
		return -1
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	used := 0
	for _, t := range b.ring {
		if now.Sub(t) < b.window {
			used++
		}
	}
	return b.limit - used
}

// Limit is the configured budget.
func (b *Budget) Limit() int { return b.limit }

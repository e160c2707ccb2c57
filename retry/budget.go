package retry

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Budget is a rolling-window count of calls, such as Partner Central's
// 10,000 writes per 24 hours. Take waits while the window is full, so the
// worker pauses instead of overrunning the account's quota; it cannot rely
// on the service to say so, since a spent daily quota may come back as a
// plain ThrottlingException.
//
// The count lives in memory. To carry it across restarts, a caller keeps
// the time of each call somewhere durable (OnTake) and hands them back to
// the next process (Restore); this package does not know where. Counted
// so, it is one process's: a fleet that shares the account's budget counts
// it in a Ledger they share instead (NewSharedBudget).
//
// Budget is safe for concurrent use.
type Budget struct {
	limit  int
	window time.Duration
	now    func() time.Time
	onTake func(time.Time)
	ledger Ledger // nil: counted here

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

// Ledger counts the calls of a budget that several processes share (the
// replicas of a fleet, each restart of them), where they all see it.
// internal/fleet keeps one in DynamoDB.
type Ledger interface {
	// Take counts one call at now if the window before now holds fewer
	// than limit calls, atomically for every process sharing the ledger,
	// and returns 0; else it counts nothing and returns how long until
	// there may be room.
	Take(ctx context.Context, now time.Time, limit int, window time.Duration) (time.Duration, error)
	// Delay is how long until the window has room, from what the ledger
	// last learnt (at most a few seconds old): 0 when it has room.
	Delay(now time.Time, limit int, window time.Duration) time.Duration
	// Used is how many calls the window holds, from what the ledger last
	// learnt.
	Used(now time.Time, window time.Duration) int
}

// NewSharedBudget returns a budget of limit calls per window counted in
// ledger, shared with every process that counts there. A limit of 0 or
// less means no budget.
func NewSharedBudget(limit int, window time.Duration, ledger Ledger, now func() time.Time) *Budget {
	b := NewBudget(limit, window, now)
	b.ledger = ledger
	return b
}

// Restore counts calls made before this budget existed (by the process
// this one replaced), given by their times in any order: those that left
// the window are dropped, and of the rest the newest limit count. Call it
// before the first Take; it replaces whatever was counted.
func (b *Budget) Restore(times []time.Time) {
	if b.limit <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	var in []time.Time
	for _, t := range times {
		if now.Sub(t) < b.window {
			in = append(in, t)
		}
	}
	slices.SortFunc(in, time.Time.Compare)
	if len(in) > b.limit {
		in = in[len(in)-b.limit:]
	}
	// Oldest first, so that once the ring is full its head (0) is the
	// oldest call, as tryTake expects.
	b.ring, b.head = in, 0
}

// OnTake sets fn to be told the time of every call Take counts, so that
// the caller can keep it for Restore. fn is called from the goroutine that
// called Take, outside the budget's lock, before Take returns: a call is
// never made that fn was not told of. It must be safe for concurrent use.
// Set it before the first Take. A budget with no limit counts nothing and
// never calls it.
func (b *Budget) OnTake(fn func(time.Time)) { b.onTake = fn }

// ErrLongWait says a call would wait for the budget longer than the caller
// allows: Wait is how long, from what the budget knows now.
type ErrLongWait struct{ Wait time.Duration }

func (e *ErrLongWait) Error() string {
	return fmt.Sprintf("daily budget spent; room again in %v", e.Wait.Round(time.Second))
}

// Take waits until a call fits in the window, then counts it. It returns
// how long it waited, or ctx's error.
func (b *Budget) Take(ctx context.Context) (time.Duration, error) {
	return b.TakeWithin(ctx, 0)
}

// TakeWithin is Take, giving up with an *ErrLongWait, counting nothing, as
// soon as the wait for room is longer than limit (0: no limit). Shared by a
// fleet, the room seen a moment ago may be gone when the call is counted:
// the caller learns it here rather than sleeping for hours.
func (b *Budget) TakeWithin(ctx context.Context, limit time.Duration) (time.Duration, error) {
	start := b.now()
	for {
		var (
			at   time.Time
			wait time.Duration
			ok   bool
		)
		if b.ledger != nil && b.limit > 0 {
			var err error
			if wait, err = b.ledger.Take(ctx, b.now(), b.limit, b.window); err != nil {
				return b.now().Sub(start), err
			}
			ok = wait <= 0
		} else {
			at, wait, ok = b.tryTake()
		}
		if ok {
			if b.onTake != nil && b.limit > 0 && b.ledger == nil {
				b.onTake(at)
			}
			return b.now().Sub(start), nil
		}
		if limit > 0 && wait > limit {
			return b.now().Sub(start), &ErrLongWait{Wait: wait}
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
	if b.ledger != nil {
		return b.ledger.Delay(b.now(), b.limit, b.window)
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

// tryTake counts a call if it fits and says when it was counted, else
// says how long until the oldest counted call leaves the window.
func (b *Budget) tryTake() (time.Time, time.Duration, bool) {
	if b.limit <= 0 {
		return time.Time{}, 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if len(b.ring) < b.limit {
		b.ring = append(b.ring, now)
		return now, 0, true
	}
	if age := now.Sub(b.ring[b.head]); age < b.window {
		return time.Time{}, b.window - age, false
	}
	b.ring[b.head] = now
	b.head = (b.head + 1) % b.limit
	return now, 0, true
}

// Remaining is how many calls the window has room for now; -1 when there
// is no budget.
func (b *Budget) Remaining() int {
	if b.limit <= 0 {
		return -1
	}
	if b.ledger != nil {
		return max(0, b.limit-b.ledger.Used(b.now(), b.window))
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

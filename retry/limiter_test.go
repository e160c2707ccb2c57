package retry

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// The priorities pcsync's two job queues wait at.
const (
	realtime = 0
	bulk     = 1
)

func TestLimiterServesByPriorityThenArrival(t *testing.T) {
	tests := []struct {
		name string
		// priorities are the callers' priorities in arrival order, each
		// queued before the next arrives; want is the order their turns
		// come in, by arrival index.
		priorities []int
		want       []int
	}{
		{"realtime after queued bulk takes the next turn", []int{bulk, bulk, bulk, realtime}, []int{3, 0, 1, 2}},
		{"arrival order within each priority", []int{bulk, realtime, bulk, realtime, bulk, realtime}, []int{1, 3, 5, 0, 2, 4}},
		{"three priorities", []int{2, 1, 0, 2, 1, 0}, []int{2, 5, 1, 4, 0, 3}},
		{"a negative priority counts as 0", []int{0, -5, 1, -1}, []int{0, 1, 3, 2}},
		{"one priority is arrival order", []int{bulk, bulk, bulk, bulk}, []int{0, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				got := releaseOrder(t, tt.priorities, nil)
				if !slices.Equal(got, tt.want) {
					t.Errorf("release order for arrivals at priorities %v: got %v, want %v", tt.priorities, got, tt.want)
				}
			})
		})
	}
}

func TestLimiterWaitIsTheHighestPriority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Caller 2 calls Wait (its priority here is not used), the others
		// WaitPriority at bulk.
		got := releaseOrder(t, []int{bulk, bulk, bulk}, func(l *Limiter, ctx context.Context, i, p int) error {
			if i == 2 {
				_, _, err := l.Wait(ctx)
				return err
			}
			_, _, err := l.WaitPriority(ctx, p)
			return err
		})
		if want := []int{2, 0, 1}; !slices.Equal(got, want) {
			t.Errorf("release order, Wait arriving after two bulk callers: got %v, want %v", got, want)
		}
	})
}

// releaseOrder takes a limiter's free turn, then queues one caller per
// priority, each after the one before is waiting, and returns the order
// (by arrival index) in which they are let through. wait, if not nil,
// replaces WaitPriority. It runs in a synctest bubble.
func releaseOrder(t *testing.T, priorities []int, wait func(l *Limiter, ctx context.Context, i, p int) error) []int {
	t.Helper()
	if wait == nil {
		wait = func(l *Limiter, ctx context.Context, _, p int) error {
			_, _, err := l.WaitPriority(ctx, p)
			return err
		}
	}
	l := NewLimiter(LimiterConfig{Ceiling: 10})
	ctx := context.Background()
	if _, _, err := l.Wait(ctx); err != nil { // takes the free turn
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []int
	var wg sync.WaitGroup
	for i, p := range priorities {
		wg.Go(func() {
			if err := wait(l, ctx, i, p); err != nil {
				t.Error(err)
			}
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
		synctest.Wait() // caller i is queued before caller i+1 arrives
	}
	wg.Wait()
	return order
}

func TestLimiterRealtimeWaiterThatLeavesDoesNotBlockBulk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(LimiterConfig{Ceiling: 1})
		ctx := context.Background()
		first, _, err := l.Wait(ctx)
		if err != nil {
			t.Fatal(err)
		}
		turn := time.Duration(float64(time.Second) / l.Rate())
		var bulkAt time.Time
		var wg sync.WaitGroup
		wg.Go(func() {
			var err error
			if bulkAt, _, err = l.WaitPriority(ctx, bulk); err != nil {
				t.Error(err)
			}
		})
		synctest.Wait() // the bulk caller waits for the next turn
		rctx, cancel := context.WithTimeout(ctx, turn/10)
		defer cancel()
		if _, _, err := l.WaitPriority(rctx, realtime); err != context.DeadlineExceeded {
			t.Errorf("realtime WaitPriority past its deadline: got %v, want context.DeadlineExceeded", err)
		}
		wg.Wait()
		// The turn the realtime caller gave up goes to the bulk caller
		// queued behind it, on time. (A turn is a hair longer than
		// 1/Rate: see paced.)
		if got := bulkAt.Sub(first); got > turn+turn/1000 {
			t.Errorf("the bulk caller got its turn %v after the first call, want the next turn, %v after it", got, turn)
		}
	})
}

// turn is one call let through by a limiter.
type turn struct {
	at       time.Duration // since the run started
	priority int
}

// saturate runs callers that wait again as soon as they are let through
// (more demand than any rate) against a limiter at 10/s for 10 s, and
// returns the turns they got. realtimeFor is how long the realtime callers
// keep coming. The free first turn is taken before the callers start.
// (Nobody reports calls to Done, so the rate stays where a limiter starts,
// a quarter of its ceiling.)
func saturate(t *testing.T, realtimeCallers, bulkCallers int, realtimeFor time.Duration) []turn {
	t.Helper()
	const runFor = 10 * time.Second
	var turns []turn
	synctest.Test(t, func(t *testing.T) {
		l := NewLimiter(LimiterConfig{Ceiling: 40})
		if r := l.Rate(); r != 10 {
			t.Fatalf("starting rate: got %g/s, want 10/s", r)
		}
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), runFor)
		defer cancel()
		if _, _, err := l.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		turns = append(turns, turn{at: 0, priority: realtime})
		var wg sync.WaitGroup
		caller := func(ctx context.Context, priority int) {
			wg.Go(func() {
				for {
					sentAt, _, err := l.WaitPriority(ctx, priority)
					if err != nil {
						return
					}
					mu.Lock()
					turns = append(turns, turn{at: sentAt.Sub(start), priority: priority})
					mu.Unlock()
				}
			})
		}
		rctx, rcancel := context.WithTimeout(ctx, realtimeFor)
		defer rcancel()
		for range realtimeCallers {
			caller(rctx, realtime)
		}
		for range bulkCallers {
			caller(ctx, bulk)
		}
		wg.Wait()
	})
	return turns
}

func TestLimiterGivesRealtimeEveryTurnWhileItWaits(t *testing.T) {
	// Four realtime and four bulk callers, each asking again as soon as it
	// is let through, for 5 s; then only the bulk callers, for 5 s more.
	const realtimeFor = 5 * time.Second
	turns := saturate(t, 4, 4, realtimeFor)
	var rt, bk, bulkEarly, realtimeLate int
	for _, tn := range turns[1:] { // not the free first turn
		switch {
		case tn.priority == realtime:
			rt++
			if tn.at >= realtimeFor {
				realtimeLate++
			}
		default:
			bk++
			if tn.at < realtimeFor {
				bulkEarly++
			}
		}
	}
	t.Logf("%d realtime turns, %d bulk turns", rt, bk)
	if bulkEarly > 0 {
		t.Errorf("bulk turns while realtime callers waited: got %d, want 0", bulkEarly)
	}
	if realtimeLate > 0 {
		t.Errorf("realtime turns after the realtime callers stopped: got %d, want 0", realtimeLate)
	}
	// At 10/s, with the free turn at 0, the turns at 0.1 s … 4.9 s go to
	// realtime and those from 5 s on to bulk.
	if rt < 48 || bk < 48 {
		t.Errorf("turns: got %d realtime and %d bulk, want about 49 and 50", rt, bk)
	}
}

func TestLimiterRateIsTheSameWhateverThePriorities(t *testing.T) {
	// Priority decides who goes next, never how fast: callers saturating
	// the limiter at one priority, at the other, or at both get the same
	// number of turns in each second.
	perSecond := func(turns []turn) []int {
		n := make([]int, 10)
		for _, tn := range turns {
			n[int(tn.at/time.Second)]++
		}
		return n
	}
	want := perSecond(saturate(t, 0, 8, 0))
	for _, w := range want {
		if w != 10 {
			t.Fatalf("turns per second, bulk alone at 10/s: got %v, want 10 in each second", want)
		}
	}
	for _, tt := range []struct {
		name                         string
		realtimeCallers, bulkCallers int
		realtimeFor                  time.Duration
	}{
		{"realtime alone", 8, 0, 10 * time.Second},
		{"realtime and bulk", 4, 4, 10 * time.Second},
		{"realtime for 5 s, bulk throughout", 4, 4, 5 * time.Second},
		{"realtime for 2.5 s, bulk throughout", 4, 4, 2500 * time.Millisecond},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := perSecond(saturate(t, tt.realtimeCallers, tt.bulkCallers, tt.realtimeFor))
			if !slices.Equal(got, want) {
				t.Errorf("turns per second: got %v, want %v (bulk alone)", got, want)
			}
		})
	}
}

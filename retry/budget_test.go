package retry

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

func TestBudgetPausesInsteadOfOverrunning(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(3, time.Hour, nil)
		ctx := context.Background()
		start := time.Now()
		for i := range 3 {
			if waited, err := b.Take(ctx); err != nil || waited != 0 {
				t.Fatalf("take %d: got wait %v, %v; want none", i, waited, err)
			}
			time.Sleep(time.Minute) // synctest's clock: spaces the calls a minute apart
		}
		if got := b.Remaining(); got != 0 {
			t.Errorf("Remaining: got %d, want 0", got)
		}
		// The fourth call waits until the first leaves the window.
		waited, err := b.Take(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(start), time.Hour; got != want {
			t.Errorf("fourth call went at %v, want %v (when the first left the window)", got, want)
		}
		if waited != 57*time.Minute {
			t.Errorf("waited: got %v, want 57m", waited)
		}
		// A caller that gives up gets its context's error.
		short, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, err := b.Take(short); err != context.DeadlineExceeded {
			t.Errorf("got %v, want context.DeadlineExceeded", err)
		}
	})
}

func TestBudgetUnlimited(t *testing.T) {
	b := NewBudget(0, time.Hour, nil)
	for range 100 {
		if _, err := b.Take(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if got := b.Remaining(); got != -1 {
		t.Errorf("Remaining: got %d, want -1 (no budget)", got)
	}
}

func TestBudgetDelayAndWait(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(2, time.Hour, nil)
		if d := b.Delay(); d != 0 {
			t.Fatalf("empty budget: Delay %v, want 0", d)
		}
		b.Take(context.Background())
		time.Sleep(10 * time.Minute)
		b.Take(context.Background())
		if d := b.Delay(); d != 50*time.Minute {
			t.Errorf("spent budget: Delay %v, want 50m (until the first call leaves the window)", d)
		}
		start := time.Now()
		if err := b.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != 50*time.Minute {
			t.Errorf("Wait returned after %v, want 50m", got)
		}
		if got := b.Remaining(); got != 1 {
			t.Errorf("Wait took a slot: Remaining %d, want 1", got)
		}
	})
}

// TestBudgetRestoreResumesTheWindow: a budget restored with the times of a
// previous process's calls is as spent as that process's was, and its
// window moves on from those times, not from the restart.
func TestBudgetRestoreResumesTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		previous := []time.Time{
			now.Add(-2 * time.Hour),    // left the window: not counted
			now.Add(-10 * time.Minute), // given out of order
			now.Add(-50 * time.Minute),
			now.Add(-30 * time.Minute),
		}
		b := NewBudget(3, time.Hour, nil)
		b.Restore(previous)
		if got := b.Remaining(); got != 0 {
			t.Fatalf("Remaining after restore: got %d, want 0 (three calls within the hour)", got)
		}
		if got, want := b.Delay(), 10*time.Minute; got != want {
			t.Errorf("Delay after restore: got %v, want %v (until the call of 50 minutes ago leaves the window)", got, want)
		}
		if _, err := b.Take(context.Background()); err != nil {
			t.Fatal(err)
		}
		if got, want := time.Since(now), 10*time.Minute; got != want {
			t.Errorf("first call after restore went at %v, want %v", got, want)
		}
	})
}

func TestBudgetRestoreKeepsTheNewest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		now := time.Now()
		// Five calls within the window, a limit of two (lowered since the
		// last run): the two newest count, so the budget is spent until
		// the older of them leaves the window.
		var previous []time.Time
		for i := range 5 {
			previous = append(previous, now.Add(-time.Duration(50-10*i)*time.Minute))
		}
		b := NewBudget(2, time.Hour, nil)
		b.Restore(previous)
		if got, want := b.Delay(), 40*time.Minute; got != want {
			t.Errorf("Delay: got %v, want %v (the second newest call was 20 minutes ago)", got, want)
		}
	})
}

func TestBudgetOnTakeReportsEveryCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBudget(2, time.Hour, nil)
		var got []time.Time
		b.OnTake(func(at time.Time) { got = append(got, at) })
		start := time.Now()
		for range 3 {
			b.Take(context.Background())
			time.Sleep(time.Minute)
		}
		// The third call waited for the first to leave the window.
		want := []time.Time{start, start.Add(time.Minute), start.Add(time.Hour)}
		if len(got) != len(want) {
			t.Fatalf("reported %d calls, want %d", len(got), len(want))
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Errorf("call %d reported at %v, want %v", i, got[i].Sub(start), want[i].Sub(start))
			}
		}
		// A budget without a limit counts nothing and reports nothing.
		none := NewBudget(0, time.Hour, nil)
		none.OnTake(func(time.Time) { t.Error("a budget without a limit reported a call") })
		none.Take(context.Background())
	})
}

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

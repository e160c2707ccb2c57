package retry

import (
	"fmt"
	"math"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cenkalti/backoff/v4"
)

func TestRequeueDelayGrowsAndIsCapped(t *testing.T) {
	p := DefaultPolicy()
	tests := []struct {
		receive  int
		min, max time.Duration
	}{
		{1, 22500 * time.Millisecond, 37500 * time.Millisecond},
		{2, 45 * time.Second, 75 * time.Second},
		{3, 90 * time.Second, 150 * time.Second},
		{10, 11*time.Minute + 15*time.Second, 15 * time.Minute},
		{1000, 11*time.Minute + 15*time.Second, 15 * time.Minute},
		{math.MaxInt, 11*time.Minute + 15*time.Second, 15 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.receive), func(t *testing.T) {
			for range 1000 {
				if got := p.RequeueDelay(tt.receive); got < tt.min || got > tt.max {
					t.Fatalf("RequeueDelay(%d): got %v, want between %v and %v", tt.receive, got, tt.min, tt.max)
				}
			}
		})
	}
}

// TestRequeueDelayAtTheCap: past the cap the delay is drawn from 75 % to
// 125 % of RequeueMax and then capped, so about half the delays are exactly
// RequeueMax and the rest spread below it.
func TestRequeueDelayAtTheCap(t *testing.T) {
	p := DefaultPolicy()
	const samples = 2000
	atCap := 0
	for range samples {
		if p.RequeueDelay(50) == p.RequeueMax {
			atCap++
		}
	}
	// Binomial(2000, 0.5) has a standard deviation of about 22.
	if atCap < samples/2-200 || atCap > samples/2+200 {
		t.Errorf("RequeueDelay(50): got %d of %d at RequeueMax, want about half", atCap, samples)
	}
}

func TestBackoffStopsAtBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		p := DefaultPolicy()
		p.AttemptBudget = time.Minute
		b := p.Backoff()
		start := time.Now()
		var waits []time.Duration
		for {
			d := b.NextBackOff()
			if d == backoff.Stop {
				break
			}
			waits = append(waits, d)
			time.Sleep(d) // synctest's clock
		}
		elapsed := time.Since(start)
		if elapsed < p.AttemptBudget-p.MaxBackoff*3/2 || elapsed > p.AttemptBudget+p.MaxBackoff*3/2 {
			t.Errorf("retried for %v, want about the %v budget", elapsed, p.AttemptBudget)
		}
		if len(waits) < 4 || waits[0] > p.InitialBackoff*3/2 || waits[1] <= waits[0]/2 {
			t.Errorf("waits %v: want several, growing from about %v", waits, p.InitialBackoff)
		}
		for _, w := range waits {
			if w > p.MaxBackoff*3/2 {
				t.Errorf("wait %v exceeds the cap %v with jitter", w, p.MaxBackoff)
			}
		}
	})
}

func TestConflictWait(t *testing.T) {
	p := DefaultPolicy()
	for _, n := range []int{1, 2, 3, 6, 7, 8, 10, 1000, math.MaxInt} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			base := p.InitialBackoff / 5 << min(n-1, 6)
			for range 1000 {
				if d := p.ConflictWait(n); d < base/2 || d > base*3/2 {
					t.Fatalf("ConflictWait(%d): got %v, want within [%v, %v]", n, d, base/2, base*3/2)
				}
			}
		})
	}
}

func TestConflictWaitZeroBackoff(t *testing.T) {
	p := DefaultPolicy()
	p.InitialBackoff = 0
	if got := p.ConflictWait(1); got != 0 {
		t.Errorf("ConflictWait(1) with no InitialBackoff: got %v, want 0", got)
	}
}

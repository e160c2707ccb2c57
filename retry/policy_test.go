package retry

import (
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
	}
	for _, tt := range tests {
		for range 50 {
			if got := p.RequeueDelay(tt.receive); got < tt.min || got > tt.max {
				t.Fatalf("RequeueDelay(%d): got %v, want between %v and %v", tt.receive, got, tt.min, tt.max)
			}
		}
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
	for n := 1; n <= 10; n++ {
		for range 50 {
			d := p.ConflictWait(n)
			base := p.InitialBackoff / 5 << min(n-1, 6)
			if d < base/2 || d >= base*3/2 {
				t.Fatalf("ConflictWait(%d): got %v, want within [%v, %v)", n, d, base/2, base*3/2)
			}
		}
	}
}

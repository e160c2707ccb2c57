package queue

import (
	"math"
	"testing"
	"time"
)

// TestBackoffEqualJitter: the wait before retry number attempt is drawn from
// [d/2, d] for d = base doubled per earlier attempt, capped at limit, and
// spreads over that whole range.
func TestBackoffEqualJitter(t *testing.T) {
	tests := []struct {
		name        string
		attempt     int
		base, limit time.Duration
		wantD       time.Duration
	}{
		{"first receive retry", 1, recvBackoffBase, recvBackoffMax, 100 * time.Millisecond},
		{"third receive retry", 3, recvBackoffBase, recvBackoffMax, 400 * time.Millisecond},
		{"receive retries at the cap", 8, recvBackoffBase, recvBackoffMax, recvBackoffMax},
		{"long outage", 5000, recvBackoffBase, recvBackoffMax, recvBackoffMax},
		{"largest attempt", math.MaxInt, recvBackoffBase, recvBackoffMax, recvBackoffMax},
		{"no failures yet counts as the first", 0, visRetryBase, time.Second, 200 * time.Millisecond},
		{"empty receives", 4, emptyBackoffBase, emptyBackoffMax, 400 * time.Millisecond},
		{"empty receives at the cap", 6, emptyBackoffBase, emptyBackoffMax, emptyBackoffMax},
		{"heartbeat retries below a 7.5s tick", 5, visRetryBase, 7500 * time.Millisecond, 3200 * time.Millisecond},
		{"heartbeat retries at a 7.5s tick", 7, visRetryBase, 7500 * time.Millisecond, 7500 * time.Millisecond},
		{"deletes", 2, deleteBackoffBase, deleteBackoffMax, 400 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lo, hi := tt.wantD/2, tt.wantD
			lowest, highest := time.Duration(math.MaxInt64), time.Duration(0)
			for range 2000 {
				got := backoff(tt.attempt, tt.base, tt.limit)
				if got < lo || got > hi {
					t.Fatalf("backoff(%d, %v, %v): got %v, want within [%v, %v]", tt.attempt, tt.base, tt.limit, got, lo, hi)
				}
				lowest, highest = min(lowest, got), max(highest, got)
			}
			// Missing the bottom or top tenth in 2000 uniform draws has a
			// chance of 0.9^2000: the waits do spread, at the cap too.
			if spread := (hi - lo) / 10; lowest > lo+spread || highest < hi-spread {
				t.Errorf("backoff(%d, %v, %v): got waits within [%v, %v], want them spread over [%v, %v]",
					tt.attempt, tt.base, tt.limit, lowest, highest, lo, hi)
			}
		})
	}
}

func TestBackoffZero(t *testing.T) {
	for _, tt := range []struct {
		name        string
		base, limit time.Duration
	}{
		{"no base", 0, time.Second},
		{"no limit", time.Second, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := backoff(3, tt.base, tt.limit); got != 0 {
				t.Errorf("backoff(3, %v, %v): got %v, want 0", tt.base, tt.limit, got)
			}
		})
	}
}

package retry

import (
	"math"
	"testing"
	"time"
)

func TestNth(t *testing.T) {
	const maxDuration = time.Duration(math.MaxInt64)
	tests := []struct {
		name        string
		n           int
		base, limit time.Duration
		jitter      float64
		lo, hi      time.Duration
	}{
		{"first", 1, time.Second, time.Minute, 0.5, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"third doubles twice", 3, time.Second, time.Minute, 0.5, 2 * time.Second, 6 * time.Second},
		{"quarter jitter", 2, 30 * time.Second, 15 * time.Minute, 0.25, 45 * time.Second, 75 * time.Second},
		{"zero counts as first", 0, time.Second, time.Minute, 0.5, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"negative counts as first", -3, time.Second, time.Minute, 0.5, 500 * time.Millisecond, 1500 * time.Millisecond},
		// The limit caps the interval, not the jittered wait.
		{"at the limit", 7, time.Second, time.Minute, 0.5, 30 * time.Second, 90 * time.Second},
		{"base above the limit", 1, time.Minute, time.Second, 0.5, 500 * time.Millisecond, 1500 * time.Millisecond},
		{"receive count in the hundreds", 300, time.Second, time.Minute, 0.5, 30 * time.Second, 90 * time.Second},
		{"largest n", math.MaxInt, time.Second, time.Minute, 0.5, 30 * time.Second, 90 * time.Second},
		{"shift past 63 bits", 70, 1, maxDuration, 0, maxInterval, maxInterval},
		{"no limit to speak of", 100, time.Hour, maxDuration, 1, 0, 2 * maxInterval},
		{"no jitter", 4, 5 * time.Minute, 12 * time.Hour, 0, 40 * time.Minute, 40 * time.Minute},
		{"no jitter at the limit", 20, 5 * time.Minute, 12 * time.Hour, 0, 12 * time.Hour, 12 * time.Hour},
		{"negative jitter is none", 2, time.Second, time.Minute, -1, 2 * time.Second, 2 * time.Second},
		{"NaN jitter is none", 2, time.Second, time.Minute, math.NaN(), 2 * time.Second, 2 * time.Second},
		{"jitter above 1 is 1", 2, time.Second, time.Minute, 3, 0, 4 * time.Second},
		{"zero base", 5, 0, time.Minute, 0.5, 0, 0},
		{"negative base", 5, -time.Second, time.Minute, 0.5, 0, 0},
		{"zero limit", 5, time.Second, 0, 0.5, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const samples = 2000
			lowest, highest := time.Duration(math.MaxInt64), time.Duration(math.MinInt64)
			for range samples {
				got := Nth(tt.n, tt.base, tt.limit, tt.jitter)
				if got < tt.lo || got > tt.hi {
					t.Fatalf("Nth(%d, %v, %v, %v): got %v, want within [%v, %v]",
						tt.n, tt.base, tt.limit, tt.jitter, got, tt.lo, tt.hi)
				}
				lowest, highest = min(lowest, got), max(highest, got)
			}
			// Jittered waits spread over the whole range: with 2000 uniform
			// samples, missing the bottom or the top tenth has a chance of
			// 0.9^2000, which is nil.
			spread := (tt.hi - tt.lo) / 10
			if lowest > tt.lo+spread || highest < tt.hi-spread {
				t.Errorf("Nth(%d, %v, %v, %v): got waits within [%v, %v], want them spread over [%v, %v]",
					tt.n, tt.base, tt.limit, tt.jitter, lowest, highest, tt.lo, tt.hi)
			}
		})
	}
}

// TestNthMean checks the shape inside the bounds: the library's jitter is
// uniform, so the mean sits at the interval.
func TestNthMean(t *testing.T) {
	const samples = 20000
	var sum time.Duration
	for range samples {
		sum += Nth(3, time.Second, time.Minute, 0.5)
	}
	// The standard error of the mean is 4s/sqrt(12·20000) ≈ 8ms; 100ms
	// is over 12 of them.
	if got, want := sum/samples, 4*time.Second; got < want-100*time.Millisecond || got > want+100*time.Millisecond {
		t.Errorf("mean of Nth(3, 1s, 1m, 0.5): got %v, want about %v", got, want)
	}
}

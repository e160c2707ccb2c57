package retry

import (
	"context"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// maxInterval bounds the interval before jitter so that the jittered value,
// at most twice the interval, still fits in a time.Duration; it is 73 years,
// so no caller comes near it.
const maxInterval = time.Duration(math.MaxInt64 / 4)

// Nth is the wait before retry number n (1-based) of an exponential backoff
// in one call, for callers that know n but keep no backoff.BackOff between
// retries (a receive count, a failure streak): the interval base·2^(n-1),
// capped at limit, randomized by jitter either way as
// backoff.ExponentialBackOff does it. So the result lies within
// [d·(1-jitter), d·(1+jitter)], give or take a nanosecond of float rounding,
// for d = min(base·2^(n-1), limit). Like the library's MaxInterval, limit
// caps the interval, not the jittered result, so at the cap the waits stay
// spread around limit rather than piling up on it. A caller that must never
// exceed limit caps the result itself.
//
// n below 1 counts as 1; jitter is clamped to [0, 1], and 0 returns exactly
// d; a base or limit of 0 or less returns 0. Nth is safe for concurrent use.
func Nth(n int, base, limit time.Duration, jitter float64) time.Duration {
	if base <= 0 || limit <= 0 {
		return 0
	}
	if !(jitter > 0) { // also catches NaN
		jitter = 0
	}
	jitter = min(jitter, 1)
	// The doubling is computed here rather than by calling NextBackOff n-1
	// times, so that a receive count in the hundreds costs one shift and
	// cannot overflow: base<<k stays within limit exactly when base <= limit>>k.
	d := limit
	if k := max(n-1, 0); k < 63 && base <= limit>>k {
		d = base << k
	}
	d = min(d, maxInterval)
	// A literal rather than NewExponentialBackOff, whose options put it on
	// the heap: this runs on every failed or empty SQS call.
	b := backoff.ExponentialBackOff{
		InitialInterval:     d,
		RandomizationFactor: jitter,
		Multiplier:          2,
		MaxInterval:         d,
		MaxElapsedTime:      0, // never backoff.Stop
		Stop:                backoff.Stop,
		Clock:               backoff.SystemClock,
	}
	b.Reset()
	return b.NextBackOff()
}

// Sleep waits d, or until ctx is done, and reports whether all of d passed:
// every pause between retries is a select on ctx and a timer.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package pcsim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// Faults are the failures a Sim injects into API calls. Shares are
// probabilities in [0, 1], drawn per call from the Sim's seeded source.
// In JSON, durations are Go duration strings ("250ms").
type Faults struct {
	Error5xx      float64       // share of API calls answered 500 InternalServerException, before any effect
	Drop          float64       // share of API calls whose connection is closed with no response and no effect
	LostResponse  float64       // share of successful UpdateEngagementContext calls applied, then closed before the response
	Latency       time.Duration // added to every API call; the wait ends early when the request's context does
	LatencyJitter time.Duration // plus a uniform random extra in [0, LatencyJitter)
	DenyAccess    bool          // every API call answers 403 AccessDeniedException (a systemic failure)
}

// faultsJSON is Faults on the wire: durations as strings, so that an
// operator can write "250ms" with curl.
type faultsJSON struct {
	Error5xx      float64 `json:"Error5xx"`
	Drop          float64 `json:"Drop"`
	LostResponse  float64 `json:"LostResponse"`
	Latency       string  `json:"Latency"`
	LatencyJitter string  `json:"LatencyJitter"`
	DenyAccess    bool    `json:"DenyAccess"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	return json.Marshal(faultsJSON{
		Error5xx:      f.Error5xx,
		Drop:          f.Drop,
		LostResponse:  f.LostResponse,
		Latency:       f.Latency.String(),
		LatencyJitter: f.LatencyJitter.String(),
		DenyAccess:    f.DenyAccess,
	})
}

// UnmarshalJSON reads durations as Go duration strings; absent fields are
// zero, so a document replaces the whole set of faults. Unknown fields are
// an error: a misspelt fault silently left off would mislead a test.
func (f *Faults) UnmarshalJSON(data []byte) error {
	var w faultsJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return err
	}
	out := Faults{Error5xx: w.Error5xx, Drop: w.Drop, LostResponse: w.LostResponse, DenyAccess: w.DenyAccess}
	var err error
	if out.Latency, err = parseDuration("Latency", w.Latency); err != nil {
		return err
	}
	if out.LatencyJitter, err = parseDuration("LatencyJitter", w.LatencyJitter); err != nil {
		return err
	}
	*f = out
	return nil
}

func parseDuration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration such as \"250ms\"", field, s)
	}
	return d, nil
}

// Validate reports the first value out of range: shares outside [0, 1] or
// negative durations.
func (f Faults) Validate() error {
	for _, s := range []struct {
		name string
		v    float64
	}{{"Error5xx", f.Error5xx}, {"Drop", f.Drop}, {"LostResponse", f.LostResponse}} {
		if !(s.v >= 0 && s.v <= 1) { // also rejects NaN
			return fmt.Errorf("%s: %v is not a share between 0 and 1", s.name, s.v)
		}
	}
	if f.Latency < 0 {
		return fmt.Errorf("Latency: %v is negative", f.Latency)
	}
	if f.LatencyJitter < 0 {
		return fmt.Errorf("LatencyJitter: %v is negative", f.LatencyJitter)
	}
	return nil
}

// clamp brings shares into [0, 1] and durations to at least 0, for
// SetFaults, which has no error to return.
func (f Faults) clamp() Faults {
	share := func(v float64) float64 {
		switch {
		case v > 1:
			return 1
		case v >= 0:
			return v
		}
		return 0 // negative or NaN
	}
	f.Error5xx, f.Drop, f.LostResponse = share(f.Error5xx), share(f.Drop), share(f.LostResponse)
	f.Latency, f.LatencyJitter = max(f.Latency, 0), max(f.LatencyJitter, 0)
	return f
}

// SetFaults replaces the faults injected from the next call on. Shares are
// clamped into [0, 1] and negative durations to 0.
func (s *Sim) SetFaults(f Faults) {
	f = f.clamp()
	s.faults.Store(&f)
}

// Faults returns the faults in force.
func (s *Sim) Faults() Faults { return *s.faults.Load() }

// lockedRand is a seeded source shared by concurrent calls. Calls draw in
// arrival order, so a sequential client sees the same faults for the same
// seed.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func newLockedRand(seed int64, stream uint64) *lockedRand {
	return &lockedRand{r: rand.New(rand.NewPCG(uint64(seed), stream))}
}

// hit draws whether an event of probability p happens. Certain and
// impossible events draw nothing, so that turning one fault fully on or
// off does not shift the draws of the others.
func (l *lockedRand) hit(p float64) bool {
	if p <= 0 {
		return false
	}
	if p >= 1 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Float64() < p
}

// int64N returns a uniform value in [0, n); n must be positive.
func (l *lockedRand) int64N(n int64) int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.Int64N(n)
}

// intN returns a uniform value in [0, n); n must be positive.
func (l *lockedRand) intN(n int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.r.IntN(n)
}

// delay waits out the injected latency, or until ctx ends. It holds no
// lock while it waits, so slow calls do not hold up others.
func (s *Sim) delay(ctx context.Context, f Faults) error {
	d := f.Latency
	if f.LatencyJitter > 0 {
		d += time.Duration(s.faultRand.int64N(int64(f.LatencyJitter)))
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// closeConnection ends the exchange with no response at all, as a network
// failure or a crashed front end would: the client sees a transport error.
// It hijacks the connection when it can; otherwise (HTTP/2) it aborts the
// handler, which resets the stream.
func closeConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

package retry

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// CircuitState is the circuit's position.
type CircuitState int

// Circuit states.
const (
	// Closed: calls flow.
	Closed CircuitState = iota
	// Open: the service refuses every call; no new jobs are taken, calls
	// wait, and after a cool-down one call probes.
	Open
	// HalfOpen: one probe call is out; everyone else waits for its result.
	HalfOpen
)

func (s CircuitState) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// CircuitConfig tunes a Circuit.
type CircuitConfig struct {
	// FailureThreshold is how many transient failures in a row, with no
	// success between them, open the circuit ("every call failing").
	// A systemic error (access denied, account quota spent) opens it at once.
	FailureThreshold int
	// MinCooldown is the first wait before a probe; each failed probe
	// doubles it up to MaxCooldown.
	MinCooldown, MaxCooldown time.Duration
	Logger                   *slog.Logger
}

// Circuit stops the worker from taking new jobs while the service refuses
// every call, keeps the jobs it holds, probes with one call after a
// cool-down, and resumes when a probe gets through. It is safe for
// concurrent use; metrics read its State when they are scraped. It logs
// when it opens and when it closes again, never while holding its lock.
type Circuit struct {
	cfg CircuitConfig

	mu        sync.Mutex
	state     CircuitState
	failures  int
	cooldown  time.Duration
	openUntil time.Time
	reason    string
	closes    uint64        // how many times the circuit closed again
	changed   chan struct{} // closed and replaced at every state change
}

// NewCircuit returns a closed circuit.
func NewCircuit(cfg CircuitConfig) *Circuit {
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 20
	}
	if cfg.MinCooldown <= 0 {
		cfg.MinCooldown = 5 * time.Second
	}
	if cfg.MaxCooldown < cfg.MinCooldown {
		cfg.MaxCooldown = max(5*time.Minute, cfg.MinCooldown)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Circuit{cfg: cfg, changed: make(chan struct{})}
}

// State returns the current state.
func (c *Circuit) State() CircuitState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state
}

// Wait blocks while the circuit is not closed. The queue consults it before
// every receive, so an open circuit takes no new jobs.
func (c *Circuit) Wait(ctx context.Context) error {
	for {
		c.mu.Lock()
		state, changed := c.state, c.changed
		c.mu.Unlock()
		if state == Closed {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// Acquire blocks until a call may go out. With the circuit closed it
// returns at once; open, it waits for the cool-down, then lets exactly one
// caller through as the probe (probe true) while the others wait for its
// result. The caller must report the call's class with Record.
func (c *Circuit) Acquire(ctx context.Context) (probe bool, err error) {
	for {
		c.mu.Lock()
		state, changed := c.state, c.changed
		var wait time.Duration
		switch state {
		case Closed:
			c.mu.Unlock()
			return false, nil
		case Open:
			wait = time.Until(c.openUntil)
			if wait <= 0 {
				c.setLocked(HalfOpen)
				c.mu.Unlock()
				return true, nil
			}
		case HalfOpen:
			wait = -1 // until the probe reports
		}
		c.mu.Unlock()
		var timer *time.Timer
		var fired <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fired = timer.C
		}
		select {
		case <-ctx.Done():
			stopTimer(timer)
			return false, ctx.Err()
		case <-changed:
		case <-fired:
		}
		stopTimer(timer)
	}
}

// Record reports how a call ended. probe is what Acquire returned for it.
func (c *Circuit) Record(probe bool, class Class, reason string) {
	// What to log is decided under the lock and logged after it.
	var opened, closed bool
	var cooldown time.Duration
	var was string
	c.mu.Lock()
	switch {
	case class == Systemic || (class == Transient && probe):
		if c.state != Open {
			cooldown, opened = c.openLocked(probe, reason), true
		}
	case class == Transient:
		c.failures++
		if c.failures >= c.cfg.FailureThreshold && c.state == Closed {
			cooldown, opened = c.openLocked(false, reason), true
		}
	case class == Canceled:
		if probe && c.state == HalfOpen {
			// The probe never got an answer; let another caller probe.
			c.openUntil = time.Now()
			c.setLocked(Open)
		}
	default:
		// Any answer that shows the service works (success, conflict,
		// throttle, a job's own validation error) closes the circuit.
		c.failures = 0
		if c.state != Closed {
			c.cooldown = 0
			c.closes++
			c.setLocked(Closed)
			closed, was = true, c.reason
		}
	}
	c.mu.Unlock()
	switch {
	case opened:
		c.cfg.Logger.Warn("circuit open: not taking new jobs", "reason", reason, "probe_in", cooldown)
	case closed:
		c.cfg.Logger.Info("circuit closed: Partner Central answers again", "was_open_for", was)
	}
}

// openLocked opens the circuit and returns the cool-down before the probe.
func (c *Circuit) openLocked(probeFailed bool, reason string) time.Duration {
	switch {
	case c.cooldown == 0:
		c.cooldown = c.cfg.MinCooldown
	case probeFailed:
		c.cooldown = min(c.cooldown*2, c.cfg.MaxCooldown)
	}
	c.openUntil = time.Now().Add(c.cooldown)
	c.reason = reason
	c.failures = 0
	c.setLocked(Open)
	return c.cooldown
}

// setLocked changes the state and wakes everyone waiting for a change.
func (c *Circuit) setLocked(s CircuitState) {
	c.state = s
	close(c.changed)
	c.changed = make(chan struct{})
}

// NextProbe is when the next probe may go out: a time in the past when the
// circuit is closed (or already probing).
func (c *Circuit) NextProbe() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == Open {
		return c.openUntil
	}
	return time.Time{}
}

// Closes counts how many times the circuit closed after being open: a job
// that met a systemic error before a close and meets it again after knows
// the error is its own.
func (c *Circuit) Closes() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closes
}

// Reason is the error that last opened the circuit.
func (c *Circuit) Reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

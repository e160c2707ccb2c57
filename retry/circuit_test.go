package retry

import (
	"context"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

func TestCircuitOpensProbesAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{FailureThreshold: 3, MinCooldown: 10 * time.Second, MaxCooldown: time.Minute})
		ctx := context.Background()

		if probe, err := c.Acquire(ctx); probe || err != nil {
			t.Fatalf("closed circuit: got probe %v, %v; want a plain pass", probe, err)
		}
		c.Record(false, Systemic, "AccessDeniedException")
		if got := c.State(); got != Open {
			t.Fatalf("after a systemic error: got %s, want open", got)
		}

		// While open, the queue's gate holds and callers wait.
		gateOpen := make(chan struct{})
		go func() { c.Wait(ctx); close(gateOpen) }()
		results := make(chan bool, 3)
		for range 3 {
			go func() { probe, _ := c.Acquire(ctx); results <- probe }()
		}
		synctest.Wait()
		select {
		case <-gateOpen:
			t.Fatal("gate let a receive through while the circuit is open")
		case <-results:
			t.Fatal("a call went out before the cool-down")
		default:
		}

		// After the cool-down exactly one caller probes.
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := <-results; !got {
			t.Fatal("first caller after the cool-down: got no probe, want the probe")
		}
		if got := c.State(); got != HalfOpen {
			t.Errorf("state during the probe: got %s, want half_open", got)
		}
		select {
		case <-results:
			t.Fatal("a second call went out while the probe was out")
		default:
		}

		// The probe fails: open again, with a doubled cool-down.
		c.Record(true, Systemic, "AccessDeniedException")
		if got := c.State(); got != Open {
			t.Errorf("after the probe failed: got %s, want open", got)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case <-results:
			t.Fatal("probe after 10 s, want the doubled 20 s cool-down")
		default:
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if got := <-results; !got {
			t.Fatal("after 20 s: got no probe")
		}
		if got := c.State(); got != HalfOpen {
			t.Errorf("state during the second probe: got %s, want half_open", got)
		}

		// The probe succeeds: closed, everyone proceeds.
		c.Record(true, None, "")
		if got := <-results; got {
			t.Error("after the circuit closed: got a probe, want a plain pass")
		}
		<-gateOpen
		if got := c.State(); got != Closed {
			t.Errorf("after the probe succeeded: got %s, want closed", got)
		}
	})
}

func TestCircuitOpensOnRunOfTransientFailures(t *testing.T) {
	c := NewCircuit(CircuitConfig{FailureThreshold: 3})
	c.Record(false, Transient, "500")
	c.Record(false, Transient, "500")
	c.Record(false, None, "") // a success breaks the run
	c.Record(false, Transient, "500")
	c.Record(false, Transient, "500")
	if got := c.State(); got != Closed {
		t.Fatalf("two failures after a success: got %s, want closed", got)
	}
	c.Record(false, Transient, "connection refused")
	if got := c.State(); got != Open {
		t.Fatalf("three failures in a row: got %s, want open", got)
	}
	if got := c.Reason(); got != "connection refused" {
		t.Errorf("Reason: got %q, want the error that opened it", got)
	}
	// Throttles and the job's own errors do not count as the service failing.
	c2 := NewCircuit(CircuitConfig{FailureThreshold: 2})
	for _, cl := range []Class{Throttle, Permanent, Conflict, Throttle} {
		c2.Record(false, cl, "")
	}
	if got := c2.State(); got != Closed {
		t.Errorf("after throttles and job errors: got %s, want closed", got)
	}
}

func TestCircuitCanceledProbeLetsAnotherProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{MinCooldown: time.Second})
		c.Record(false, Systemic, "denied")
		time.Sleep(time.Second)
		probe, _ := c.Acquire(context.Background())
		if !probe {
			t.Fatal("got no probe")
		}
		c.Record(true, Canceled, "")
		probe, _ = c.Acquire(context.Background())
		if !probe {
			t.Error("after the probe was canceled: got no probe, want another")
		}
	})
}

// lockProbe is a slog.Handler that notes every record logged while the
// circuit's lock is held.
type lockProbe struct {
	c         *Circuit
	logged    int
	underLock int
}

func (p *lockProbe) Enabled(context.Context, slog.Level) bool { return true }
func (p *lockProbe) WithAttrs([]slog.Attr) slog.Handler       { return p }
func (p *lockProbe) WithGroup(string) slog.Handler            { return p }
func (p *lockProbe) Handle(context.Context, slog.Record) error {
	p.logged++
	if !p.c.mu.TryLock() {
		p.underLock++
		return nil
	}
	p.c.mu.Unlock()
	return nil
}

// TestCircuitLogsOutsideItsLock: a log handler may block (a full pipe on
// stderr), and logging under the lock would then stall every caller, the
// queue's gate and the readiness probe included.
func TestCircuitLogsOutsideItsLock(t *testing.T) {
	probe := &lockProbe{}
	c := NewCircuit(CircuitConfig{FailureThreshold: 2, Logger: slog.New(probe)})
	probe.c = c
	c.Record(false, Systemic, "AccessDeniedException") // opens
	c.Record(false, None, "")                          // closes
	c.Record(false, Transient, "500")
	c.Record(false, Transient, "500") // opens again
	if probe.logged != 3 {
		t.Fatalf("log records: got %d, want 3 (open, close, open)", probe.logged)
	}
	if probe.underLock != 0 {
		t.Errorf("records logged under the circuit's lock: got %d, want 0", probe.underLock)
	}
}

package retry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// errDenied is the service's refusal of every call.
var errDenied = &types.AccessDeniedException{Message: aws.String("User is not authorized to perform this action")}

func TestCircuitOpensProbesAndCloses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{FailureThreshold: 3, MinCooldown: 10 * time.Second, MaxCooldown: time.Minute})
		ctx := context.Background()

		if probe, err := c.Acquire(ctx); probe || err != nil {
			t.Fatalf("closed circuit: got probe %v, %v; want a plain pass", probe, err)
		}
		c.Record(false, Systemic, errDenied)
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
		c.Record(true, Systemic, errDenied)
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
		c.Record(true, None, nil)
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
	c.Record(false, Transient, errors.New("500"))
	c.Record(false, Transient, errors.New("500"))
	c.Record(false, None, nil) // a success breaks the run
	c.Record(false, Transient, errors.New("500"))
	c.Record(false, Transient, errors.New("500"))
	if got := c.State(); got != Closed {
		t.Fatalf("two failures after a success: got %s, want closed", got)
	}
	c.Record(false, Transient, errors.New("connection refused"))
	if got := c.State(); got != Open {
		t.Fatalf("three failures in a row: got %s, want open", got)
	}
	if got := c.Reason(); got != "connection refused" {
		t.Errorf("Reason: got %q, want the error that opened it", got)
	}
	// Throttles and the job's own errors do not count as the service failing.
	c2 := NewCircuit(CircuitConfig{FailureThreshold: 2})
	for _, cl := range []Class{Throttle, Permanent, Conflict, Throttle} {
		c2.Record(false, cl, nil)
	}
	if got := c2.State(); got != Closed {
		t.Errorf("after throttles and job errors: got %s, want closed", got)
	}
}

func TestCircuitCanceledProbeLetsAnotherProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{MinCooldown: time.Second})
		c.Record(false, Systemic, errors.New("denied"))
		time.Sleep(time.Second)
		probe, _ := c.Acquire(context.Background())
		if !probe {
			t.Fatal("got no probe")
		}
		c.Record(true, Canceled, nil)
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
	c.Record(false, Systemic, errDenied) // opens
	c.Record(false, None, nil)           // closes
	c.Record(false, Transient, errors.New("500"))
	c.Record(false, Transient, errors.New("500")) // opens again
	if probe.logged != 3 {
		t.Fatalf("log records: got %d, want 3 (open, close, open)", probe.logged)
	}
	if probe.underLock != 0 {
		t.Errorf("records logged under the circuit's lock: got %d, want 0", probe.underLock)
	}
}

// TestCircuitProbeIntervalIsCapped: however long the service stays away,
// the next probe is at most 15 s off, so its return is noticed within 15 s;
// and during the outage exactly one call goes out per cool-down, however
// many callers wait.
func TestCircuitProbeIntervalIsCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{}) // the worker's defaults
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		c.Record(false, Systemic, errDenied)
		opened := time.Now()

		// Callers keep calling for two hours; every call that goes out is
		// a probe and fails.
		var mu sync.Mutex
		var probes []time.Time
		outage := true
		for range 5 {
			go func() {
				for {
					probe, err := c.Acquire(ctx)
					if err != nil {
						return
					}
					mu.Lock()
					down := outage
					if down {
						probes = append(probes, time.Now())
					}
					mu.Unlock()
					if !probe && down {
						t.Error("a call went out during the outage that was not the probe")
					}
					if down {
						c.Record(probe, Transient, errors.New("connection refused to 127.0.0.1:4567"))
						continue
					}
					c.Record(probe, None, nil)
					return
				}
			}()
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()

		if next := time.Until(c.NextProbe()); next > 15*time.Second || next <= 0 {
			t.Errorf("after two hours: next probe in %v, want within 15 s", next)
		}
		mu.Lock()
		gaps := map[time.Duration]int{}
		last := opened
		for _, p := range probes {
			gaps[p.Sub(last)]++
			last = p
		}
		n := len(probes)
		outage = false
		mu.Unlock()
		want := map[time.Duration]int{5 * time.Second: 1, 10 * time.Second: 1, 15 * time.Second: n - 2}
		if len(gaps) != len(want) || gaps[5*time.Second] != 1 || gaps[10*time.Second] != 1 || gaps[15*time.Second] != n-2 {
			t.Errorf("gaps between probes: got %v, want %v (5 s doubling to 15 s, one probe each)", gaps, want)
		}
		if lo, hi := int(2*time.Hour/(15*time.Second))-1, int(2*time.Hour/(15*time.Second))+1; n < lo || n > hi {
			t.Errorf("probes in two hours: got %d, want about %d", n, lo+1)
		}

		// The service is back: the next probe closes the circuit within 15 s.
		back := time.Now()
		if err := c.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(back); took > 15*time.Second {
			t.Errorf("recovery noticed after %v, want within 15 s", took)
		}
		if got := c.OpenSince(); !got.IsZero() {
			t.Errorf("OpenSince after closing: got %v, want the zero time", got)
		}
	})
}

func TestCircuitCooldownConfig(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cfg      CircuitConfig
		min, max time.Duration
	}{
		{"defaults", CircuitConfig{}, 5 * time.Second, 15 * time.Second},
		{"explicit", CircuitConfig{MinCooldown: time.Second, MaxCooldown: time.Minute}, time.Second, time.Minute},
		{"minimum above the default cap", CircuitConfig{MinCooldown: 30 * time.Second}, 30 * time.Second, 30 * time.Second},
		{"maximum below the minimum", CircuitConfig{MinCooldown: 10 * time.Second, MaxCooldown: time.Second}, 10 * time.Second, 10 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := NewCircuit(tc.cfg)
			if c.cfg.MinCooldown != tc.min || c.cfg.MaxCooldown != tc.max {
				t.Errorf("cool-downs: got %v to %v, want %v to %v", c.cfg.MinCooldown, c.cfg.MaxCooldown, tc.min, tc.max)
			}
		})
	}
}

// TestCircuitOpenSince: the circuit remembers when it opened, across failed
// probes, until it closes.
func TestCircuitOpenSince(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := NewCircuit(CircuitConfig{})
		if got := c.OpenSince(); !got.IsZero() {
			t.Fatalf("closed circuit: OpenSince got %v, want the zero time", got)
		}
		opened := time.Now()
		c.Record(false, Systemic, errDenied)
		for range 3 {
			probe, _ := c.Acquire(context.Background())
			c.Record(probe, Systemic, errDenied)
		}
		if got := c.OpenSince(); !got.Equal(opened) {
			t.Errorf("after three failed probes: OpenSince got %v, want %v, when it opened", got, opened)
		}
		probe, _ := c.Acquire(context.Background())
		c.Record(probe, None, nil)
		if got := c.OpenSince(); !got.IsZero() {
			t.Errorf("after closing: OpenSince got %v, want the zero time", got)
		}
	})
}

// TestCircuitStatus: the state comes with the reason of the opening and
// its kind, for the metrics; the log line of the closing says for how long
// it was open, as a duration, and why.
func TestCircuitStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs bytes.Buffer
		c := NewCircuit(CircuitConfig{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if got, want := c.Status(), (CircuitStatus{State: Closed}); got != want {
			t.Errorf("new circuit: got %+v, want %+v", got, want)
		}
		c.Record(false, Systemic, fmt.Errorf("update context: %w", errDenied))
		if got, want := c.Status(), (CircuitStatus{State: Open, Reason: "AccessDeniedException", Kind: KindAccessDenied}); got != want {
			t.Errorf("after access denied: got %+v, want %+v", got, want)
		}
		time.Sleep(4*time.Minute + 30*time.Second)
		probe, err := c.Acquire(context.Background())
		if err != nil || !probe {
			t.Fatalf("Acquire after the cool-down: got %v, %v; want the probe", probe, err)
		}
		if got := c.Status(); got.State != HalfOpen || got.Kind != KindAccessDenied {
			t.Errorf("while probing: got %+v, want half_open, still access_denied", got)
		}
		c.Record(true, None, nil)
		if got := c.Status(); got.State != Closed {
			t.Errorf("after the probe got through: got %+v, want closed", got)
		}

		var closed struct {
			Msg        string `json:"msg"`
			WasOpenFor string `json:"was_open_for"`
			Reason     string `json:"reason"`
		}
		for line := range bytes.Lines(logs.Bytes()) {
			if err := json.Unmarshal(line, &closed); err != nil {
				t.Fatalf("log line %q: %v", line, err)
			}
		}
		if !strings.HasPrefix(closed.Msg, "circuit closed") {
			t.Fatalf("last log line: got %q, want the closing", closed.Msg)
		}
		if d, err := time.ParseDuration(closed.WasOpenFor); err != nil || d != 4*time.Minute+30*time.Second {
			t.Errorf("was_open_for: got %q (%v, %v), want 4m30s", closed.WasOpenFor, d, err)
		}
		if closed.Reason != "AccessDeniedException" {
			t.Errorf("reason: got %q, want AccessDeniedException", closed.Reason)
		}
	})
}

// TestCircuitReasonIsNeverEmpty: an error the caller could not name still
// leaves a reason to show.
func TestCircuitReasonIsNeverEmpty(t *testing.T) {
	c := NewCircuit(CircuitConfig{})
	c.Record(false, Systemic, nil)
	if got := c.Reason(); got != "unnamed systemic error" {
		t.Errorf("Reason: got %q, want %q", got, "unnamed systemic error")
	}
	if got := c.Status().Kind; got != KindOther {
		t.Errorf("Kind: got %q, want %q", got, KindOther)
	}
}

// TestCause names the errors the Partner Central client really returns,
// made over the wire: a refused connection, a certificate nobody trusts,
// a service that never answers, a connection closed without an answer, a
// plain HTTP server where HTTPS was expected (no name of its own: the
// error's text and the endpoint), a host that does not resolve, and the
// service's own refusal.
func TestCause(t *testing.T) {
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}()
	untrusted := httptest.NewTLSServer(http.NotFoundHandler())
	untrusted.Config.ErrorLog = log.New(io.Discard, "", 0)
	t.Cleanup(untrusted.Close)
	silent := listen(t, func(c net.Conn) { /* held open, never answered */ })
	hangUp := listen(t, func(c net.Conn) { c.Close() })
	plain := listen(t, func(c net.Conn) {
		c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"))
		c.Close()
	})
	denied, err := pcsim.NewServer(pcsim.Options{Faults: pcsim.Faults{DenyAccess: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(denied.Close)

	failing, err := pcsim.NewServer(pcsim.Options{Faults: pcsim.Faults{Error5xx: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(failing.Close)
	teapot := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "a proxy's page", http.StatusTeapot)
	}))
	t.Cleanup(teapot.Close)

	for _, tc := range []struct {
		name, endpoint string
		want           *regexp.Regexp
		kind           *regexp.Regexp
	}{
		{"refused", "http://" + closed, regexp.MustCompile(`^connection refused to ` + regexp.QuoteMeta(closed) + `$`), regexp.MustCompile(`^connection_refused$`)},
		{"untrusted certificate", untrusted.URL, regexp.MustCompile(`^TLS to ` + regexp.QuoteMeta(untrusted.Listener.Addr().String()) + `: x509: certificate signed by unknown authority$`), regexp.MustCompile(`^tls$`)},
		{"no answer", "http://" + silent, regexp.MustCompile(`^timeout waiting for ` + regexp.QuoteMeta(silent) + `$`), regexp.MustCompile(`^timeout$`)},
		{"hung up", "http://" + hangUp, regexp.MustCompile(`^connection (closed|reset) by ` + regexp.QuoteMeta(hangUp) + `$`), regexp.MustCompile(`^connection_(closed|reset)$`)},
		{"plain HTTP answering HTTPS", "https://" + plain, regexp.MustCompile(`^http: server gave HTTP response to HTTPS client \(` + regexp.QuoteMeta(plain) + `\)$`), regexp.MustCompile(`^other$`)},
		{"no such host", "https://no-such-host.invalid", regexp.MustCompile(`^DNS lookup of no-such-host.invalid: .+`), regexp.MustCompile(`^dns$`)},
		{"access denied", denied.URL, regexp.MustCompile(`^AccessDeniedException$`), regexp.MustCompile(`^access_denied$`)},
		{"server error", failing.URL, regexp.MustCompile(`^InternalServerException$`), regexp.MustCompile(`^server_error$`)},
		{"a page the API does not model", teapot.URL, regexp.MustCompile(`^UnknownError$`), regexp.MustCompile(`^client_error$`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := partnercentral.New(partnercentral.Options{
				Region:       "us-east-1",
				Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
				BaseEndpoint: aws.String(tc.endpoint),
				Timeout:      200 * time.Millisecond,
			})
			_, err := client.GetEngagement(t.Context(), &partnercentral.GetEngagementInput{Catalog: aws.String("Sandbox"), Identifier: aws.String("eng-0000000000001")})
			if err == nil {
				t.Fatal("the call succeeded")
			}
			if got := Cause(err); !tc.want.MatchString(got) {
				t.Errorf("Cause: got %q, want %v\nerror: %v", got, tc.want, err)
			}
			if got := CauseKind(err); !tc.kind.MatchString(got) || !slices.Contains(CauseKinds(), got) {
				t.Errorf("CauseKind: got %q, want %v, one of CauseKinds\nerror: %v", got, tc.kind, err)
			}
		})
	}
	if got, kind := Cause(nil), CauseKind(nil); got != "" || kind != "" {
		t.Errorf("Cause(nil), CauseKind(nil): got %q, %q, want \"\", \"\"", got, kind)
	}
	if got := Cause(fmt.Errorf("sign request: %w", errors.New("no credentials in the chain"))); got != "no credentials in the chain" {
		t.Errorf("Cause of a plain wrapped error: got %q, want the innermost text", got)
	}
}

// listen accepts connections on a loopback port and hands each to serve;
// the listener and every connection are closed when the test ends.
func listen(t *testing.T, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			serve(c)
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

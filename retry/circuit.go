package retry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/pcsync/pcsync/partnercentral/types"
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

// Cool-downs of a circuit whose config leaves them at zero.
const (
	DefaultMinCooldown = 5 * time.Second
	// DefaultMaxCooldown caps the wait between probes, so that the worker
	// notices the service answering again within 15 s however long it was
	// away. A probe is one call per cool-down: four a minute cost nothing
	// against the quotas.
	DefaultMaxCooldown = 15 * time.Second
)

// CircuitConfig tunes a Circuit.
type CircuitConfig struct {
	// FailureThreshold is how many transient failures in a row, with no
	// success between them, open the circuit ("every call failing").
	// A systemic error (access denied, account quota spent) opens it at once.
	FailureThreshold int
	// MinCooldown is the first wait before a probe (default 5 s); each
	// failed probe doubles it up to MaxCooldown (default 15 s, and never
	// below MinCooldown).
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
	openedAt  time.Time // when it last opened from closed; zero while closed
	reason    string
	kind      string        // reason's bounded name (CauseKind)
	closes    uint64        // how many times the circuit closed again
	changed   chan struct{} // closed and replaced at every state change
}

// NewCircuit returns a closed circuit.
func NewCircuit(cfg CircuitConfig) *Circuit {
	if cfg.FailureThreshold <= 0 {
		cfg.FailureThreshold = 20
	}
	if cfg.MinCooldown <= 0 {
		cfg.MinCooldown = DefaultMinCooldown
	}
	if cfg.MaxCooldown <= 0 {
		cfg.MaxCooldown = DefaultMaxCooldown
	}
	cfg.MaxCooldown = max(cfg.MaxCooldown, cfg.MinCooldown)
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

// Record reports how a call ended: probe is what Acquire returned for it,
// class is Classify's view of err, and err (nil on success) names what the
// circuit reports as its Reason (Cause(err)) and its kind (CauseKind(err))
// when this call opens it.
func (c *Circuit) Record(probe bool, class Class, err error) {
	// What to log is decided under the lock and logged after it.
	var opened, reopened, closed bool
	var cooldown, openFor time.Duration
	var reason, was string
	c.mu.Lock()
	switch {
	case class == Systemic || (class == Transient && probe):
		if c.state != Open {
			reopened = c.state == HalfOpen
			reason = named(Cause(err), class)
			cooldown, opened = c.openLocked(probe, reason, kindOf(err)), true
		}
	case class == Transient:
		c.failures++
		if c.failures >= c.cfg.FailureThreshold && c.state == Closed {
			reason = named(Cause(err), class)
			cooldown, opened = c.openLocked(false, reason, kindOf(err)), true
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
			closed, was, openFor = true, c.reason, time.Since(c.openedAt)
			c.openedAt = time.Time{}
			c.setLocked(Closed)
		}
	}
	c.mu.Unlock()
	switch {
	case reopened:
		// A failed probe every 15 s would flood the log during a long
		// outage; the opening said why, and the closing will say for how
		// long.
		c.cfg.Logger.Debug("circuit probe failed; still open", "reason", reason, "probe_in", cooldown)
	case opened:
		c.cfg.Logger.Warn("circuit open: not taking new jobs", "reason", reason, "probe_in", cooldown)
	case closed:
		// The duration as text ("4m30.5s"): a JSON handler would write a
		// time.Duration as a bare count of nanoseconds.
		c.cfg.Logger.Info("circuit closed: Partner Central answers again",
			"was_open_for", openFor.Round(time.Millisecond).String(), "reason", was)
	}
}

// kindOf is CauseKind(err), or KindOther for an error the caller could not
// name, as named does for the reason.
func kindOf(err error) string {
	if k := CauseKind(err); k != "" {
		return k
	}
	return KindOther
}

// named is reason, or a name made of the class when the caller had none:
// the circuit's reason goes to the log and /readyz, and an empty one would
// leave the operator guessing.
func named(reason string, class Class) string {
	if reason == "" {
		return "unnamed " + class.String() + " error"
	}
	return reason
}

// openLocked opens the circuit and returns the cool-down before the probe.
func (c *Circuit) openLocked(probeFailed bool, reason, kind string) time.Duration {
	switch {
	case c.cooldown == 0:
		c.cooldown = c.cfg.MinCooldown
	case probeFailed:
		c.cooldown = min(c.cooldown*2, c.cfg.MaxCooldown)
	}
	c.openUntil = time.Now().Add(c.cooldown)
	if c.state == Closed {
		c.openedAt = time.Now()
	}
	c.reason, c.kind = reason, kind
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

// Reason is the error that last opened the circuit, or that last failed
// its probe.
func (c *Circuit) Reason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}

// CircuitStatus is the circuit's state with why it last opened, read at
// once (Circuit.Status).
type CircuitStatus struct {
	State CircuitState
	// Reason is the error that last opened the circuit or failed its
	// probe, as Cause names it; "" if it never opened.
	Reason string
	// Kind is Reason's bounded name (CauseKind), for a metric label; ""
	// if it never opened.
	Kind string
}

// Status returns the state, the reason and its kind together, so that a
// reader (the metrics) never pairs a state with the reason of another
// opening.
func (c *Circuit) Status() CircuitStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return CircuitStatus{State: c.state, Reason: c.reason, Kind: c.kind}
}

// OpenSince is when the circuit opened, if it is open or probing now, and
// has not closed since: a failed probe does not move it. It is the zero
// time while the circuit is closed.
func (c *Circuit) OpenSince() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.openedAt
}

func stopTimer(t *time.Timer) {
	if t != nil {
		t.Stop()
	}
}

// Cause names what made a call fail, in a few words fit for the circuit's
// reason, a log field and the readiness probe: the API's error code when
// the service answered ("AccessDeniedException"), else what went wrong on
// the way, with the endpoint ("connection refused to host:port",
// "timeout waiting for host:port", "TLS to host:port: x509: certificate
// signed by unknown authority", "DNS lookup of host: no such host"), else
// the innermost error's text. A network error has no error code, and
// naming it by its code alone would leave the circuit's reason empty. It
// returns "" for nil.
func Cause(err error) string {
	text, _ := cause(err)
	return text
}

// The kinds of cause CauseKind names: a bounded set, for a metric label.
const (
	KindAccessDenied      = "access_denied"      // AccessDeniedException
	KindQuotaExceeded     = "quota_exceeded"     // ServiceQuotaExceededException
	KindCredentials       = "credentials"        // a signature or credential error of AWS's
	KindThrottled         = "throttled"          // ThrottlingException, HTTP 429
	KindConflict          = "conflict"           // ConflictException
	KindValidation        = "validation"         // ValidationException
	KindNotFound          = "not_found"          // ResourceNotFoundException
	KindServerError       = "server_error"       // InternalServerException, HTTP 5xx
	KindClientError       = "client_error"       // another 4xx or error code: a proxy's page, a wrong endpoint
	KindConnectionRefused = "connection_refused" // nothing listens at the endpoint
	KindConnectionReset   = "connection_reset"   // the connection was reset
	KindConnectionClosed  = "connection_closed"  // closed before an answer
	KindTimeout           = "timeout"            // no answer in time
	KindTLS               = "tls"                // the TLS handshake failed (certificate, protocol)
	KindDNS               = "dns"                // the endpoint's name does not resolve
	KindCanceled          = "canceled"           // the caller gave up
	KindOther             = "other"              // none of these (no region, no credentials in the chain, ...)
)

// CauseKinds returns every kind CauseKind can return.
func CauseKinds() []string {
	return []string{KindAccessDenied, KindQuotaExceeded, KindCredentials, KindThrottled, KindConflict,
		KindValidation, KindNotFound, KindServerError, KindClientError, KindConnectionRefused,
		KindConnectionReset, KindConnectionClosed, KindTimeout, KindTLS, KindDNS, KindCanceled, KindOther}
}

// CauseKind is Cause's bounded name: one of CauseKinds, fit for a metric
// label where Cause's text (an endpoint, a library's message) is not. It
// returns "" for nil.
func CauseKind(err error) string {
	_, kind := cause(err)
	return kind
}

// cause is Cause and CauseKind, decided together.
func cause(err error) (text, kind string) {
	if err == nil {
		return "", ""
	}
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() != "" {
		return api.ErrorCode(), apiKind(err, api.ErrorCode())
	}
	to := endpointOf(err)
	at := func(prep string) string {
		if to == "" {
			return ""
		}
		return " " + prep + " " + to
	}
	var (
		dns      *net.DNSError
		verify   *tls.CertificateVerificationError
		record   tls.RecordHeaderError
		alert    tls.AlertError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		timeout  interface{ Timeout() bool }
		canceled *aws.RequestCanceledError
	)
	switch {
	case errors.As(err, &dns):
		return "DNS lookup of " + dns.Name + ": " + dns.Err, KindDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused" + at("to"), KindConnectionRefused
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset" + at("by"), KindConnectionReset
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		// net/http's words (its error is not exported) for a connection the
		// server closed before it answered.
		strings.HasSuffix(innermost(err), "server closed idle connection"):
		return "connection closed" + at("by"), KindConnectionClosed
	case errors.As(err, &verify):
		return "TLS" + at("to") + ": " + verify.Err.Error(), KindTLS
	case errors.As(err, &unknown), errors.As(err, &hostname), errors.As(err, &invalid),
		errors.As(err, &record), errors.As(err, &alert):
		return "TLS" + at("to") + ": " + innermost(err), KindTLS
	case errors.Is(err, context.Canceled):
		return "canceled", KindCanceled
	case errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &timeout) && timeout.Timeout(),
		errors.As(err, &canceled): // the client's own per-call timeout, as Classify reads it
		return "timeout" + at("waiting for"), KindTimeout
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		return "HTTP " + httpStatus(resp.HTTPStatusCode()) + at("from"), statusKind(resp.HTTPStatusCode())
	}
	if to != "" {
		return innermost(err) + " (" + to + ")", KindOther
	}
	return innermost(err), KindOther
}

// apiKind is the kind of an error the service (or something in its place)
// answered with code.
func apiKind(err error, code string) string {
	switch code {
	case (&types.AccessDeniedException{}).ErrorCode():
		return KindAccessDenied
	case (&types.ServiceQuotaExceededException{}).ErrorCode():
		return KindQuotaExceeded
	case (&types.ThrottlingException{}).ErrorCode():
		return KindThrottled
	case (&types.ConflictException{}).ErrorCode():
		return KindConflict
	case (&types.ValidationException{}).ErrorCode():
		return KindValidation
	case (&types.ResourceNotFoundException{}).ErrorCode():
		return KindNotFound
	case (&types.InternalServerException{}).ErrorCode():
		return KindServerError
	}
	if isCredentialError(code) {
		return KindCredentials
	}
	var resp *awshttp.ResponseError
	if errors.As(err, &resp) {
		return statusKind(resp.HTTPStatusCode())
	}
	return KindClientError
}

// statusKind is the kind of an answer with this HTTP status and no error
// code the API models.
func statusKind(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return KindThrottled
	case status == http.StatusUnauthorized:
		return KindCredentials
	case status == http.StatusForbidden:
		return KindAccessDenied
	case status >= 500:
		return KindServerError
	case status >= 400:
		return KindClientError
	}
	return KindOther
}

// endpointOf is the host:port a failed request went to, when the error
// says: the URL of the request, else the address dialled.
func endpointOf(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
			if u.Port() != "" {
				return u.Host
			}
			switch u.Scheme {
			case "https":
				return u.Host + ":443"
			case "http":
				return u.Host + ":80"
			}
			return u.Host
		}
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Addr != nil {
		return op.Addr.String()
	}
	return ""
}

// innermost is the text of the error at the bottom of err's chain (the
// first one, where errors are joined), without the layers of context the
// SDK wraps around it, cut to 200 bytes.
func innermost(err error) string {
	for {
		var next error
		switch e := err.(type) {
		case interface{ Unwrap() error }:
			next = e.Unwrap()
		case interface{ Unwrap() []error }:
			if errs := e.Unwrap(); len(errs) > 0 {
				next = errs[0]
			}
		}
		if next == nil {
			break
		}
		err = next
	}
	s := strings.TrimSpace(err.Error())
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}

func httpStatus(code int) string {
	if text := http.StatusText(code); text != "" {
		return strconv.Itoa(code) + " " + text
	}
	return strconv.Itoa(code)
}

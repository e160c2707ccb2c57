package pcsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// Sim is the simulated service, an http.Handler for the API (POST /) and
// the admin API (/_sim/). It is safe for concurrent use; calls to different
// engagements never wait for one another, and no lock is held while a call
// waits out injected latency. Call Close to stop the outside writer and
// the other clients.
type Sim struct {
	log         *slog.Logger
	now         func() time.Time
	region      string
	credentials map[string]string
	signer      *v4.Signer
	model       *schema.Model

	budgetAsThrottle bool
	quotas           quotas
	onWrite          func(engagement, context string, payload json.RawMessage)
	faults           atomic.Pointer[Faults]
	faultRand        *lockedRand
	outsideRand      *lockedRand

	store       store
	stats       counters
	outside     steady
	otherWrites otherClient
	otherReads  otherClient
	admin       http.Handler

	requestIDPrefix string
	requestSeq      atomic.Uint64

	stop      context.CancelFunc
	loops     sync.WaitGroup // the outside writer and the other clients
	closeOnce sync.Once
}

// New returns a simulator with no engagements and starts its outside
// writer, idle until OutsideWritesPerSec is positive, and its other
// clients, idle until OtherClientsWriteRPS or OtherClientsReadRPS is.
func New(opts Options) *Sim {
	seed := opts.Seed
	if seed == 0 {
		seed = time.Now().UnixNano()
	}
	s := &Sim{
		log:              opts.Logger,
		now:              opts.Now,
		region:           opts.Region,
		signer:           v4.NewSigner(),
		model:            schema.New(),
		budgetAsThrottle: opts.BudgetAsThrottle,
		onWrite:          opts.OnWrite,
		quotas:           newQuotas(opts),
		// Separate streams, so that the outside writer's picks do not
		// shift the fault draws of a seeded run.
		faultRand:   newLockedRand(seed, 1),
		outsideRand: newLockedRand(seed, 2),
		store:       store{byID: map[string]*engagement{}},
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.region == "" {
		s.region = defaultRegion
	}
	if opts.Credentials != nil {
		s.credentials = maps.Clone(opts.Credentials)
	}
	ids := rand.New(rand.NewPCG(uint64(seed), 3))
	s.requestIDPrefix = fmt.Sprintf("%08x-%04x-4%03x-8%03x", ids.Uint32(), ids.Uint32()&0xffff, ids.Uint32()&0xfff, ids.Uint32()&0xfff)
	s.SetFaults(opts.Faults)
	s.admin = s.adminHandler()
	s.outside.init(opts.OutsideWritesPerSec)
	s.otherWrites.op, s.otherReads.op = parseOperation(targetPrefix+opUpdate), parseOperation(targetPrefix+opGet)
	s.otherWrites.init(opts.OtherClientsWriteRPS)
	s.otherReads.init(opts.OtherClientsReadRPS)

	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	s.loops.Go(func() { s.runOutsideWriter(ctx) })
	s.loops.Go(func() { s.runOtherClient(ctx, &s.otherWrites) })
	s.loops.Go(func() { s.runOtherClient(ctx, &s.otherReads) })
	return s
}

// Close stops the outside writer and the other clients and waits for them.
// It is idempotent; the handler keeps serving after Close.
func (s *Sim) Close() {
	s.closeOnce.Do(func() {
		s.stop()
		s.loops.Wait()
	})
}

func (s *Sim) newRequestID() string {
	return fmt.Sprintf("%s-%012x", s.requestIDPrefix, s.requestSeq.Add(1))
}

// ServeHTTP answers the API on POST / and the admin API under /_sim/.
func (s *Sim) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("x-amzn-RequestId", s.newRequestID())
	if strings.HasPrefix(r.URL.Path, "/_sim/") {
		s.admin.ServeHTTP(w, r)
		return
	}
	s.serveAPI(w, r)
}

// fate is how an API call ends on the connection.
type fate uint8

const (
	respond  fate = iota // write the reply
	drop                 // close the connection, nothing applied
	lose                 // close the connection, the write applied
	canceled             // the client went away while the call waited
)

// reply is the outcome of one API call.
type reply struct {
	fate       fate
	err        *apiError
	body       any    // the success body, when err is nil
	engagement string // for the debug log
}

func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	op := parseOperation(r.Header.Get("X-Amz-Target"))
	var rep reply
	s.call(r, op, &rep)
	outcome := rep.outcome()
	// Counted before the connection is closed or the reply written, so that
	// a client that has seen the end of its call also sees it counted.
	s.stats.count(op.name, outcome)
	if s.log.Enabled(r.Context(), slog.LevelDebug) {
		// Never the payload: it carries names, e-mail addresses and phones.
		attrs := []slog.Attr{slog.String("operation", op.name), slog.String("outcome", outcome),
			slog.Duration("duration", time.Since(start))}
		if rep.engagement != "" {
			attrs = append(attrs, slog.String("engagement", rep.engagement))
		}
		if rep.err != nil {
			attrs = append(attrs, slog.String("error", rep.err.name))
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "pcsim call", attrs...)
	}
	switch rep.fate {
	case drop, lose, canceled:
		// For canceled, nobody is listening; closing rather than returning
		// keeps net/http from answering an empty 200 on a connection that a
		// wrapper's deadline, not the client, gave up on.
		closeConnection(w)
	default:
		if rep.err != nil {
			w.Header().Set("X-Amzn-ErrorType", rep.err.name)
			writeJSON(w, rep.err.status, jsonContent, rep.err.body())
			return
		}
		writeJSON(w, http.StatusOK, jsonContent, rep.body)
	}
}

// call runs the checks of an API call in the service's order: signature,
// operation, body size, access, latency, drop, 5xx, rate quota, write
// budget, then the operation itself (validation, lookup, type, conflict,
// apply) and the lost-response draw.
func (s *Sim) call(r *http.Request, op operation, rep *reply) {
	body, err := io.ReadAll(io.LimitReader(r.Body, readBodyBytes+1))
	if err != nil {
		if r.Context().Err() != nil {
			rep.fate = canceled
			return
		}
		rep.err = serializationError("could not read the request body: %v", err)
		return
	}
	if len(body) > readBodyBytes {
		rep.err = bodyTooLarge(len(body), true)
		return
	}
	if e := s.authenticate(r, body); e != nil {
		rep.err = e
		return
	}
	if !op.known || r.Method != http.MethodPost || r.URL.Path != "/" {
		target := r.Header.Get("X-Amz-Target")
		rep.err = newError(http.StatusBadRequest, errUnknownOperation, "Unknown operation %s %s with X-Amz-Target %q", r.Method, r.URL.Path, target)
		return
	}
	if len(body) > maxBodyBytes {
		rep.err = bodyTooLarge(len(body), false)
		return
	}
	f := s.Faults()
	if f.DenyAccess {
		rep.err = authError(errAccessDenied, accessDeniedTemplate, op.name)
		return
	}
	if err := s.delay(r.Context(), f); err != nil {
		rep.fate = canceled
		return
	}
	if s.faultRand.hit(f.Drop) {
		rep.fate = drop
		return
	}
	if s.faultRand.hit(f.Error5xx) {
		rep.err = newError(http.StatusInternalServerError, errInternal, "An internal error occurred; retry the request")
		return
	}
	switch s.quotas.admit(op, s.now()) {
	case throttled:
		rep.err = throttlingError(op.name + " calls are over the account's rate quota")
		return
	case budgetSpent:
		if s.budgetAsThrottle {
			rep.err = throttlingError("the account's write budget for the rolling window is spent")
		} else {
			rep.err = newError(http.StatusPaymentRequired, errQuotaExceeded, "The account's write budget for the rolling window is spent")
		}
		return
	}
	switch op.name {
	case opUpdate:
		s.updateEngagementContext(r, body, rep)
		if rep.err == nil && s.faultRand.hit(f.LostResponse) {
			rep.fate = lose
		}
	case opGet:
		s.getEngagement(r, body, rep)
	}
}

func bodyTooLarge(n int, unread bool) *apiError {
	size := strconv.Itoa(n) + " bytes"
	if unread {
		size = "more than " + strconv.Itoa(readBodyBytes) + " bytes"
	}
	return requestValidationError([]schema.Violation{{
		Rule: fmt.Sprintf("the request body is %s; the limit is %d bytes", size, maxBodyBytes),
		Code: types.ValidationExceptionErrorCodeInvalidValue,
	}})
}

// outcome is the key the call is counted under.
func (rep *reply) outcome() string {
	switch rep.fate {
	case drop:
		return outcomeDrop
	case lose:
		return outcomeLost
	case canceled:
		return outcomeCanceled
	}
	if rep.err != nil {
		return strconv.Itoa(rep.err.status)
	}
	return strconv.Itoa(http.StatusOK)
}

// writeJSON writes v as the whole response. An encoding failure is the
// simulator's own bug; it is answered 500 so that it cannot pass unnoticed.
func writeJSON(w http.ResponseWriter, status int, contentType string, v any) {
	b, err := marshalJSON(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"__type":"InternalServerException","Message":"encode response"}`)
		w.Header().Set("X-Amzn-ErrorType", errInternal)
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b) // a client that went away has nothing to be told
}

// Server is a Sim listening on a loopback port, for tests and commands, in
// the manner of httptest.Server.
type Server struct {
	*Sim
	URL string // http://127.0.0.1:port

	srv       *http.Server
	served    chan struct{}
	closeOnce sync.Once
}

// NewServer starts a Sim on 127.0.0.1 and a free port.
func NewServer(opts Options) (*Server, error) { return Listen("127.0.0.1:0", opts) }

// Listen starts a Sim on addr (host:port; port 0 picks a free one).
func Listen(addr string, opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("pcsim listen %s: %w", addr, err)
	}
	sim := New(opts)
	s := &Server{
		Sim: sim,
		URL: "http://" + ln.Addr().String(),
		srv: &http.Server{
			Handler:           sim,
			ReadHeaderTimeout: 10 * time.Second,
			// The server's own complaints (broken connections, mostly
			// caused on purpose by faults) are noise above debug.
			ErrorLog: slog.NewLogLogger(sim.log.Handler(), slog.LevelDebug),
		},
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			sim.log.Error("pcsim serve", slog.String("addr", addr), slog.Any("error", err))
		}
	}()
	return s, nil
}

// Shutdown stops accepting calls, waits for those in flight until ctx ends,
// then stops the Sim.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err == nil {
		<-s.served
	}
	s.Close()
	return err
}

// Close closes the listener and every connection at once, then stops the
// Sim. Calls waiting out injected latency end with their connections. It is
// idempotent.
func (s *Server) Close() {
	s.closeOnce.Do(func() {
		_ = s.srv.Close() // only the listener's close error, which says nothing useful here
		<-s.served
		s.Sim.Close()
	})
}

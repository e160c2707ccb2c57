// Package daemon wires pcsync's worker together: the SQS consumer, the
// updater with its shared limiters, daily budget and circuit, the state
// file (internal/state) that carries the versions and the budget's window
// across restarts, the metrics, and the HTTP server for /metrics, /healthz
// and /readyz. "worker run" and the demo both run it.
//
// It does not parse flags or read the environment (cmd/worker does, and
// chooses the state file's directory).
package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pcsync/pcsync/internal/fleet"
	"github.com/pcsync/pcsync/internal/sdkhttp"
	"github.com/pcsync/pcsync/internal/state"
	"github.com/pcsync/pcsync/metrics"
	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
	"github.com/pcsync/pcsync/updater"
)

// budgetWindow is the daily budgets' rolling window.
const budgetWindow = 24 * time.Hour

// DefaultMaxBatch is how many waiting jobs of one engagement a worker takes
// together, so that versions of a context coalesce. The queue's own default
// (1) would turn coalescing off for every caller that forgot to set it.
const DefaultMaxBatch = 10

// Config is what a worker is told. Zero values take the defaults of the
// packages underneath; a queue (QueueURL or QueueURLs), WriteRPS and
// ReadRPS are required.
type Config struct {
	QueueURL string
	DLQURL   string // "": the queue's RedrivePolicy target
	// QueueURLs are several queues instead of QueueURL, in priority order,
	// first highest: event-driven updates before the nightly batch. DLQURLs
	// is empty or gives each its dead-letter queue, in the same order ("":
	// that queue's RedrivePolicy target).
	QueueURLs    []string
	DLQURLs      []string
	Workers      int
	MaxHeld      int
	MaxBatch     int     // waiting jobs of one engagement handled together; 0: DefaultMaxBatch
	WriteRPS     float64 // ceiling of UpdateEngagementContext calls per second
	ReadRPS      float64 // ceiling of GetEngagement calls per second
	WriteBudget  int     // writes per rolling 24 h; 0: none
	ReadBudget   int     // reads per rolling 24 h; 0: none
	DrainTimeout time.Duration
	MetricsAddr  string // "": no HTTP server
	ExitWhenIdle time.Duration
	// StateFile is the state database (package internal/state): it keeps,
	// across restarts, the newest version set out to be written to each
	// context and the times of the writes in the daily budget's window.
	// StateDir, when StateFile is "", is the directory where it is named
	// after the queues (StateFileName). Both "": kept in memory only, and
	// lost on restart.
	StateFile string
	StateDir  string
	// StateTable, when set, is the fleet's DynamoDB table (package
	// internal/fleet), instead of a state file: the versions and their
	// claims, and the daily write and read budgets, shared by every
	// worker that names it.
	StateTable string
	// DynamoDBEndpoint, when set, overrides the endpoint awsCfg resolves
	// for the state table (the local stack).
	DynamoDBEndpoint string
	Pprof            bool // serve /debug/pprof/ on MetricsAddr
	// SQSEndpoint and PartnerCentralEndpoint, when set, override the
	// endpoints awsCfg resolves (the demo's in-process stack); in
	// production the SDK's own settings decide.
	SQSEndpoint            string
	PartnerCentralEndpoint string

	// QueueSampleInterval is how often SQS is asked how many messages each
	// queue and its dead-letter queue hold, for the metrics; 0: the
	// queue's default (30 s).
	QueueSampleInterval time.Duration

	// MaxCircuitOpen ends a batch run (ExitWhenIdle > 0) whose circuit has
	// stayed open this long: the service refuses every call (wrong
	// credentials, say), so the queue never empties and the run would never
	// end. Run then shuts the consumer down in its order and returns an
	// error. 0: never; it has no effect without ExitWhenIdle.
	MaxCircuitOpen time.Duration
}

// Daemon is the wired worker: the consumer, the updater with its limiters,
// budget and circuit, the metrics, and the health and metrics server.
type Daemon struct {
	cfg      Config
	log      *slog.Logger
	consumer *queue.Consumer
	circuit  *retry.Circuit
	server   *http.Server
	listener net.Listener
	registry *prometheus.Registry
	state    *state.Store // nil: memory only, or the table
	table    *fleet.Store // nil: no table
	updater  *updater.Updater
}

// New wires a worker. awsCfg is the SDK configuration (region, credentials,
// endpoints); the state file and the listener for MetricsAddr are opened
// here, so that a file held by another worker or a bad address fails at
// once.
func New(c Config, awsCfg aws.Config, log *slog.Logger) (_ *Daemon, err error) {
	if c.MaxBatch == 0 {
		c.MaxBatch = DefaultMaxBatch
	}
	pc := partnercentral.NewFromConfig(awsCfg, func(o *partnercentral.Options) {
		if c.PartnerCentralEndpoint != "" {
			o.BaseEndpoint = aws.String(c.PartnerCentralEndpoint)
		}
	})
	// A configuration no call can go out with (no region, FIPS with a
	// configured endpoint, a region that is no host name) fails here, before
	// anything is opened, rather than as the reason of a circuit that never
	// closes.
	if _, err := pc.Endpoint(); err != nil {
		return nil, err
	}
	store, err := openState(c, log)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil && store != nil {
			store.Close()
		}
	}()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	m.Queues(queueNames(c)...)
	m.ExitWhenIdle(c.ExitWhenIdle)

	// The metrics read the circuit, the limiters, the budget and (once it
	// is built, below) the consumer at every scrape.
	circuit := retry.NewCircuit(retry.CircuitConfig{Logger: log})
	writes := retry.NewLimiter(retry.LimiterConfig{Ceiling: c.WriteRPS})
	reads := retry.NewLimiter(retry.LimiterConfig{Ceiling: c.ReadRPS})
	budget := retry.NewBudget(c.WriteBudget, budgetWindow, nil)
	// The read budget does not hold receives as the write budget does: a
	// job may not need a read, and one that only saves a write skips it.
	readBudget := retry.NewBudget(c.ReadBudget, budgetWindow, nil)
	// The write budget's window is carried across restarts by the state
	// file; the read budget's stays in memory (reads cost a tenth of a
	// write in quota, and come ten times as often: a sync each is not
	// worth it).
	var versions updater.Versions
	if store != nil {
		versions = store
		budget.Restore(store.Writes())
		budget.OnTake(store.RecordWrite)
	}
	// With a table, the fleet shares the versions and both budgets.
	var (
		table  *fleet.Store
		claims updater.Claimer
	)
	if c.StateTable != "" {
		db := dynamodb.NewFromConfig(awsCfg, func(o *dynamodb.Options) {
			o.HTTPClient = sdkhttp.NewClient(o.HTTPClient)
			if c.DynamoDBEndpoint != "" {
				o.BaseEndpoint = aws.String(c.DynamoDBEndpoint)
			}
		})
		octx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		table, err = fleet.Open(octx, db, c.StateTable, fleet.Options{Logger: log})
		cancel()
		if err != nil {
			return nil, err
		}
		claims = table
		budget = retry.NewSharedBudget(c.WriteBudget, budgetWindow, table.Ledger("write"), nil)
		readBudget = retry.NewSharedBudget(c.ReadBudget, budgetWindow, table.Ledger("read"), nil)
		log.Info("state table opened", "table", c.StateTable, "holder", table.Holder())
	}
	m.ObserveCircuit(circuit)
	m.ObserveLimiter("write", writes)
	m.ObserveLimiter("read", reads)
	m.ObserveBudget(c.WriteBudget, budget.Remaining)

	u, err := updater.New(pc, updater.NewDecoder(schema.New()), updater.Config{
		Policy:     retry.DefaultPolicy(),
		Writes:     writes,
		Reads:      reads,
		Budget:     budget,
		ReadBudget: readBudget,
		Circuit:    circuit,
		Observer:   m,
		Logger:     log,
		Versions:   versions,
		Claims:     claims,
	})
	if err != nil {
		return nil, err
	}
	sqsClient := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		o.HTTPClient = sdkhttp.NewClient(o.HTTPClient)
		if c.SQSEndpoint != "" {
			o.BaseEndpoint = aws.String(c.SQSEndpoint)
		}
	})
	consumer, err := queue.NewConsumer(sqsClient, queue.Config{
		QueueURL:       c.QueueURL,
		DLQURL:         c.DLQURL,
		Queues:         sources(c.QueueURLs, c.DLQURLs),
		Workers:        c.Workers,
		MaxHeld:        c.MaxHeld,
		MaxBatch:       c.MaxBatch,
		DrainTimeout:   c.DrainTimeout,
		ExitWhenIdle:   c.ExitWhenIdle,
		SampleInterval: c.QueueSampleInterval,
		Gate:           gates{circuit, budget},
		Observer:       m,
		Logger:         log,
	}, jobs{u})
	if err != nil {
		return nil, err
	}
	m.ObserveQueue(consumer)
	m.ObserveDepths(consumer)
	d := &Daemon{cfg: c, log: log, consumer: consumer, updater: u, circuit: circuit, registry: reg, state: store, table: table}
	if c.MetricsAddr != "" {
		ln, err := net.Listen("tcp", c.MetricsAddr)
		if err != nil {
			return nil, fmt.Errorf("-metrics-addr %s: %w", c.MetricsAddr, err)
		}
		d.listener = ln
		d.server = &http.Server{
			Handler:           d.routes(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       2 * time.Minute,
		}
	}
	return d, nil
}

func (d *Daemon) routes() http.Handler {
	mux := http.NewServeMux()
	if d.cfg.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if problems := d.unready(); len(problems) > 0 {
			http.Error(w, strings.Join(problems, "\n"), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	return mux
}

// unready lists what keeps the worker from being ready, one line each, or
// nothing. Ready means it takes and does jobs: not draining, the circuit
// closed (Partner Central answers), SQS answering for every queue
// (queue.Consumer.Health), and the state table, if any, answering
// (fleet.Store.Health). A worker that cannot reach SQS would otherwise
// look ready while it does nothing.
func (d *Daemon) unready() []string {
	var problems []string
	if d.consumer.Draining() {
		problems = append(problems, "draining")
	}
	if state := d.circuit.State(); state != retry.Closed {
		problems = append(problems, "circuit "+state.String()+": "+d.circuit.Reason())
	}
	if d.table != nil {
		if err := d.table.Health(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if err := d.consumer.Health(); err != nil {
		problems = append(problems, strings.Split(err.Error(), "\n")...)
	}
	return problems
}

// Run works until ctx ends (SIGTERM), the queue stays idle, or the health
// and metrics server fails. The consumer then shuts down in the order
// written on queue.Consumer.Run, which returns only when no handler runs
// any more; then the state file is closed, and last the HTTP server stops,
// so that /readyz says "draining" for as long as the drain lasts.
//
// A server that cannot serve fails the worker at once rather than leave it
// working unseen (no probes, no metrics): the consumer shuts down in the
// same order and Run returns the server's error, for the supervisor to
// restart the worker.
//
// A batch run (ExitWhenIdle) whose circuit stays open for MaxCircuitOpen
// ends the same way, with the error "circuit open for 10m: <reason>":
// every message stays on, or goes back to, the queue for the next run.
func (d *Daemon) Run(ctx context.Context) error {
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	if d.server != nil {
		d.log.Info("serving health and metrics", "addr", d.listener.Addr().String())
		go func() {
			err := d.server.Serve(d.listener)
			if err != nil && !errors.Is(err, http.ErrServerClosed) {
				stop()
			}
			served <- err
		}()
	}
	// watchCtx ends the watch once the consumer has returned, whatever
	// ended it.
	watchCtx, endWatch := context.WithCancel(ctx)
	defer endWatch()
	gaveUp := make(chan error, 1)
	if d.cfg.ExitWhenIdle > 0 && d.cfg.MaxCircuitOpen > 0 {
		go func() {
			err := d.watchCircuit(watchCtx, d.cfg.MaxCircuitOpen)
			if err != nil {
				stop()
			}
			gaveUp <- err
		}()
	} else {
		gaveUp <- nil
	}
	where := "memory"
	if d.table != nil {
		where = "table " + d.table.Table()
	}
	if d.state != nil {
		where = d.state.Path()
	}
	d.log.Info("worker started", "queues", queueNames(d.cfg), "state", where, "workers", d.cfg.Workers,
		"write_rps", d.cfg.WriteRPS, "read_rps", d.cfg.ReadRPS, "write_budget", d.cfg.WriteBudget, "read_budget", d.cfg.ReadBudget)
	// On SIGTERM (or a stop above), jobs that only wait for their turn go
	// back to the queue at once, while the consumer drains the rest.
	endDrainWatch := context.AfterFunc(ctx, d.updater.Drain)
	defer endDrainWatch()
	var errs []error
	if err := d.consumer.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		errs = append(errs, fmt.Errorf("consumer: %w", err))
	}
	endWatch()
	if err := <-gaveUp; err != nil {
		errs = append(errs, err)
	}
	if d.state != nil {
		if e := d.state.Close(); e != nil {
			d.log.Warn("state file close", "file", d.state.Path(), "error", e)
		}
	}
	if d.server != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := d.server.Shutdown(shutCtx); e != nil {
			d.log.Warn("health server shutdown", "error", e)
		}
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("health and metrics server: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	d.log.Info("worker stopped", summary(d.registry)...)
	return nil
}

// watchCircuit returns an error once the circuit has stayed open for
// limit, or nil when ctx ends first. It looks at the circuit when it could
// first have been open that long: limit after a look that found it closed,
// limit after it opened otherwise.
func (d *Daemon) watchCircuit(ctx context.Context, limit time.Duration) error {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		next := limit
		if since := d.circuit.OpenSince(); !since.IsZero() {
			open := time.Since(since)
			if open >= limit {
				// Returned, not logged: worker run prints it as it exits.
				return fmt.Errorf("circuit open for %s: %s", shortDuration(limit), d.circuit.Reason())
			}
			next = limit - open
		}
		t.Reset(next)
	}
}

// shortDuration writes d as an operator would: 10m, 1h30m, 45s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Registry is the worker's metrics registry.
func (d *Daemon) Registry() *prometheus.Registry { return d.registry }

// Addr is the address the health and metrics server listens on, or "".
func (d *Daemon) Addr() string {
	if d.listener == nil {
		return ""
	}
	return d.listener.Addr().String()
}

// gates holds receives while any of its gates is shut: the circuit (the
// service refuses every call) or the daily write budget (spent).
type gates []queue.Gate

func (g gates) Wait(ctx context.Context) error {
	for _, gate := range g {
		if err := gate.Wait(ctx); err != nil {
			return err
		}
	}
	return nil
}

// sources are the queues of QueueURLs with their dead-letter queues.
func sources(urls, dlqs []string) []queue.Source {
	var out []queue.Source
	for i, u := range urls {
		src := queue.Source{URL: u}
		if i < len(dlqs) {
			src.DLQURL = dlqs[i]
		}
		out = append(out, src)
	}
	return out
}

// queueNames are the names of the worker's queues, in priority order, as
// the queue labels its messages.
func queueNames(c Config) []string {
	urls := c.QueueURLs
	if c.QueueURL != "" {
		urls = []string{c.QueueURL}
	}
	names := make([]string, len(urls))
	for i, u := range urls {
		names[i] = queue.QueueName(u)
	}
	return names
}

// openState opens the state file c names, or returns nil when it names
// none.
func openState(c Config, log *slog.Logger) (*state.Store, error) {
	path := c.StateFile
	if path == "" && c.StateDir != "" {
		path = filepath.Join(c.StateDir, StateFileName(queueNames(c)))
	}
	if path == "" {
		return nil, nil
	}
	store, err := state.Open(path, state.Options{MaxContexts: updater.DefaultMaxRemembered, Window: budgetWindow, Logger: log})
	if errors.Is(err, state.ErrLocked) {
		return nil, fmt.Errorf("%w: another worker on the same queues uses it; give each worker its own -state-dir", err)
	}
	if err != nil {
		return nil, err
	}
	log.Info("state opened", "file", path, "contexts", store.Contexts(), "budget_writes_in_window", len(store.Writes()))
	return store, nil
}

// StateFileName names the state file of a worker on these queues (their
// names, in priority order): one file per set of queues, so that a worker
// restarted with the same queues finds its own, and workers on different
// queues sharing a directory do not collide. "pcsync-realtime+pcsync-bulk.db".
func StateFileName(queues []string) string {
	var b strings.Builder
	for i, q := range queues {
		if i > 0 {
			b.WriteByte('+')
		}
		// SQS allows letters, digits, '-', '_' and ".fifo"; anything else
		// (a URL without a name) must not make a path of its own.
		for _, r := range q {
			switch {
			case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
				b.WriteRune(r)
			default:
				b.WriteByte('_')
			}
		}
	}
	name := strings.Trim(b.String(), ".")
	if name == "" {
		name = "pcsync"
	}
	// Most file systems take 255 bytes: ten queues of 80 would not fit.
	if len(name) > 200 {
		sum := sha256.Sum256([]byte(name))
		name = name[:180] + "-" + hex.EncodeToString(sum[:8])
	}
	return name + ".db"
}

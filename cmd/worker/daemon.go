package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pcsync/pcsync/metrics"
	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
	"github.com/pcsync/pcsync/updater"
)

// daemonConfig is everything "worker run" is told.
type daemonConfig struct {
	queueURL     string
	dlqURL       string
	workers      int
	maxHeld      int
	maxBatch     int
	writeRPS     float64
	readRPS      float64
	writeBudget  int
	drainTimeout time.Duration
	metricsAddr  string
	logLevel     string
	logFormat    string
	exitWhenIdle time.Duration
}

func daemonFlags(c *daemonConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&c.queueURL, "queue-url", "", "URL of the SQS queue of jobs (required)")
	fs.StringVar(&c.dlqURL, "dlq-url", "", "URL of the dead-letter queue; default: the queue's RedrivePolicy target")
	fs.IntVar(&c.workers, "workers", 16, "engagements worked on at once")
	fs.IntVar(&c.maxHeld, "max-held", 0, "most messages held at once (received, not finished); 0: 2 x workers + 10 per poller")
	fs.IntVar(&c.maxBatch, "max-batch", 10, "most waiting jobs of one engagement handled together (coalescing)")
	fs.Float64Var(&c.writeRPS, "write-rps", 1, "ceiling of UpdateEngagementContext calls per second for this process (the account's write quota, or this replica's share)")
	fs.Float64Var(&c.readRPS, "read-rps", 10, "ceiling of GetEngagement calls per second for this process")
	fs.IntVar(&c.writeBudget, "write-budget", 10000, "UpdateEngagementContext calls allowed per rolling 24 h for this process; 0: no budget")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running jobs may take to finish")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9090", "listen address for /metrics, /healthz and /readyz; empty: none")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
	fs.DurationVar(&c.exitWhenIdle, "exit-when-idle", 0, "exit once the queue was empty and nothing was held for this long (batch runs); 0: run until stopped")
	return fs
}

func (c *daemonConfig) validate() error {
	var errs []error
	if c.queueURL == "" {
		errs = append(errs, errors.New("-queue-url (PCSYNC_QUEUE_URL) is required"))
	}
	if c.workers < 1 {
		errs = append(errs, fmt.Errorf("-workers must be at least 1, got %d", c.workers))
	}
	if c.maxBatch < 1 {
		errs = append(errs, fmt.Errorf("-max-batch must be at least 1, got %d", c.maxBatch))
	}
	if c.writeRPS <= 0 {
		errs = append(errs, fmt.Errorf("-write-rps must be above 0, got %v", c.writeRPS))
	}
	if c.readRPS <= 0 {
		errs = append(errs, fmt.Errorf("-read-rps must be above 0, got %v", c.readRPS))
	}
	if c.writeBudget < 0 {
		errs = append(errs, fmt.Errorf("-write-budget must be 0 (none) or more, got %d", c.writeBudget))
	}
	if c.drainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-drain-timeout must be above 0, got %v", c.drainTimeout))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		errs = append(errs, fmt.Errorf("-log-format must be json or text, got %q", c.logFormat))
	}
	return errors.Join(errs...)
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("-log-level must be debug, info, warn or error, got %q", s)
	}
	return l, nil
}

func newLogger(w io.Writer, format, level string) *slog.Logger {
	l, _ := parseLevel(level)
	opts := &slog.HandlerOptions{Level: l}
	if format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

const runUsage = `Usage: worker run [flags]

Runs the sync daemon: takes jobs off the SQS queue and applies each with
Partner Central's UpdateEngagementContext, within the rate quota and the
daily write budget. Stops taking jobs on SIGTERM or SIGINT, lets running
jobs finish within -drain-timeout, hands back the rest, and exits.

AWS settings come from the SDK's own chain: AWS_REGION, AWS_PROFILE,
credentials from the environment, the shared files, SSO, IRSA or IMDS;
AWS_ENDPOINT_URL_SQS and AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING override
the endpoints (for the local stack).

Each flag can be set by its environment variable; the flag wins.

Flags:
`

func runDaemon(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c daemonConfig
	fs := daemonFlags(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		printFlags(fs.Output(), fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := applyEnv(fs, getenv); err != nil {
		fmt.Fprintln(stderr, "worker run:", err)
		return exitError{exitUsage}
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "worker run: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nworker run: "))
		return exitError{exitUsage}
	}
	log := newLogger(stderr, c.logFormat, c.logLevel)

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	d, err := newDaemon(c, awsCfg, log)
	if err != nil {
		return err
	}
	return d.run(ctx)
}

// daemon is the wired worker.
type daemon struct {
	cfg      daemonConfig
	log      *slog.Logger
	consumer *queue.Consumer
	circuit  *retry.Circuit
	server   *http.Server
	listener net.Listener
	registry *prometheus.Registry
}

func newDaemon(c daemonConfig, awsCfg aws.Config, log *slog.Logger) (*daemon, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)

	circuit := retry.NewCircuit(retry.CircuitConfig{Logger: log, OnChange: func(s retry.CircuitState) { m.SetCircuit(s.String()) }})
	writes := retry.NewLimiter(retry.LimiterConfig{Ceiling: c.writeRPS, OnChange: func(r float64) { m.SetRate("write", r) }})
	reads := retry.NewLimiter(retry.LimiterConfig{Ceiling: c.readRPS, OnChange: func(r float64) { m.SetRate("read", r) }})
	m.SetCeiling("write", c.writeRPS)
	m.SetCeiling("read", c.readRPS)
	budget := retry.NewBudget(c.writeBudget, 24*time.Hour, nil)
	m.ObserveBudget(c.writeBudget, budget.Remaining)

	u, err := updater.New(partnercentral.NewFromConfig(awsCfg), updater.NewDecoder(schema.New()), updater.Config{
		Policy:   retry.DefaultPolicy(),
		Writes:   writes,
		Reads:    reads,
		Budget:   budget,
		Circuit:  circuit,
		Observer: m,
		Logger:   log,
	})
	if err != nil {
		return nil, err
	}
	consumer, err := queue.NewConsumer(sqs.NewFromConfig(awsCfg), queue.Config{
		QueueURL:     c.queueURL,
		DLQURL:       c.dlqURL,
		Workers:      c.workers,
		MaxHeld:      c.maxHeld,
		MaxBatch:     c.maxBatch,
		DrainTimeout: c.drainTimeout,
		ExitWhenIdle: c.exitWhenIdle,
		Gate:         circuit,
		Observer:     m,
		Logger:       log,
	}, u)
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: c, log: log, consumer: consumer, circuit: circuit, registry: reg}
	if c.metricsAddr != "" {
		ln, err := net.Listen("tcp", c.metricsAddr)
		if err != nil {
			return nil, fmt.Errorf("-metrics-addr %s: %w", c.metricsAddr, err)
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

func (d *daemon) routes() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.registry, promhttp.HandlerOpts{Registry: d.registry, ErrorLog: slog.NewLogLogger(d.log.Handler(), slog.LevelError)}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		switch {
		case d.consumer.Draining():
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case d.circuit.State() != retry.Closed:
			http.Error(w, "circuit "+d.circuit.State().String()+": "+d.circuit.Reason(), http.StatusServiceUnavailable)
		default:
			fmt.Fprintln(w, "ready")
		}
	})
	return mux
}

// run works until ctx ends (SIGTERM) or the queue stays idle, then shuts
// down in this order: stop receiving, hand back unstarted messages, let
// running jobs finish within the drain timeout, flush deletes and
// visibility changes (all inside Consumer.Run), and last stop the HTTP
// server, so that /readyz says "draining" for as long as the drain lasts.
func (d *daemon) run(ctx context.Context) error {
	served := make(chan error, 1)
	if d.server != nil {
		d.log.Info("serving health and metrics", "addr", d.listener.Addr().String())
		go func() { served <- d.server.Serve(d.listener) }()
	}
	d.log.Info("worker started", "queue", d.cfg.queueURL, "workers", d.cfg.workers,
		"write_rps", d.cfg.writeRPS, "read_rps", d.cfg.readRPS, "write_budget", d.cfg.writeBudget)
	err := d.consumer.Run(ctx)
	if d.server != nil {
		shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if e := d.server.Shutdown(shutCtx); e != nil {
			d.log.Warn("health server shutdown", "error", e)
		}
		if e := <-served; e != nil && !errors.Is(e, http.ErrServerClosed) {
			d.log.Error("health server failed", "error", e)
		}
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("consumer: %w", err)
	}
	d.log.Info("worker stopped")
	return nil
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/queue"
)

// daemonConfig is everything "worker run" is told.
type daemonConfig struct {
	queueURLs    urlList // in priority order, first highest
	dlqURLs      urlList // none, or one per queue ("-": its RedrivePolicy's)
	workers      int
	maxHeld      int
	maxBatch     int
	writeRPS     float64
	readRPS      float64
	writeBudget  int
	readBudget   int
	drainTimeout time.Duration
	metricsAddr  string
	logLevel     string
	logFormat    string
	exitWhenIdle time.Duration
	stateDir     string // "": the default place (defaultStateDir); "off": none
	stateFile    string
	stateTable   string
	pprof        bool
	// maxCircuitOpen ends a batch run whose circuit stays open this long.
	maxCircuitOpen time.Duration
	// queueSampleInterval is how often each queue's depth is asked.
	queueSampleInterval time.Duration
}

func daemonFlags(c *daemonConfig) *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.Var(&c.queueURLs, "queue-url", "URL of an SQS queue of jobs (required); repeat it for several queues, in priority order, first highest (the environment variable takes a comma-separated list)")
	fs.Var(&c.dlqURLs, "dlq-url", "URL of the dead-letter queue of each -queue-url, in the same order (\"-\": that queue's RedrivePolicy target); default: every queue's RedrivePolicy target")
	fs.IntVar(&c.workers, "workers", 16, "engagements worked on at once")
	fs.IntVar(&c.maxHeld, "max-held", 0, "most messages held at once (received, not finished); 0: 2 x workers + 10 per poller")
	fs.IntVar(&c.maxBatch, "max-batch", daemon.DefaultMaxBatch, "most waiting jobs of one engagement handled together (coalescing)")
	fs.Float64Var(&c.writeRPS, "write-rps", 1, "ceiling of UpdateEngagementContext calls per second for this process (the account's write quota, or this replica's share)")
	fs.Float64Var(&c.readRPS, "read-rps", 10, "ceiling of GetEngagement calls per second for this process")
	fs.IntVar(&c.writeBudget, "write-budget", 10000, "UpdateEngagementContext calls allowed per rolling 24 h, for this process, or for the fleet with -state-table; 0: no budget")
	fs.IntVar(&c.readBudget, "read-budget", 100000, "GetEngagement calls allowed per rolling 24 h, for this process, or for the fleet with -state-table; 0: no budget")
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long running jobs may take to finish")
	fs.StringVar(&c.metricsAddr, "metrics-addr", ":9090", "listen address for /metrics, /healthz and /readyz; empty: none")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "json", "json or text")
	fs.StringVar(&c.stateDir, "state-dir", "", "`directory` of the state file, which keeps across restarts the newest version set out to be written to each context (so that a restarted worker never writes an older one over it) and the daily write budget's window; the file is named after the queues; \"off\": memory only, lost on restart (default $XDG_STATE_HOME/pcsync, else ~/.local/state/pcsync)")
	fs.StringVar(&c.stateTable, "state-table", "", "DynamoDB `table` the fleet's workers share instead of a state file: the newest version of each context with one writer at a time (so that no replica writes an older version over a newer one, or a Lead interaction twice), and the daily write and read budgets, counted for the fleet (deploy/cloudformation creates it)")
	fs.StringVar(&c.stateFile, "state-file", "", "the state file's path (a `file`), instead of one named after the queues in -state-dir (a file in the text format of earlier pcsync versions is migrated)")
	fs.BoolVar(&c.pprof, "pprof", false, "serve Go's profiler at /debug/pprof/ on -metrics-addr (for diagnosis; keep the address private)")
	fs.DurationVar(&c.exitWhenIdle, "exit-when-idle", 0, "exit once nothing was received or held for this long and SQS counts no message left, or one visibility timeout and one long poll later (batch runs); 0: run until stopped")
	fs.DurationVar(&c.maxCircuitOpen, "max-circuit-open", 10*time.Minute, "with -exit-when-idle: end the run, with an error and every job left on the queue, once the circuit has stayed open this long (Partner Central refusing every call: wrong credentials, access denied); 0: never")
	fs.DurationVar(&c.queueSampleInterval, "queue-sample-interval", queue.DefaultSampleInterval, "how often to ask SQS how many messages each queue and its dead-letter queue hold, for the metrics (one GetQueueAttributes call each); 1s to 1h")
	return fs
}

func (c *daemonConfig) validate() error {
	var errs []error
	if len(c.queueURLs) == 0 {
		errs = append(errs, errors.New("-queue-url (PCSYNC_QUEUE_URL) is required"))
	}
	if len(c.dlqURLs) > 0 && len(c.dlqURLs) != len(c.queueURLs) {
		errs = append(errs, fmt.Errorf("-dlq-url must be given once per -queue-url, in the same order (\"-\" for a queue's RedrivePolicy target): got %d for %d queues", len(c.dlqURLs), len(c.queueURLs)))
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
	if c.readBudget < 0 {
		errs = append(errs, fmt.Errorf("-read-budget must be 0 (none) or more, got %d", c.readBudget))
	}
	if c.drainTimeout <= 0 {
		errs = append(errs, fmt.Errorf("-drain-timeout must be above 0, got %v", c.drainTimeout))
	}
	if c.maxCircuitOpen < 0 {
		errs = append(errs, fmt.Errorf("-max-circuit-open must be 0 (never) or more, got %v", c.maxCircuitOpen))
	}
	if c.queueSampleInterval < time.Second || c.queueSampleInterval > time.Hour {
		errs = append(errs, fmt.Errorf("-queue-sample-interval must be between 1s and 1h, got %v", c.queueSampleInterval))
	}
	if _, err := parseLevel(c.logLevel); err != nil {
		errs = append(errs, err)
	}
	if c.logFormat != "json" && c.logFormat != "text" {
		errs = append(errs, fmt.Errorf("-log-format must be json or text, got %q", c.logFormat))
	}
	if c.stateTable != "" && c.stateFile != "" {
		errs = append(errs, fmt.Errorf("-state-table (PCSYNC_STATE_TABLE) and -state-file (PCSYNC_STATE_FILE) are both set: the table replaces the state file; give one"))
	}
	if c.stateDir != "" && c.stateFile != "" {
		errs = append(errs, fmt.Errorf("-state-dir (PCSYNC_STATE_DIR) and -state-file (PCSYNC_STATE_FILE) are both set: give one, the directory or the file"))
	}
	return errors.Join(errs...)
}

// stateDirFor is the directory of the state file: -state-dir, else the
// default place; "" when -state-dir is off, -state-file names the file, or
// -state-table replaces it.
func (c *daemonConfig) stateDirFor(getenv func(string) string) (string, error) {
	switch {
	case c.stateFile != "" || c.stateDir == "off" || c.stateTable != "":
		return "", nil
	case c.stateDir != "":
		return c.stateDir, nil
	}
	return defaultStateDir(getenv)
}

// defaultStateDir is where the state file goes by default: the XDG base
// directory for state, $XDG_STATE_HOME (by default ~/.local/state), which
// the specification gives to data that should persist between restarts of
// an application but is not worth backing up or carrying to another
// machine, which is what this is. Not the cache directory, which may be
// wiped at any time (losing the file loses the guarantee); not /var/lib,
// which a worker running as a user cannot write.
func defaultStateDir(getenv func(string) string) (string, error) {
	// The specification ignores a relative path.
	if x := getenv("XDG_STATE_HOME"); filepath.IsAbs(x) {
		return filepath.Join(x, "pcsync"), nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".local", "state", "pcsync"), nil
	}
	return "", errors.New("-state-dir has no default: neither XDG_STATE_HOME nor HOME is set; give -state-dir DIR (PCSYNC_STATE_DIR), or -state-dir off to keep the state in memory only")
}

// standardQueues are the names of the queues that are not FIFO.
func standardQueues(urls []string) []string {
	var out []string
	for _, u := range urls {
		if name := path.Base(u); !strings.HasSuffix(name, ".fifo") {
			out = append(out, name)
		}
	}
	return out
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
AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING and
AWS_ENDPOINT_URL_DYNAMODB override the endpoints (for the local stack).

Each flag can be set by its environment variable; the flag wins.

Flags:
`

func runDaemon(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var c daemonConfig
	fs := daemonFlags(&c)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runUsage)
		printFlags(fs.Output(), fs, nil)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := applyEnv(fs, getenv, nil); err != nil {
		fmt.Fprintln(stderr, "worker run:", err)
		return exitError{exitUsage}
	}
	if err := c.validate(); err != nil {
		fmt.Fprintf(stderr, "worker run: %v\n", strings.ReplaceAll(err.Error(), "\n", "\nworker run: "))
		return exitError{exitUsage}
	}
	stateDir, err := c.stateDirFor(getenv)
	if err != nil {
		fmt.Fprintln(stderr, "worker run:", err)
		return exitError{exitUsage}
	}
	log := newLogger(stderr, c.logFormat, c.logLevel)
	if c.stateTable != "" && c.stateDir != "" && c.stateDir != "off" {
		// The Kubernetes base sets the directory; an overlay that adds a
		// table need not unset it.
		log.Info("the state table replaces the state file; -state-dir is not used", "table", c.stateTable, "state_dir", c.stateDir)
	}
	if c.stateDir == "off" && c.stateTable == "" {
		if std := standardQueues(c.queueURLs); len(std) > 0 {
			log.Warn("state kept in memory only (-state-dir off): after a restart, this worker may write an older version of a context over a newer one from a standard queue",
				"standard_queues", std)
		}
	}

	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	d, err := daemon.New(c.daemon(stateDir), awsCfg, log)
	if err != nil {
		return err
	}
	return d.Run(ctx)
}

// daemon is the daemon's configuration, with the state file's directory
// as stateDirFor resolved it.
func (c *daemonConfig) daemon(stateDir string) daemon.Config {
	return daemon.Config{
		QueueURLs: c.queueURLs, DLQURLs: c.dlqURLs.orDiscover(), Workers: c.workers, MaxHeld: c.maxHeld, MaxBatch: c.maxBatch,
		WriteRPS: c.writeRPS, ReadRPS: c.readRPS, WriteBudget: c.writeBudget, ReadBudget: c.readBudget, DrainTimeout: c.drainTimeout,
		MetricsAddr: c.metricsAddr, ExitWhenIdle: c.exitWhenIdle, MaxCircuitOpen: c.maxCircuitOpen, StateFile: c.stateFile, StateDir: stateDir, StateTable: c.stateTable, Pprof: c.pprof,
		QueueSampleInterval: c.queueSampleInterval,
	}
}

package main

// This file is "devstack demo": the local stack, a sample nightly batch and
// the real worker in one process, with live progress, a summary, and a
// check of the end state. It owns the flags and the run sequence; the
// progress table is in watch.go, the check in verify.go, the summary in
// report.go and the worker's log handlers in logs.go.

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

const demoUsage = `Usage: devstack demo [flags]

Runs pcsync end to end in one process, with no AWS account and no setup:
an SQS emulator with the job queue and its dead-letter queue, the Partner
Central simulator with a write quota, outside edits and a few faults, a
sample nightly batch of jobs (some invalid, some for engagements the service
does not have, some records changed several times), and the real worker.
Prints the progress once a second, then a summary, and checks the end state.

Exit status 0 when every context holds the newest version of its payload
and every job that cannot apply is in the dead-letter queue with its reason.

Flags:
`

// demoConfig is what "devstack demo" is told.
type demoConfig struct {
	jobs     int
	quota    float64
	duration time.Duration
	seed     int64
	queue    string
	keep     bool
	verbose  bool
}

// The simulated service's behaviour, in proportion to the quota where a
// fixed number would make a small or large run unrealistic.
const (
	// demoWorkers and demoMaxBatch are "worker run"'s defaults.
	demoWorkers      = 16
	demoMaxBatch     = 10
	demoCeilingRatio = 1.5  // the worker's write ceiling, over the quota: the limiter has to find the quota
	demoOutsideRatio = 0.1  // outside edits per second, per write of quota: real conflicts
	demoError5xx     = 0.02 // share of calls answered 500
	demoLost         = 0.02 // share of applied writes whose response is lost
	demoLatency      = 15 * time.Millisecond
	demoJitter       = 30 * time.Millisecond
	// demoVisibility is the queue's visibility timeout. The emulator now
	// and then loses a receive response on loopback; those messages come
	// back only when their visibility runs out, so a short one keeps the
	// demo from stalling for the usual 30 s. The worker's heartbeat keeps
	// the messages it holds invisible.
	demoVisibility = 10 * time.Second
	// demoPoll is how often the demo reads the counters to see whether
	// the batch is done; progress is printed once a second.
	demoPoll = 100 * time.Millisecond
)

func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c demoConfig
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&c.jobs, "jobs", 300, "jobs in the sample batch (at least 20)")
	fs.Float64Var(&c.quota, "quota", 20, "the simulated write quota, UpdateEngagementContext calls per second")
	fs.DurationVar(&c.duration, "duration", 2*time.Minute, "the longest the demo may run; it ends when the batch is done")
	fs.Int64Var(&c.seed, "seed", 1, "seed of the sample data and of the simulator's faults and outside edits")
	fs.StringVar(&c.queue, "queue", "pcsync-demo", "job queue name; its dead-letter queue is <queue>-dlq")
	fs.BoolVar(&c.keep, "keep", false, "after the summary, keep the stack and the worker running until Ctrl-C, to look around")
	fs.BoolVar(&c.verbose, "v", false, "show the worker's own log (info level) on standard error")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), demoUsage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	var bad []string
	if c.jobs < 20 || c.jobs > 100_000 {
		bad = append(bad, fmt.Sprintf("-jobs must be between 20 and 100000, got %d", c.jobs))
	}
	if !(c.quota >= 1 && c.quota <= 10_000) {
		bad = append(bad, fmt.Sprintf("-quota must be between 1 and 10000 writes/s, got %v", c.quota))
	}
	if c.duration <= 0 {
		bad = append(bad, fmt.Sprintf("-duration must be above 0, got %v", c.duration))
	}
	if c.queue == "" || strings.HasSuffix(c.queue, ".fifo") {
		bad = append(bad, fmt.Sprintf("-queue must be a standard queue name, got %q", c.queue))
	}
	if len(bad) > 0 {
		fmt.Fprintln(stderr, "devstack demo: "+strings.Join(bad, "\ndevstack demo: "))
		return errUsage
	}
	return runDemo(ctx, c, stdout, stderr)
}

// runDemo starts the stack, loads the batch, runs the worker until the
// batch is done (or -duration, or Ctrl-C), then reports and checks.
func runDemo(ctx context.Context, c demoConfig, stdout, stderr io.Writer) error {
	started := time.Now()
	b := planBatch(c.seed, c.jobs, started)
	readQuota := math.Max(10, c.quota/2)
	ceiling := c.quota * demoCeilingRatio
	sim := pcsim.Options{
		WriteRPS:   c.quota,
		WriteBurst: max(1, int(c.quota/2)),
		ReadRPS:    readQuota,
		ReadBurst:  max(1, int(readQuota)),
		// The daily budget is not what the demo shows; a large -jobs must
		// not run into it.
		WriteBudget:         -1,
		OutsideWritesPerSec: c.quota * demoOutsideRatio,
		Faults:              pcsim.Faults{Error5xx: demoError5xx, LostResponse: demoLost, Latency: demoLatency, LatencyJitter: demoJitter},
		Seed:                c.seed,
	}
	s, err := devstack.Start(ctx, devstack.Options{Queue: c.queue, Sim: sim})
	if err != nil {
		return fmt.Errorf("start the local stack: %w", err)
	}
	defer s.Close()
	if _, err := s.SQS.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(s.QueueURL),
		Attributes: map[string]string{"VisibilityTimeout": fmt.Sprint(int(demoVisibility / time.Second))}}); err != nil {
		return fmt.Errorf("set the queue's visibility timeout: %w", err)
	}
	if err := load(ctx, s, b); err != nil {
		return err
	}

	d, tally, err := newWorker(c, s, ceiling, readQuota, stderr)
	if err != nil {
		return err
	}
	metricsURL := "http://" + d.Addr() + "/metrics"
	printBanner(stdout, c, s, b, metricsURL, ceiling, readQuota)

	// The worker gets a context of its own: the demo decides when it
	// stops, after Ctrl-C too, so that it can still report.
	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- d.Run(workerCtx) }()

	w := &watch{c: c, reg: d.Registry(), sim: s.Sim, total: len(b.jobs), out: stdout, start: time.Now(), burst: sim.WriteBurst}
	w.last = stats{at: w.start}
	ended, workerErr := w.run(ctx, workerDone)
	if ended != endWorkerExited && !(c.keep && ended == endDone) {
		stopWorker()
		workerErr = <-workerDone
	}
	final, err := w.snapshot()
	if err != nil {
		return err
	}
	// The end, unless the last line already showed it.
	if final.finished() != w.last.finished() || final.sim.Admitted(updater.OpUpdate) != w.last.sim.Admitted(updater.OpUpdate) {
		w.line(final)
	}

	// The read below must work after Ctrl-C too. Browse leaves the
	// dead-letter queue as it found it, so the messages stay there to be
	// looked at. It reads as many as the worker says it sent there (fewer
	// when the batch was cut short): with no limit it would end only after
	// several receives that bring nothing, and the summary would come
	// seconds later. 0, when none were sent, reads them all.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	sent := 0.0
	for _, n := range final.deadLettered {
		sent += n
	}
	dlq, dlqErr := queue.Browse(rctx, s.SQS, s.DLQURL, int(sent))
	problems := verify(b, s.Sim, dlq)
	if dlqErr != nil {
		problems = append(problems, "reading the dead-letter queue: "+dlqErr.Error())
	}
	if workerErr != nil {
		problems = append(problems, "the worker failed: "+workerErr.Error())
	}
	switch ended {
	case endTimeout:
		problems = append([]string{fmt.Sprintf("the batch was not done after -duration %v: %d of %d jobs finished", c.duration, final.finished(), len(b.jobs))}, problems...)
	case endInterrupted:
		problems = append([]string{fmt.Sprintf("interrupted: %d of %d jobs finished", final.finished(), len(b.jobs))}, problems...)
	case endWorkerExited:
		problems = append([]string{"the worker stopped before the batch was done"}, problems...)
	}

	r := &report{c: c, b: b, final: final, w: w, dlq: dlq, tally: tally}
	r.print(stdout)
	printWhere(stdout, s, metricsURL, c.keep && ended == endDone)
	printResult(stdout, b, problems)

	if c.keep && ended == endDone {
		fmt.Fprintf(stdout, "\nThe stack and the worker keep running until Ctrl-C.\n")
		<-ctx.Done()
		fmt.Fprintln(stdout, "\nStopping.")
		stopWorker()
		if err := <-workerDone; err != nil {
			problems = append(problems, "the worker failed: "+err.Error())
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("demo failed: %s", problems[0])
	}
	return nil
}

// newWorker wires the real worker to the stack. Its log would drown the
// progress lines, so its warnings and errors are counted for the summary
// instead, and with -v the whole log goes to stderr as well.
func newWorker(c demoConfig, s *devstack.Stack, ceiling, readQuota float64, stderr io.Writer) (*daemon.Daemon, *logTally, error) {
	tally := newLogTally()
	var handler slog.Handler = tally
	if c.verbose {
		handler = teeHandler{tally, slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})}
	}
	cfg := s.WorkerConfig()
	cfg.Workers, cfg.MaxBatch = demoWorkers, demoMaxBatch
	cfg.WriteRPS, cfg.ReadRPS = ceiling, readQuota
	cfg.WriteBudget = 0 // as in the simulator: not what the demo shows
	cfg.DrainTimeout = 10 * time.Second
	cfg.MetricsAddr = "127.0.0.1:0" // a free port: the demo never collides with anything
	d, err := daemon.New(cfg, s.AWSConfig(), slog.New(handler))
	if err != nil {
		return nil, nil, fmt.Errorf("start the worker: %w", err)
	}
	return d, tally, nil
}

// load creates the sample engagements in the simulator, writes the jobs
// with the timestamps the CRM would know, and sends them to the queue.
func load(ctx context.Context, s *devstack.Stack, b *batch) error {
	for _, e := range b.engagements {
		if err := s.Sim.AddEngagement(e); err != nil {
			return fmt.Errorf("create the sample engagement %s: %w", e.Id, err)
		}
	}
	if err := b.encode(func(id string) string {
		st, ok := s.Sim.Engagement(id)
		if !ok {
			return ""
		}
		return st.ModifiedAt
	}); err != nil {
		return err
	}
	entries := make([]queue.Entry, len(b.jobs))
	for i, j := range b.jobs {
		entries[i] = queue.Entry{ID: fmt.Sprintf("job %d", i+1), Body: j.body}
	}
	p := queue.NewProducer(s.SQS, s.QueueURL, queue.ProducerConfig{})
	if _, err := p.Send(ctx, entries); err != nil {
		return fmt.Errorf("enqueue the sample batch: %w", err)
	}
	return nil
}

func printBanner(w io.Writer, c demoConfig, s *devstack.Stack, b *batch, metricsURL string, ceiling, readQuota float64) {
	updates := b.count(fateApply)
	fmt.Fprintf(w, "pcsync demo: a nightly batch of %d jobs through the real worker, against local stand-ins for AWS\n\n", len(b.jobs))
	fmt.Fprintf(w, "  SQS (kumo, in process)   %s  queue %s, dead-letter queue %s-dlq\n", s.SQSURL, c.queue, c.queue)
	fmt.Fprintf(w, "  Partner Central (pcsim)  %s  quota %s writes/s (burst %d), %s reads/s;\n", s.PCURL, num(c.quota), max(1, int(c.quota/2)), num(readQuota))
	fmt.Fprintf(w, "                           %s outside edits/s, %s of calls fail with 500, %s of write responses lost\n",
		num(c.quota*demoOutsideRatio), pct(demoError5xx), pct(demoLost))
	fmt.Fprintf(w, "  worker (\"worker run\")    %d workers, write ceiling %s/s: above the quota, so its limiter has to find it\n", demoWorkers, num(ceiling))
	fmt.Fprintf(w, "  worker metrics           %s  (while the demo runs)\n\n", metricsURL)
	fmt.Fprintf(w, "  The batch: %d jobs for %d engagements (each has a customer project and a lead context):\n", len(b.jobs), len(b.engagements))
	fmt.Fprintf(w, "    %d updates of %d contexts (%d of them changed several times yesterday: only the newest may win),\n", updates, b.contexts, b.multi)
	fmt.Fprintf(w, "    %d invalid jobs, %d for engagements or contexts Partner Central does not have.\n\n", b.count(fateInvalid), b.count(fateRejected))
}

// num formats a rate without needless decimals.
func num(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func pct(share float64) string { return fmt.Sprintf("%g%%", share*100) }

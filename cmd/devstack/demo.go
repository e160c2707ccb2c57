package main

// This file is "devstack demo": the local stack, a sample nightly batch and
// the real worker in one process, with live progress, a summary, and a
// check of the end state.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
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
	if final.finished() != w.last.finished() || final.sim.Admitted("UpdateEngagementContext") != w.last.sim.Admitted("UpdateEngagementContext") {
		w.line(final)
	}

	// The reads below must work after Ctrl-C too.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
	defer cancel()
	// As many as the worker says it sent there; fewer when the batch was
	// cut short.
	sent := 0.0
	for _, n := range final.deadLettered {
		sent += n
	}
	dlq, dlqErr := readDLQ(rctx, s.SQS, s.DLQURL, int(sent))
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

// How the watch ended.
type ending int

const (
	endDone ending = iota
	endTimeout
	endInterrupted
	endWorkerExited
)

// watch follows the worker through its metrics registry and the
// simulator's counters, prints a line a second, and says when the batch is
// done.
type watch struct {
	c     demoConfig
	reg   prometheus.Gatherer
	sim   *pcsim.Server
	total int
	out   io.Writer
	start time.Time
	burst int // the simulated quota's burst allowance

	lines    int
	last     stats // at the last line printed
	admitted []admittedAt
}

// admittedAt is the count of writes the service admitted (within the
// quota) at a time: the demo measures quota use from it.
type admittedAt struct {
	at time.Time
	n  int
}

// run returns how the watch ended and, when the worker stopped by itself,
// its error.
func (w *watch) run(ctx context.Context, workerDone <-chan error) (ending, error) {
	deadline := time.NewTimer(w.c.duration)
	defer deadline.Stop()
	tick := time.NewTicker(demoPoll)
	defer tick.Stop()
	nextLine := w.start.Add(time.Second)
	for {
		select {
		case <-ctx.Done():
			return endInterrupted, nil
		case <-deadline.C:
			return endTimeout, nil
		case err := <-workerDone:
			// The worker stops by itself only when it cannot start.
			return endWorkerExited, err
		case now := <-tick.C:
			st, err := w.snapshot()
			if err != nil {
				continue
			}
			if !now.Before(nextLine) {
				w.line(st)
				nextLine = nextLine.Add(time.Second)
			}
			// Done: every job has an outcome that ends it, and every
			// outcome has been acted on (deletes and DLQ copies sent).
			if st.finished() >= w.total && st.held == 0 {
				return endDone, nil
			}
		}
	}
}

// stats is what the demo reads: the worker's counters (from its Prometheus
// registry, as a scrape of /metrics would see them) and the simulator's.
type stats struct {
	at           time.Time
	jobs         map[string]float64            // pcsync_jobs_total by outcome
	api          map[string]map[string]float64 // pcsync_api_requests_total by operation, code
	conflicts    float64                       // pcsync_conflicts_total
	throttles    float64                       // pcsync_throttles_total, all operations
	deadLettered map[string]float64            // pcsync_messages_dead_lettered_total by class
	held         float64                       // pcsync_messages_held
	writeRate    float64                       // pcsync_rate_limit_per_second{class="write"}
	sim          pcsim.Stats
}

// finished counts jobs whose outcome ends them; retried ones come back.
func (s stats) finished() int {
	n := 0.0
	for _, o := range []string{"applied", "already_applied", "coalesced", "stale", "dead_lettered"} {
		n += s.jobs[o]
	}
	return int(n)
}

func (s stats) apiCode(code string) float64 {
	n := 0.0
	for _, codes := range s.api {
		n += codes[code]
	}
	return n
}

func (s stats) apiCalls(op string) float64 {
	n := 0.0
	for _, v := range s.api[op] {
		n += v
	}
	return n
}

func (w *watch) snapshot() (stats, error) {
	fams, err := w.reg.Gather()
	if err != nil {
		return stats{}, fmt.Errorf("read the worker's metrics: %w", err)
	}
	s := stats{at: time.Now(), jobs: map[string]float64{}, api: map[string]map[string]float64{}, deadLettered: map[string]float64{}}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			switch f.GetName() {
			case "pcsync_jobs_total":
				s.jobs[label(m, "outcome")] = m.GetCounter().GetValue()
			case "pcsync_api_requests_total":
				op := label(m, "operation")
				if s.api[op] == nil {
					s.api[op] = map[string]float64{}
				}
				s.api[op][label(m, "code")] = m.GetCounter().GetValue()
			case "pcsync_conflicts_total":
				s.conflicts = m.GetCounter().GetValue()
			case "pcsync_throttles_total":
				s.throttles += m.GetCounter().GetValue()
			case "pcsync_messages_dead_lettered_total":
				s.deadLettered[label(m, "class")] = m.GetCounter().GetValue()
			case "pcsync_messages_held":
				s.held = m.GetGauge().GetValue()
			case "pcsync_rate_limit_per_second":
				if label(m, "class") == "write" {
					s.writeRate = m.GetGauge().GetValue()
				}
			}
		}
	}
	s.sim = w.sim.Stats()
	if n := s.sim.Admitted("UpdateEngagementContext"); n > 0 && (len(w.admitted) == 0 || n != w.admitted[len(w.admitted)-1].n) {
		w.admitted = append(w.admitted, admittedAt{at: s.at, n: n})
	}
	return s, nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// progressColumns are the progress table's columns: a two-line title and
// a width.
var progressColumns = []struct {
	title [2]string
	width int
}{
	{[2]string{"", "time"}, 5}, {[2]string{"", "done"}, 10},
	{[2]string{"", "applied"}, 9}, {[2]string{"already", "applied"}, 9}, {[2]string{"", "coalesced"}, 11},
	{[2]string{"", "stale"}, 7}, {[2]string{"dead-", "lettered"}, 10},
	{[2]string{"conflicts", "healed"}, 11}, {[2]string{"", "throttled"}, 11}, {[2]string{"", "5xx"}, 6},
	{[2]string{"writes/s", ""}, 12}, {[2]string{"write", "limiter"}, 9},
}

func (w *watch) header() {
	for row := range 2 {
		var b strings.Builder
		for _, c := range progressColumns {
			t := c.title[row]
			if row == 1 && t == "" {
				t = "(quota " + num(w.c.quota) + ")"
			}
			fmt.Fprintf(&b, "%*s", c.width, t)
		}
		fmt.Fprintln(w.out, strings.TrimRight(b.String(), " "))
	}
}

// line prints one progress line: the jobs finished by outcome, the API's
// answers that pcsync had to deal with, and the write rate the service
// admitted against its quota, next to the worker's limiter.
func (w *watch) line(s stats) {
	if w.lines%20 == 0 {
		if w.lines > 0 {
			fmt.Fprintln(w.out)
		}
		w.header()
	}
	rate := float64(s.sim.Admitted("UpdateEngagementContext")-w.last.sim.Admitted("UpdateEngagementContext")) / s.at.Sub(w.last.at).Seconds()
	cells := []string{
		fmt.Sprintf("%.0fs", math.Round(s.at.Sub(w.start).Seconds())),
		fmt.Sprintf("%d/%d", s.finished(), w.total),
	}
	for _, v := range []float64{s.jobs["applied"], s.jobs["already_applied"], s.jobs["coalesced"], s.jobs["stale"], s.jobs["dead_lettered"],
		s.conflicts, s.throttles, s.apiCode("InternalServerException")} {
		cells = append(cells, fmt.Sprintf("%.0f", v))
	}
	cells = append(cells, fmt.Sprintf("%.1f", rate), fmt.Sprintf("%.1f", s.writeRate))
	var b strings.Builder
	for i, c := range progressColumns {
		fmt.Fprintf(&b, "%*s", c.width, cells[i])
	}
	fmt.Fprintln(w.out, b.String())
	w.lines++
	w.last = s
}

// quotaUse is the writes the service admitted while there were writes to
// make, against the most it would have admitted in that time (the quota's
// rate plus its burst): how well the worker used what it may use.
func (w *watch) quotaUse() (use float64, writes, most int, took time.Duration) {
	if len(w.admitted) < 2 {
		return 0, 0, 0, 0
	}
	first, last := w.admitted[0], w.admitted[len(w.admitted)-1]
	// The first sample with writes is taken up to one poll after they
	// began.
	took = last.at.Sub(first.at) + demoPoll
	most = w.burst + int(took.Seconds()*w.c.quota)
	return float64(last.n) / float64(most), last.n, most, took
}

// dlqEntry is one message of the dead-letter queue.
type dlqEntry struct {
	body, class, reason string
}

// readDLQ reads every message of the dead-letter queue (want is how many
// the demo expects) and then makes them visible again, so that they stay
// there to be looked at.
func readDLQ(ctx context.Context, client *sqs.Client, url string, want int) ([]dlqEntry, error) {
	var out []dlqEntry
	var lastErr error
	handles := map[string]string{} // message id -> latest receipt handle
	for {
		r, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 0,
			// Short, so that a message whose receive response the
			// emulator lost comes back soon.
			VisibilityTimeout:     5,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			// Tried again until ctx ends: the SDK has retried already,
			// but the emulator may still answer.
			lastErr = err
			r = &sqs.ReceiveMessageOutput{}
		}
		fresh := 0
		for _, m := range r.Messages {
			id := aws.ToString(m.MessageId)
			if _, seen := handles[id]; !seen {
				fresh++
				out = append(out, dlqEntry{
					body:   aws.ToString(m.Body),
					class:  attr(m, queue.AttrErrorClass),
					reason: attr(m, queue.AttrErrorReason),
				})
			}
			handles[id] = aws.ToString(m.ReceiptHandle)
		}
		if err == nil && fresh == 0 && len(out) >= want {
			break
		}
		if fresh == 0 {
			t := time.NewTimer(200 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				// What is there; the check names what is missing.
				return out, lastErr
			case <-t.C:
			}
		}
	}
	// Best effort: a message left invisible comes back by itself in 5 s.
	var entries []sqstypes.ChangeMessageVisibilityBatchRequestEntry
	flush := func() {
		if len(entries) > 0 {
			_, _ = client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(url), Entries: entries})
			entries = nil
		}
	}
	for _, h := range handles {
		entries = append(entries, sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			Id: aws.String(fmt.Sprint(len(entries))), ReceiptHandle: aws.String(h), VisibilityTimeout: 0})
		if len(entries) == 10 {
			flush()
		}
	}
	flush()
	return out, nil
}

func attr(m sqstypes.Message, name string) string {
	if v, ok := m.MessageAttributes[name]; ok {
		return aws.ToString(v.StringValue)
	}
	return ""
}

// engagements is the simulator's state, as verify reads it.
type engagements interface {
	Engagement(id string) (pcsim.EngagementState, bool)
}

// verify checks the end state: every context a valid job updates holds its
// newest version, and every other job is in the dead-letter queue, with
// the class it should have and a reason, and nothing else is.
func verify(b *batch, sim engagements, dlq []dlqEntry) []string {
	var problems []string
	newest := b.newest()
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wrong := 0
	for _, k := range keys {
		j := newest[k]
		if why := holdsNewest(sim, j); why != "" {
			wrong++
			if wrong <= 5 {
				problems = append(problems, fmt.Sprintf("context %s: %s", k, why))
			}
		}
	}
	if wrong > 5 {
		problems = append(problems, fmt.Sprintf("... %d contexts in all do not hold their newest version", wrong))
	}

	byBody := map[string]dlqEntry{}
	for _, e := range dlq {
		byBody[e.body] = e
	}
	expected := map[string]bool{}
	for _, j := range b.jobs {
		if j.fate == fateApply {
			continue
		}
		expected[j.body] = true
		e, ok := byBody[j.body]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("job with %s (%s/%s) is not in the dead-letter queue", j.what, j.eng, j.ctx))
		case e.reason == "":
			problems = append(problems, fmt.Sprintf("job with %s is in the dead-letter queue without a reason", j.what))
		case e.class != j.class:
			problems = append(problems, fmt.Sprintf("job with %s is in the dead-letter queue as %s, want %s", j.what, e.class, j.class))
		}
	}
	for _, e := range dlq {
		if !expected[e.body] {
			eng, ctx := bodyContext(e.body)
			problems = append(problems, fmt.Sprintf("valid job for %s/%s is in the dead-letter queue: %s: %s", eng, ctx, e.class, e.reason))
		}
	}
	return problems
}

// holdsNewest says what is wrong with the context job j updates, or ""
// when it holds j's payload: for a customer project the whole payload; for
// a lead its status, its customer and, last of its interactions, j's.
func holdsNewest(sim engagements, j *sampleJob) string {
	st, ok := sim.Engagement(j.eng)
	if !ok {
		return "the engagement is gone"
	}
	var payload json.RawMessage
	for _, c := range st.Contexts {
		if c.Id == j.ctx {
			payload = c.Payload
		}
	}
	var got map[string]map[string]any
	if err := json.Unmarshal(payload, &got); err != nil {
		return "its payload cannot be read: " + err.Error()
	}
	have := got[string(j.typ)]
	if j.typ == types.EngagementContextTypeCustomerProject {
		if !sameJSON(have, j.payload) {
			return "does not hold the newest version"
		}
		return ""
	}
	interactions, _ := have["Interactions"].([]any)
	switch {
	case have["QualificationStatus"] != j.payload["QualificationStatus"] || !sameJSON(have["Customer"], j.payload["Customer"]):
		return "does not hold the newest version of the lead"
	case len(interactions) == 0 || !sameJSON(interactions[len(interactions)-1], j.payload["Interaction"]):
		return "its last interaction is not the newest version's"
	}
	return ""
}

// sameJSON compares two values as JSON documents, whatever Go types hold
// them.
func sameJSON(a, b any) bool {
	norm := func(v any) any {
		raw, err := json.Marshal(v)
		if err != nil {
			return err.Error()
		}
		var out any
		_ = json.Unmarshal(raw, &out)
		return out
	}
	return reflect.DeepEqual(norm(a), norm(b))
}

// bodyContext reads the engagement and context a job body names, or
// "(not JSON)".
func bodyContext(body string) (eng, ctx string) {
	var j struct{ EngagementIdentifier, ContextIdentifier string }
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return "(not JSON)", ""
	}
	return j.EngagementIdentifier, j.ContextIdentifier
}

// report is the summary printed at the end.
type report struct {
	c     demoConfig
	b     *batch
	final stats
	w     *watch
	dlq   []dlqEntry
	tally *logTally
}

// Outcomes as the summary explains them, in the order it lists them.
var outcomeNotes = []struct{ outcome, name, note string }{
	{"applied", "applied", "written with UpdateEngagementContext"},
	{"already_applied", "already applied", "found in place by a read: a write whose response was lost, or a replay"},
	{"coalesced", "coalesced", "an older version of a context, superseded by a newer one received with it"},
	{"stale", "stale", "older than the version already applied to its context: never written"},
	{"dead_lettered", "dead-lettered", "can never apply as they are: in the DLQ with their reason"},
	{"retried", "retried", "sent back to the queue for later"},
	{"abandoned", "abandoned", "the worker stopped mid-job; the message reappears"},
}

// HTTP statuses of the API's error codes, for readers who think in them.
var codeStatus = map[string]string{
	"OK": "200", "ConflictException": "409", "ThrottlingException": "429", "InternalServerException": "500",
	"ResourceNotFoundException": "404", "ValidationException": "400", "AccessDeniedException": "403",
	"ServiceQuotaExceededException": "402", "network": "no answer", "timeout": "no answer",
}

func (r *report) print(w io.Writer) {
	s := r.final
	elapsed := s.at.Sub(r.w.start)
	fmt.Fprintf(w, "\nSummary after %.1fs\n\n", elapsed.Seconds())

	fmt.Fprintf(w, "Jobs by outcome (pcsync_jobs_total)\n")
	total := 0.0
	for _, o := range outcomeNotes {
		n := s.jobs[o.outcome]
		total += n
		if n == 0 && (o.outcome == "retried" || o.outcome == "abandoned") {
			continue
		}
		fmt.Fprintf(w, "  %-16s %6.0f  %s\n", o.name, n, o.note)
	}
	fmt.Fprintf(w, "  %-16s %6.0f  of %d sent\n\n", "all", total, len(r.b.jobs))

	fmt.Fprintf(w, "Partner Central API calls, by operation and answer (pcsync_api_requests_total)\n")
	calls := 0.0
	for _, op := range []string{"UpdateEngagementContext", "GetEngagement"} {
		codes := s.api[op]
		names := make([]string, 0, len(codes))
		for code, n := range codes {
			if n > 0 {
				names = append(names, code)
			}
		}
		// OK first, then by count.
		slices.SortFunc(names, func(a, b string) int {
			if (a == "OK") != (b == "OK") {
				if a == "OK" {
					return -1
				}
				return 1
			}
			if codes[a] != codes[b] {
				return int(codes[b] - codes[a])
			}
			return strings.Compare(a, b)
		})
		first := op
		for _, code := range names {
			label := code
			if st, ok := codeStatus[code]; ok {
				label += " (" + st + ")"
			}
			fmt.Fprintf(w, "  %-25s %-36s %6.0f\n", first, label, codes[code])
			first = ""
		}
		n := s.apiCalls(op)
		calls += n
		if len(names) == 0 {
			fmt.Fprintf(w, "  %-25s %-36s %6.0f\n", first, "none", 0.0)
			continue
		}
		fmt.Fprintf(w, "  %-25s %-36s %6.0f\n", "", "all", n)
	}
	fmt.Fprintln(w)

	writes := s.apiCalls("UpdateEngagementContext")
	reads := s.apiCalls("GetEngagement")
	throttledWrites := s.api["UpdateEngagementContext"]["ThrottlingException"]
	fmt.Fprintf(w, "Figures\n")
	fmt.Fprintf(w, "  %-20s %s  (%.0f writes + %.0f reads for %d jobs)\n", "API calls per job", fmt.Sprintf("%.2f", (writes+reads)/float64(len(r.b.jobs))), writes, reads, len(r.b.jobs))
	if writes > 0 {
		fmt.Fprintf(w, "  %-20s %.1f %% of writes (%.0f of %.0f), while the write limiter searched down from its %s/s ceiling to %.1f/s\n",
			"throttled", 100*throttledWrites/writes, throttledWrites, writes, num(r.c.quota*demoCeilingRatio), s.writeRate)
	}
	if use, n, most, took := r.w.quotaUse(); n > 0 {
		fmt.Fprintf(w, "  %-20s %.2f  (%d writes admitted in %.1fs, of the %d the service allows: %s/s and a burst of %d)\n",
			"quota use", use, n, took.Seconds(), most, num(r.c.quota), r.w.burst)
	}
	fmt.Fprintf(w, "  %-20s %.0f  (outside edits, %d in all, made the CRM's timestamps stale; each conflict cost one GetEngagement)\n",
		"conflicts healed", s.conflicts, s.sim.OutsideWrites)
	fmt.Fprintf(w, "  %-20s %.0f  (500s: retried with backoff; after a failed write, a read first checks whether it went through)\n",
		"server errors", s.apiCode("InternalServerException"))
	fmt.Fprintf(w, "  %-20s %d  (writes applied whose response never came back: settled by a read, never written twice)\n\n",
		"lost responses", s.sim.Calls["UpdateEngagementContext"]["lost"])

	r.printDLQ(w)
	r.printLog(w)
}

func (r *report) printDLQ(w io.Writer) {
	fmt.Fprintf(w, "Dead-letter queue: %d messages, each with the attributes ErrorClass and ErrorReason\n", len(r.dlq))
	if len(r.dlq) == 0 {
		fmt.Fprintln(w)
		return
	}
	type group struct {
		class  string
		n      int
		sample string
	}
	var groups []*group
	byClass := map[string]*group{}
	for _, e := range r.dlq {
		g := byClass[e.class]
		if g == nil {
			g = &group{class: e.class, sample: e.reason}
			byClass[e.class] = g
			groups = append(groups, g)
		}
		g.n++
	}
	slices.SortStableFunc(groups, func(a, b *group) int { return b.n - a.n })
	fmt.Fprintf(w, "  %-16s %5s  %s\n", "class", "count", "a reason")
	for _, g := range groups {
		fmt.Fprintf(w, "  %-16s %5d  %s\n", g.class, g.n, clip(g.sample, 110))
	}

	// Each entry, with the fault the demo planted in it.
	planted := map[string]*sampleJob{}
	for _, j := range r.b.jobs {
		if j.fate != fateApply {
			planted[j.body] = j
		}
	}
	rank := map[string]int{}
	for i, g := range groups {
		rank[g.class] = i
	}
	entries := slices.Clone(r.dlq)
	slices.SortStableFunc(entries, func(a, b dlqEntry) int { return rank[a.class] - rank[b.class] })
	const most = 20
	fmt.Fprintf(w, "\n  The entries (planted fault, then pcsync's reason):\n")
	for i, e := range entries {
		if i == most {
			fmt.Fprintf(w, "  ... and %d more\n", len(entries)-most)
			break
		}
		eng, ctx := bodyContext(e.body)
		where := eng
		if ctx != "" {
			where += "/" + ctx
		}
		what := "(not a job of the sample batch)"
		if j, ok := planted[e.body]; ok {
			what = j.what
		}
		fmt.Fprintf(w, "  %-15s %-22s %s\n", e.class, where, what)
		fmt.Fprintf(w, "  %-15s %-22s -> %s\n", "", "", clip(e.reason, 140))
	}
	fmt.Fprintln(w)
}

func (r *report) printLog(w io.Writer) {
	counts := r.tally.counts()
	if len(counts) == 0 {
		return
	}
	fmt.Fprintf(w, "Worker log, warnings and errors (-v shows the whole log as it happens)\n")
	for _, c := range counts {
		fmt.Fprintf(w, "  %5d  %-5s %s\n", c.n, c.level, c.msg)
	}
	fmt.Fprintln(w)
}

func printResult(w io.Writer, b *batch, problems []string) {
	if len(problems) == 0 {
		fmt.Fprintf(w, "Result: OK. All %d contexts hold the newest version of their payload, and all %d jobs that cannot apply\n",
			len(b.newest()), b.count(fateInvalid)+b.count(fateRejected))
		fmt.Fprintf(w, "are in the dead-letter queue with their reason.\n")
		return
	}
	fmt.Fprintf(w, "Result: FAILED\n")
	for _, p := range problems {
		fmt.Fprintf(w, "  - %s\n", p)
	}
}

// printWhere says where a user can look for themselves: the worker's
// metrics, the simulator's counters, and the dead-letter queue.
func printWhere(w io.Writer, s *devstack.Stack, metricsURL string, kept bool) {
	fmt.Fprintf(w, "Where to look\n")
	fmt.Fprintf(w, "  %-11s curl -s %s | grep ^pcsync_\n", "metrics", metricsURL)
	fmt.Fprintf(w, "  %-11s curl -s %s/_sim/stats\n", "simulator", s.PCURL)
	fmt.Fprintf(w, "  %-11s AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s aws sqs receive-message --region %s \\\n",
		"DLQ", devstack.AccessKeyID, devstack.SecretAccessKey, devstack.Region)
	fmt.Fprintf(w, "  %-11s   --endpoint-url %s --queue-url %s \\\n", "", s.SQSURL, s.DLQURL)
	fmt.Fprintf(w, "  %-11s   --message-attribute-names All --max-number-of-messages 10\n", "")
	if kept {
		fmt.Fprintf(w, "  They stay up until Ctrl-C.\n\n")
		return
	}
	fmt.Fprintf(w, "  These stop with the demo; run it with -keep to keep them up after the summary.\n\n")
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// logTally counts the worker's warnings and errors by message, so that
// the summary can show them without their lines drowning the progress.
// It is safe for concurrent use; its derived handlers share its counts.
type logTally struct {
	mu    sync.Mutex
	n     map[string]int
	order []string
}

type logCount struct {
	level, msg string
	n          int
}

func newLogTally() *logTally { return &logTally{n: map[string]int{}} }

func (t *logTally) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (t *logTally) Handle(_ context.Context, r slog.Record) error {
	k := r.Level.String() + "\x00" + r.Message
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n[k] == 0 {
		t.order = append(t.order, k)
	}
	t.n[k]++
	return nil
}

func (t *logTally) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *logTally) WithGroup(string) slog.Handler      { return t }

func (t *logTally) counts() []logCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]logCount, 0, len(t.order))
	for _, k := range t.order {
		level, msg, _ := strings.Cut(k, "\x00")
		out = append(out, logCount{level: level, msg: msg, n: t.n[k]})
	}
	return out
}

// teeHandler sends each record to every handler that wants it.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slices.ContainsFunc(t, func(h slog.Handler) bool { return h.Enabled(ctx, l) })
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

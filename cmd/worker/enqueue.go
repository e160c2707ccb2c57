package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/sdkhttp"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

const enqueueUsage = `Usage: worker enqueue -queue-url URL [-format auto|jsonl|csv] [-skip N | -checkpoint FILE] FILE...

The nightly bulk path: reads job files ("-" is standard input), checks every
job against the API model like "worker validate", and sends the valid ones
to the queue with SendMessageBatch, ten at a time. Invalid jobs are reported
as FILE:LINE: field: rule and never sent.

Files are JSON Lines (one job per line) or CSV (a header row, one job per
row; the columns are listed in the README and in examples/nightly.csv).
-format auto decides by the file name: .csv is CSV, anything else JSON Lines.

On a FIFO queue the message group is the engagement (so one engagement's
jobs stay in order across replicas) and the deduplication id is the SHA-256
of the job, so sending a file twice within five minutes sends it once.

A run can be resumed: -skip N skips the first N jobs; -checkpoint FILE
records how many jobs were handled after every batch and skips them when
the run starts again.

Progress goes to standard error: a bar on a terminal, a line every few
seconds otherwise; at the end "N jobs, N sent, N invalid, N failed", then
what the batch costs at the account's quotas in the worst case, every job a
change: the writes after coalescing (one per context), the hours they take
at -write-rps, and their share of the daily -write-budget. Jobs that change
nothing cost a read instead (ten times cheaper); see the README.
Exit status: 0 all sent, 1 some job invalid or not sent, 2 usage or I/O error.

Flags:
`

func runEnqueue(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", "", "URL of the SQS queue of jobs (required)")
	format := fs.String("format", "auto", "auto, jsonl or csv")
	skip := fs.Int("skip", 0, "skip the first N jobs of the input (resume an interrupted run)")
	checkpoint := fs.String("checkpoint", "", "file recording how many jobs were handled; resumes from it")
	writeRPS := fs.Float64("write-rps", 1, "the account's UpdateEngagementContext quota per second, for the cost summary")
	writeBudget := fs.Int("write-budget", 10000, "the account's UpdateEngagementContext calls per rolling 24 h, for the cost summary")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), enqueueUsage)
		printFlags(fs.Output(), fs, queueEnv)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(applyEnv(fs, getenv, queueEnv), oneQueueEach(fs)); err != nil {
		fmt.Fprintln(stderr, "worker enqueue:", err)
		return exitError{exitUsage}
	}
	var problems []string
	if *queueURL == "" || fs.NArg() == 0 {
		problems = append(problems, "-queue-url (PCSYNC_QUEUE_URL) and at least one FILE are required")
	}
	if *format != "auto" && *format != "jsonl" && *format != "csv" {
		problems = append(problems, fmt.Sprintf("-format must be auto, jsonl or csv, got %q", *format))
	}
	if *skip < 0 {
		problems = append(problems, fmt.Sprintf("-skip must be 0 or more, got %d", *skip))
	}
	if !(*writeRPS > 0) {
		problems = append(problems, fmt.Sprintf("-write-rps must be more than 0, got %v", *writeRPS))
	}
	if *writeBudget <= 0 {
		problems = append(problems, fmt.Sprintf("-write-budget must be more than 0, got %d", *writeBudget))
	}
	if *skip > 0 && *checkpoint != "" {
		problems = append(problems, "-skip and -checkpoint exclude each other")
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(stderr, "worker enqueue:", p)
		}
		return exitError{exitUsage}
	}
	if *checkpoint != "" {
		n, err := readCheckpoint(*checkpoint)
		if err != nil {
			fmt.Fprintln(stderr, "worker enqueue:", err)
			return exitError{exitUsage}
		}
		*skip = n
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	e := &enqueuer{
		dec:        updater.NewDecoder(schema.New()),
		producer:   queue.NewProducer(sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.HTTPClient = sdkhttp.NewClient(o.HTTPClient) }), *queueURL, queue.ProducerConfig{}),
		stdout:     stdout,
		stderr:     stderr,
		skip:       *skip,
		checkpoint: *checkpoint,
		progress:   newProgress(stderr, totalJobs(fs.Args(), *format)),
		contexts:   map[string]struct{}{},
	}
	ioFailed := false
	for _, name := range fs.Args() {
		if err := e.file(ctx, name, *format, stdin); err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(stderr, "worker enqueue: %s: %v\n", name, err)
			ioFailed = true
		}
	}
	if ctx.Err() == nil {
		e.flush(ctx)
	}
	e.progress.done()
	fmt.Fprintf(stderr, "%d jobs, %d sent, %d invalid, %d failed", e.total, e.sent, e.invalid, e.failed)
	if e.skipped > 0 {
		fmt.Fprintf(stderr, " (%d skipped)", e.skipped)
	}
	fmt.Fprintln(stderr)
	if e.sent > 0 {
		fmt.Fprintln(stderr, costSummary(e.sent, len(e.contexts), *writeRPS, *writeBudget))
	}
	if ctx.Err() != nil || e.failed > 0 {
		fmt.Fprintf(stderr, "worker enqueue: interrupted or not all sent; resume with -skip %d\n", e.handled)
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case ioFailed:
		return exitError{exitUsage}
	case e.invalid > 0 || e.failed > 0:
		return exitError{exitFailed}
	}
	return nil
}

// enqueuer validates jobs and sends the valid ones in batches.
type enqueuer struct {
	dec        *updater.Decoder
	producer   *queue.Producer
	stdout     io.Writer
	stderr     io.Writer
	skip       int
	checkpoint string
	progress   *progress

	pending []queue.Entry
	// contexts are the contexts the valid jobs update: the most writes
	// the batch can cost once versions of a context coalesce.
	contexts map[string]struct{}
	// seen counts every job read, skipped ones included; handled is how
	// many of them are settled (sent or reported invalid) for a resume.
	seen, handled                         int
	total, sent, invalid, failed, skipped int
	sendFailed                            bool
}

// sendChunk is how many entries go to one Producer.Send: a few batches,
// so a large file streams instead of being held in memory.
const sendChunk = 100

func isCSV(name, format string) bool {
	return format == "csv" || (format == "auto" && strings.EqualFold(filepath.Ext(name), ".csv"))
}

// readJobs calls fn for every job of a JSON Lines or CSV input with its
// line number, its body (nil for a line too long to keep), the body's full
// size, and the row's own error (CSV rows that cannot become a job).
func readJobs(r io.Reader, name, format string, fn func(line int, body []byte, size int, rowErr error)) error {
	if isCSV(name, format) {
		return csvRows(r, func(line int, body []byte, err error) { fn(line, body, len(body), err) })
	}
	return eachLine(r, updater.MaxBodyBytes, func(n int, line []byte, size int) { fn(n, line, size, nil) })
}

func (e *enqueuer) file(ctx context.Context, name, format string, stdin io.Reader) error {
	r, closeFn, err := openInput(name, stdin)
	if err != nil {
		return err
	}
	defer closeFn()
	var sendErr error
	handle := func(n int, body []byte, size int, rowErr error) {
		if sendErr != nil || ctx.Err() != nil {
			return
		}
		e.seen++
		if e.seen <= e.skip {
			e.skipped++
			e.handled = e.seen
			return
		}
		e.total++
		var (
			job        *updater.Job
			violations []schema.Violation
		)
		if rowErr != nil {
			violations = []schema.Violation{{Rule: rowErr.Error()}}
		} else {
			job, violations = checkLine(e.dec, body, size)
		}
		if len(violations) > 0 {
			e.invalid++
			for _, v := range violations {
				fmt.Fprintf(e.stdout, "%s:%d: %s\n", name, n, v)
			}
		} else {
			e.contexts[updater.ContextKey(&job.Input)] = struct{}{}
			e.pending = append(e.pending, queue.Entry{
				ID:      fmt.Sprintf("%s:%d", name, n),
				Body:    string(body),
				GroupID: updater.EngagementKey(&job.Input),
			})
		}
		if len(e.pending) >= sendChunk {
			sendErr = e.flush(ctx)
		}
		e.progress.update(e.seen, e.sent, e.invalid)
	}
	err = readJobs(r, name, format, handle)
	return errors.Join(err, sendErr)
}

// flush sends the pending jobs and, when all of them arrived, moves the
// resume point past every job read so far.
func (e *enqueuer) flush(ctx context.Context) error {
	if len(e.pending) > 0 {
		res, err := e.producer.Send(ctx, e.pending)
		sent := 0
		for _, id := range res.MessageIDs {
			if id != "" {
				sent++
			}
		}
		e.sent += sent
		e.failed += len(e.pending) - sent
		for _, f := range res.Failed {
			fmt.Fprintf(e.stderr, "worker enqueue: not sent: %v\n", f)
		}
		if err != nil && len(res.Failed) == 0 {
			fmt.Fprintf(e.stderr, "worker enqueue: %v\n", err)
		}
		e.pending = e.pending[:0]
		if sent < len(res.MessageIDs) || err != nil {
			// The resume point stays before this batch: sending it again
			// is safe (the updater settles a job sent twice), losing it
			// is not.
			e.sendFailed = true
			return err
		}
	}
	if !e.sendFailed {
		e.handled = e.seen
		if e.checkpoint != "" {
			if err := writeCheckpoint(e.checkpoint, e.handled); err != nil {
				fmt.Fprintf(e.stderr, "worker enqueue: checkpoint: %v\n", err)
			}
		}
	}
	return nil
}

func readCheckpoint(path string) (int, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || n < 0 {
		return 0, fmt.Errorf("checkpoint %s holds %q, want a count of jobs", path, strings.TrimSpace(string(b)))
	}
	return n, nil
}

// writeCheckpoint replaces the file atomically, so a crash leaves the old
// count or the new one, never half of one.
func writeCheckpoint(path string, n int) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(n)+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// totalJobs counts the jobs of the named files for the progress bar, or
// returns 0 when a file cannot be counted cheaply (standard input).
func totalJobs(names []string, format string) int {
	total := 0
	for _, name := range names {
		if name == "-" {
			return 0
		}
		f, err := os.Open(name)
		if err != nil {
			return 0
		}
		n := 0
		_ = readJobs(f, name, format, func(int, []byte, int, error) { n++ })
		f.Close()
		total += n
	}
	return total
}

// progress reports how far a long run is: an in-place bar on a terminal,
// a plain line every few seconds otherwise (a log file, CI).
type progress struct {
	w       io.Writer
	tty     bool
	total   int
	start   time.Time
	last    time.Time
	printed bool
	seen    int
	sent    int
	invalid int
}

func newProgress(w io.Writer, total int) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	now := time.Now()
	return &progress{w: w, tty: tty, total: total, start: now, last: now}
}

func (p *progress) update(seen, sent, invalid int) {
	p.seen, p.sent, p.invalid = seen, sent, invalid
	every := 5 * time.Second
	if p.tty {
		every = 200 * time.Millisecond
	}
	if now := time.Now(); now.Sub(p.last) >= every {
		p.last = now
		p.print()
	}
}

func (p *progress) print() {
	rate := float64(p.sent) / max(time.Since(p.start).Seconds(), 0.001)
	counts := fmt.Sprintf("%d sent, %d invalid, %.0f/s", p.sent, p.invalid, rate)
	switch {
	case p.tty && p.total > 0:
		const width = 30
		filled := min(width, p.seen*width/p.total)
		fmt.Fprintf(p.w, "\r[%s%s] %3d%% %d/%d jobs, %s ", strings.Repeat("#", filled), strings.Repeat(".", width-filled), p.seen*100/p.total, p.seen, p.total, counts)
	case p.tty:
		fmt.Fprintf(p.w, "\r%d jobs, %s ", p.seen, counts)
	case p.total > 0:
		fmt.Fprintf(p.w, "progress: %d/%d jobs (%d%%), %s\n", p.seen, p.total, p.seen*100/p.total, counts)
	default:
		fmt.Fprintf(p.w, "progress: %d jobs, %s\n", p.seen, counts)
	}
	p.printed = true
}

// done ends the bar's line so the summary starts on a fresh one.
func (p *progress) done() {
	if p.tty && p.printed {
		p.print()
		fmt.Fprintln(p.w)
	}
}

// costSummary says what the jobs sent cost at the account's write quotas if
// every one is a change: one write per context (a context's versions
// coalesce when they meet in the queue; at worst each is written), the
// time at writeRPS, and the share of a day's budget.
func costSummary(jobs, contexts int, writeRPS float64, budget int) string {
	hours := float64(contexts) / writeRPS / 3600
	share := float64(contexts) / float64(budget)
	s := fmt.Sprintf("cost if every job is a change: %d writes (%d jobs on %d contexts), %.1f h at %g writes/s, %.0f%% of the daily budget of %d writes",
		contexts, jobs, contexts, hours, writeRPS, share*100, budget)
	if jobs > contexts {
		s += fmt.Sprintf("; up to %d writes if versions of a context do not meet in the queue", jobs)
	}
	if share > 1 {
		s += fmt.Sprintf("; it does not fit in one day: the rest waits %.1f day(s) for the budget", share-1)
	}
	return s
}

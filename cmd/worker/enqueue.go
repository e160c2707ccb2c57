package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

const enqueueUsage = `Usage: worker enqueue -queue-url URL FILE...

Validates JSON Lines job files ("-" is standard input) like "worker validate"
and sends every valid job to the queue with SendMessageBatch, ten at a time.
Invalid lines are reported as FILE:LINE: field: rule and not sent. On a FIFO
queue the message group is the engagement (so one engagement's jobs stay in
order across replicas) and the deduplication id is the SHA-256 of the job.

Prints "N jobs, N sent, N invalid, N failed" on standard error.
Exit status: 0 all sent, 1 some line invalid or not sent, 2 usage or I/O error.

Flags:
`

func runEnqueue(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("enqueue", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", "", "URL of the SQS queue of jobs (required)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), enqueueUsage)
		printFlags(fs.Output(), fs)
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := applyEnv(fs, getenv); err != nil {
		fmt.Fprintln(stderr, "worker enqueue:", err)
		return exitError{exitUsage}
	}
	if *queueURL == "" || fs.NArg() == 0 {
		fmt.Fprintln(stderr, "worker enqueue: -queue-url (PCSYNC_QUEUE_URL) and at least one FILE are required")
		return exitError{exitUsage}
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS configuration: %w", err)
	}
	e := &enqueuer{
		dec:      updater.NewDecoder(schema.New()),
		producer: queue.NewProducer(sqs.NewFromConfig(awsCfg), *queueURL, queue.ProducerConfig{}),
		stdout:   stdout,
		stderr:   stderr,
	}
	ioFailed := false
	for _, name := range fs.Args() {
		if err := e.file(ctx, name, stdin); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			fmt.Fprintf(stderr, "worker enqueue: %s: %v\n", name, err)
			ioFailed = true
		}
	}
	if err := e.flush(ctx); err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	fmt.Fprintf(stderr, "%d jobs, %d sent, %d invalid, %d failed\n", e.total, e.sent, e.invalid, e.failed)
	switch {
	case ioFailed:
		return exitError{exitUsage}
	case e.invalid > 0 || e.failed > 0:
		return exitError{exitFailed}
	}
	return nil
}

// enqueuer validates job lines and sends the valid ones in batches.
type enqueuer struct {
	dec      *updater.Decoder
	producer *queue.Producer
	stdout   io.Writer
	stderr   io.Writer

	pending                      []queue.Entry
	total, sent, invalid, failed int
}

// sendChunk is how many entries go to one Producer.Send: a few batches,
// so a large file streams instead of being held in memory.
const sendChunk = 100

func (e *enqueuer) file(ctx context.Context, name string, stdin io.Reader) error {
	r, closeFn, err := openInput(name, stdin)
	if err != nil {
		return err
	}
	defer closeFn()
	var sendErr error
	err = eachLine(r, updater.MaxBodyBytes, func(n int, line []byte, size int) {
		if sendErr != nil {
			return
		}
		e.total++
		violations := checkLine(e.dec, line, size)
		if len(violations) > 0 {
			e.invalid++
			for _, v := range violations {
				fmt.Fprintf(e.stdout, "%s:%d: %s\n", name, n, v)
			}
			return
		}
		job, _ := e.dec.Decode(line)
		e.pending = append(e.pending, queue.Entry{
			ID:      fmt.Sprintf("%s:%d", name, n),
			Body:    string(line),
			GroupID: updater.EngagementKey(&job.Input),
		})
		if len(e.pending) >= sendChunk {
			sendErr = e.flush(ctx)
		}
	})
	return errors.Join(err, sendErr)
}

func (e *enqueuer) flush(ctx context.Context) error {
	if len(e.pending) == 0 {
		return nil
	}
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
	return err
}

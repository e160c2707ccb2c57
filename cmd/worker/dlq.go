package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/sdkhttp"
	"github.com/pcsync/pcsync/queue"
)

// openDLQ makes the SQS client of a DLQ tool and finds the dead-letter
// queue; a queue it cannot find is a usage error, reported on stderr.
func openDLQ(ctx context.Context, cmd, queueURL, dlqURL string, stderr io.Writer) (*sqs.Client, string, error) {
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("load AWS configuration: %w", err)
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.HTTPClient = sdkhttp.NewClient(o.HTTPClient) })
	url, err := dlqTarget(ctx, client, queueURL, dlqURL)
	if err != nil {
		fmt.Fprintf(stderr, "worker %s: %v\n", cmd, err)
		return nil, "", exitError{exitUsage}
	}
	return client, url, nil
}

// dlqTarget resolves the dead-letter queue from -dlq-url or the job queue's
// RedrivePolicy.
func dlqTarget(ctx context.Context, client queue.DLQClient, queueURL, dlqURL string) (string, error) {
	if dlqURL != "" {
		return dlqURL, nil
	}
	if queueURL == "" {
		return "", fmt.Errorf("name the dead-letter queue (-dlq-url, PCSYNC_DLQ_URL) or the job queue whose RedrivePolicy names it (-queue-url, PCSYNC_QUEUE_URL)")
	}
	return queue.DeadLetterQueueURL(ctx, client, queueURL)
}

const dlqUsage = `Usage: worker dlq [-dlq-url URL | -queue-url URL] [-format table|json] [-max N]

Lists the jobs in the dead-letter queue with the reason each could not be
applied, without consuming them: each message is hidden while the list is
made and made visible again before the command exits.

Flags:
`

func runDLQ(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", "", "job queue; its RedrivePolicy names the dead-letter queue")
	dlqURL := fs.String("dlq-url", "", "dead-letter queue (wins over -queue-url)")
	format := fs.String("format", "table", "table or json (one object per line)")
	max := fs.Int("max", 0, "list at most this many messages; 0: all")
	fs.Usage = func() { fmt.Fprint(fs.Output(), dlqUsage); printFlags(fs.Output(), fs, queueEnv) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(applyEnv(fs, getenv, queueEnv), oneQueueEach(fs)); err != nil {
		fmt.Fprintln(stderr, "worker dlq:", err)
		return exitError{exitUsage}
	}
	if *format != "table" && *format != "json" {
		fmt.Fprintf(stderr, "worker dlq: -format must be table or json, got %q\n", *format)
		return exitError{exitUsage}
	}
	client, url, err := openDLQ(ctx, "dlq", *queueURL, *dlqURL, stderr)
	if err != nil {
		return err
	}
	msgs, err := queue.Browse(ctx, client, url, *max)
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for _, m := range msgs {
			enc.Encode(dlqRecord(m))
		}
	} else {
		printDLQTable(stdout, msgs)
	}
	fmt.Fprintf(stderr, "%d messages in %s%s\n", len(msgs), url, byClass(msgs))
	return err
}

// dlqJSON is one dead letter as "worker dlq -format json" prints it.
type dlqJSON struct {
	MessageID       string    `json:"messageId"`
	Class           string    `json:"class"`
	Reason          string    `json:"reason"`
	Engagement      string    `json:"engagement,omitempty"`
	Context         string    `json:"context,omitempty"`
	ReceiveCount    int       `json:"receiveCount"`
	DeadLetteredAt  time.Time `json:"deadLetteredAt,omitzero"`
	SourceMessageID string    `json:"sourceMessageId,omitempty"`
	Body            string    `json:"body"`
}

func dlqRecord(m queue.DLQMessage) dlqJSON {
	eng, ctxID := jobRef(m.Body)
	return dlqJSON{MessageID: m.MessageID, Class: m.Class, Reason: m.Reason, Engagement: eng, Context: ctxID,
		ReceiveCount: m.ReceiveCount, DeadLetteredAt: m.DeadLetteredAt, SourceMessageID: m.SourceMessageID, Body: m.Body}
}

// jobRef reads the engagement and context a body names, if it is JSON
// enough to tell.
func jobRef(body string) (engagement, context string) {
	var j struct {
		EngagementIdentifier, ContextIdentifier string
	}
	_ = json.Unmarshal([]byte(body), &j)
	return j.EngagementIdentifier, j.ContextIdentifier
}

func printDLQTable(w io.Writer, msgs []queue.DLQMessage) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEAD-LETTERED\tCLASS\tENGAGEMENT\tCONTEXT\tRECEIVES\tREASON")
	for _, m := range msgs {
		eng, ctxID := jobRef(m.Body)
		at := "-"
		if !m.DeadLetteredAt.IsZero() {
			at = m.DeadLetteredAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", at, orDash(m.Class), orDash(eng), orDash(ctxID), m.ReceiveCount, oneLine(m.Reason, 160))
	}
	tw.Flush()
}

func byClass(msgs []queue.DLQMessage) string {
	if len(msgs) == 0 {
		return ""
	}
	n := map[string]int{}
	for _, m := range msgs {
		n[orDash(m.Class)]++
	}
	classes := make([]string, 0, len(n))
	for c := range n {
		classes = append(classes, c)
	}
	sort.Strings(classes)
	parts := make([]string, len(classes))
	for i, c := range classes {
		parts[i] = fmt.Sprintf("%s %d", c, n[c])
	}
	return ": " + strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}

const redriveUsage = `Usage: worker redrive -queue-url URL [-dlq-url URL] [-class C] [-reason REGEXP] [-rate N] [-max N] [-dry-run]

Moves jobs from the dead-letter queue back to the job queue, after the cause
was fixed (an engagement created, a permission granted, a bug fixed), so the
worker tries them again. Only the jobs whose error class is -class and whose
reason matches -reason are moved, if given. Each job is sent to the job queue
first and deleted from the dead-letter queue only once it arrived; the body
goes back unchanged, without the dead-letter attributes. Jobs not moved stay
in the dead-letter queue, visible again when the command ends.

Exit status: 0 all matching jobs moved, 1 some could not be, 2 usage error.

Flags:
`

func runRedrive(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	queueURL := fs.String("queue-url", "", "job queue to move the jobs back to (required)")
	dlqURL := fs.String("dlq-url", "", "dead-letter queue; default: the job queue's RedrivePolicy target")
	class := fs.String("class", "", "move only jobs of this error class (invalid_job, api_validation, not_found, api_error)")
	reason := fs.String("reason", "", "move only jobs whose reason matches this regular expression")
	rateFlag := fs.Float64("rate", 10, "jobs moved per second at most; 0: no limit")
	max := fs.Int("max", 0, "look at most at this many dead letters; 0: all")
	dryRun := fs.Bool("dry-run", false, "list what would be moved, move nothing")
	fs.Usage = func() { fmt.Fprint(fs.Output(), redriveUsage); printFlags(fs.Output(), fs, queueEnv) }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := errors.Join(applyEnv(fs, getenv, queueEnv), oneQueueEach(fs)); err != nil {
		fmt.Fprintln(stderr, "worker redrive:", err)
		return exitError{exitUsage}
	}
	if *queueURL == "" {
		fmt.Fprintln(stderr, "worker redrive: -queue-url (PCSYNC_QUEUE_URL) is required")
		return exitError{exitUsage}
	}
	var re *regexp.Regexp
	if *reason != "" {
		var err error
		if re, err = regexp.Compile(*reason); err != nil {
			fmt.Fprintf(stderr, "worker redrive: -reason: %v\n", err)
			return exitError{exitUsage}
		}
	}
	client, url, err := openDLQ(ctx, "redrive", *queueURL, *dlqURL, stderr)
	if err != nil {
		return err
	}
	verb := "moved"
	if *dryRun {
		verb = "would move"
	}
	res, err := queue.Redrive(ctx, client, url, queue.RedriveOptions{
		Source: *queueURL,
		Match: func(m queue.DLQMessage) bool {
			return (*class == "" || m.Class == *class) && (re == nil || re.MatchString(m.Reason))
		},
		Rate:   *rateFlag,
		Max:    *max,
		DryRun: *dryRun,
		GroupID: func(m queue.DLQMessage) string {
			eng, _ := jobRef(m.Body)
			return eng
		},
		Moved: func(m queue.DLQMessage) {
			eng, ctxID := jobRef(m.Body)
			fmt.Fprintf(stdout, "%s %s %s/%s: %s\n", verb, orDash(m.Class), orDash(eng), orDash(ctxID), oneLine(m.Reason, 120))
		},
	})
	moved := res.Moved
	if *dryRun {
		moved = res.Matched
	}
	fmt.Fprintf(stderr, "%d dead letters scanned, %d matched, %d %s, %d failed\n", res.Scanned, res.Matched, moved, verb, res.Failed)
	if err != nil {
		fmt.Fprintln(stderr, "worker redrive:", err)
		return exitError{exitFailed}
	}
	if res.Failed > 0 {
		return exitError{exitFailed}
	}
	return nil
}

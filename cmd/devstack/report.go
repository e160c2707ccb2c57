package main

// This file is the demo's final summary: jobs by outcome, API calls by
// answer, the figures, the dead-letter queue, the worker's warnings, where
// to look, and the result of the end-state check.

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

// report is the summary printed at the end.
type report struct {
	c     demoConfig
	b     *batch
	final stats
	w     *watch
	dlq   []queue.DLQMessage
	tally *logTally
}

// outcomeNotes say how the summary names and explains each job outcome;
// it lists them in the order of updater.Outcomes.
var outcomeNotes = map[string]struct{ name, note string }{
	updater.OutcomeApplied:        {"applied", "written with UpdateEngagementContext"},
	updater.OutcomeUnchanged:      {"unchanged", "found in place by a read before any write: nothing to write"},
	updater.OutcomeAlreadyApplied: {"already applied", "found in place by a read: a write whose response was lost, or a replay"},
	updater.OutcomeCoalesced:      {"coalesced", "an older version of a context, superseded by a newer one received with it"},
	updater.OutcomeStale:          {"stale", "older than the version already applied to its context: never written"},
	updater.OutcomeDeadLettered:   {"dead-lettered", "can never apply as they are: in the DLQ with their reason"},
	updater.OutcomeRetried:        {"retried", "sent back to the queue for later"},
	updater.OutcomeAbandoned:      {"abandoned", "the worker stopped mid-job; the message reappears"},
}

// HTTP statuses of the API's answers, for readers who think in them. The
// error codes are the generated error types' own. "OK", "network" and
// "timeout" are the code labels the worker's metrics give a success and a
// call that got no answer; the updater writes them as literals and exports
// no names for them, so they are literals here too.
var codeStatus = map[string]string{
	(&types.ConflictException{}).ErrorCode():             "409",
	(&types.ThrottlingException{}).ErrorCode():           "429",
	(&types.InternalServerException{}).ErrorCode():       "500",
	(&types.ResourceNotFoundException{}).ErrorCode():     "404",
	(&types.ValidationException{}).ErrorCode():           "400",
	(&types.AccessDeniedException{}).ErrorCode():         "403",
	(&types.ServiceQuotaExceededException{}).ErrorCode(): "402",
	"OK": "200", "network": "no answer", "timeout": "no answer",
}

func (r *report) print(w io.Writer) {
	s := r.final
	elapsed := s.at.Sub(r.w.start)
	fmt.Fprintf(w, "\nSummary after %.1fs\n\n", elapsed.Seconds())

	fmt.Fprintf(w, "Jobs by outcome (pcsync_jobs_total)\n")
	total := 0.0
	for _, o := range updater.Outcomes() {
		n := s.jobs[o]
		total += n
		// An outcome that does not end a job is listed only when it
		// happened.
		if n == 0 && !updater.Final(o) {
			continue
		}
		note, ok := outcomeNotes[o]
		if !ok {
			note.name = o
		}
		fmt.Fprintf(w, "  %-16s %6.0f  %s\n", note.name, n, note.note)
	}
	fmt.Fprintf(w, "  %-16s %6.0f  of %d sent\n\n", "all", total, len(r.b.jobs))

	fmt.Fprintf(w, "Partner Central API calls, by operation and answer (pcsync_api_requests_total)\n")
	calls := 0.0
	for _, op := range []string{updater.OpUpdate, updater.OpGet} {
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

	writes := s.apiCalls(updater.OpUpdate)
	reads := s.apiCalls(updater.OpGet)
	throttledWrites := s.api[updater.OpUpdate][(&types.ThrottlingException{}).ErrorCode()]
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
		"server errors", s.serverErrors())
	fmt.Fprintf(w, "  %-20s %d  (writes applied whose response never came back: settled by a read, never written twice)\n\n",
		"lost responses", s.sim.Calls[updater.OpUpdate]["lost"])

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
		g := byClass[e.Class]
		if g == nil {
			g = &group{class: e.Class, sample: e.Reason}
			byClass[e.Class] = g
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
	slices.SortStableFunc(entries, func(a, b queue.DLQMessage) int { return rank[a.Class] - rank[b.Class] })
	const most = 20
	fmt.Fprintf(w, "\n  The entries (planted fault, then pcsync's reason):\n")
	for i, e := range entries {
		if i == most {
			fmt.Fprintf(w, "  ... and %d more\n", len(entries)-most)
			break
		}
		eng, ctx := bodyContext(e.Body)
		where := eng
		if ctx != "" {
			where += "/" + ctx
		}
		what := "(not a job of the sample batch)"
		if j, ok := planted[e.Body]; ok {
			what = j.what
		}
		fmt.Fprintf(w, "  %-15s %-22s %s\n", e.Class, where, what)
		fmt.Fprintf(w, "  %-15s %-22s -> %s\n", "", "", clip(e.Reason, 140))
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

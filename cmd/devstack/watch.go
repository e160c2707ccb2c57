package main

// This file follows the worker while the demo runs: it reads the worker's
// metrics and the simulator's counters, prints the progress table and
// says when the batch is done.

import (
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/updater"
)

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
	for _, o := range updater.Outcomes() {
		if updater.Final(o) {
			n += s.jobs[o]
		}
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

// serverErrors counts the calls the service answered 500.
func (s stats) serverErrors() float64 {
	return s.apiCode((&types.InternalServerException{}).ErrorCode())
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
				s.jobs[label(m, "outcome")] += m.GetCounter().GetValue() // summed over the queues
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
	if n := s.sim.Admitted(updater.OpUpdate); n > 0 && (len(w.admitted) == 0 || n != w.admitted[len(w.admitted)-1].n) {
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
	{[2]string{"", "applied"}, 9}, {[2]string{"", "unchanged"}, 11}, {[2]string{"already", "applied"}, 9}, {[2]string{"", "coalesced"}, 11},
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
	rate := float64(s.sim.Admitted(updater.OpUpdate)-w.last.sim.Admitted(updater.OpUpdate)) / s.at.Sub(w.last.at).Seconds()
	cells := []string{
		fmt.Sprintf("%.0fs", math.Round(s.at.Sub(w.start).Seconds())),
		fmt.Sprintf("%d/%d", s.finished(), w.total),
	}
	for _, v := range []float64{s.jobs[updater.OutcomeApplied], s.jobs[updater.OutcomeUnchanged], s.jobs[updater.OutcomeAlreadyApplied], s.jobs[updater.OutcomeCoalesced],
		s.jobs[updater.OutcomeStale], s.jobs[updater.OutcomeDeadLettered], s.conflicts, s.throttles, s.serverErrors()} {
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

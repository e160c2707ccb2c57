package daemon

import (
	"log/slog"
	"sync"
	"time"

	"github.com/pcsync/pcsync/updater"
)

// tally counts what this run of the worker did, for the summary it logs
// when it stops (the end of a batch run): jobs by outcome and API calls by
// operation. It passes every event on to the metrics.
type tally struct {
	updater.Observer

	mu    sync.Mutex
	jobs  map[string]int
	calls map[string]int
}

func newTally(next updater.Observer) *tally {
	return &tally{Observer: next, jobs: map[string]int{}, calls: map[string]int{}}
}

func (t *tally) JobDone(queue, outcome string, took, age time.Duration) {
	t.mu.Lock()
	t.jobs[outcome]++
	t.mu.Unlock()
	t.Observer.JobDone(queue, outcome, took, age)
}

func (t *tally) APICall(op, code string, latency time.Duration) {
	t.mu.Lock()
	t.calls[op]++
	t.mu.Unlock()
	t.Observer.APICall(op, code, latency)
}

// summary is the log attributes of the run: a "jobs" group with every
// outcome, and the calls made.
func (t *tally) summary() []any {
	t.mu.Lock()
	defer t.mu.Unlock()
	var jobs []any
	for _, o := range updater.Outcomes() {
		jobs = append(jobs, slog.Int(o, t.jobs[o]))
	}
	return []any{slog.Group("jobs", jobs...),
		slog.Int("writes", t.calls[updater.OpUpdate]), slog.Int("reads", t.calls[updater.OpGet])}
}

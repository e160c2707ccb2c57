package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pcsync/pcsync/metrics"
	"github.com/pcsync/pcsync/updater"
)

// TestSummary: the line a stopping worker logs sums its own counters:
// jobs by outcome over every queue, and its calls.
func TestSummary(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	m.Queues("pcsync-realtime", "pcsync-bulk")
	m.JobDone("pcsync-realtime", updater.OutcomeApplied, time.Millisecond, time.Second)
	m.JobDone("pcsync-bulk", updater.OutcomeUnchanged, time.Millisecond, time.Second)
	m.JobDone("pcsync-realtime", updater.OutcomeUnchanged, time.Millisecond, time.Second)
	m.JobDone("pcsync-bulk", updater.OutcomeStale, time.Millisecond, time.Second)
	m.APICall(updater.OpGet, "OK", time.Millisecond)
	m.APICall(updater.OpUpdate, "ConflictException", time.Millisecond)
	m.APICall(updater.OpUpdate, "OK", time.Millisecond)
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("worker stopped", summary(reg)...)
	for _, want := range []string{"jobs.applied=1", "jobs.unchanged=2", "jobs.stale=1", "jobs.dead_lettered=0", "writes=2", "reads=1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary: got %q, want it to contain %q", b.String(), want)
		}
	}
}

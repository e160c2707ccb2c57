package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.ObserveBudget(10000, func() int { return 9990 })
	return m, reg
}

func TestMetricsLint(t *testing.T) {
	_, reg := newTestMetrics(t)
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

func TestMetricsMove(t *testing.T) {
	m, reg := newTestMetrics(t)
	m.Received(10)
	m.Held(7)
	m.JobDone("applied", 20*time.Millisecond, 3*time.Second)
	m.JobDone("applied", 10*time.Millisecond, 0)
	m.JobDone("dead_lettered", time.Millisecond, time.Second)
	m.DeadLettered("invalid_job")
	m.APICall("UpdateEngagementContext", "ConflictException", 30*time.Millisecond)
	m.APICall("UpdateEngagementContext", "ThrottlingException", 30*time.Millisecond)
	m.APICall("UpdateEngagementContext", "OK", 30*time.Millisecond)
	m.SQSCall("ReceiveMessage", "", 5*time.Millisecond)
	m.SetCeiling("write", 1)
	m.SetRate("write", 0.8)
	m.SetCircuit("open")

	tests := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.received, 10},
		{m.held, 7},
		{m.jobs.WithLabelValues("applied"), 2},
		{m.jobs.WithLabelValues("dead_lettered"), 1},
		{m.deadLettered.WithLabelValues("invalid_job"), 1},
		{m.conflicts, 1},
		{m.throttles.WithLabelValues("UpdateEngagementContext"), 1},
		{m.apiRequests.WithLabelValues("UpdateEngagementContext", "OK"), 1},
		{m.sqsRequests.WithLabelValues("ReceiveMessage", "OK"), 1},
		{m.rate.WithLabelValues("write"), 0.8},
		{m.rateCeiling.WithLabelValues("write"), 1},
		{m.circuit.WithLabelValues("open"), 1},
		{m.circuit.WithLabelValues("closed"), 0},
	}
	for i, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("case %d: got %v, want %v", i, got, tt.want)
		}
	}
	if got := testutil.CollectAndCount(m.messageAge); got != 1 {
		t.Errorf("message age series: got %d, want 1", got)
	}
	// Ages of 0 (unknown) are not observed.
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP pcsync_write_budget_remaining Writes left in the rolling 24 h budget of this process (-1: no budget).
# TYPE pcsync_write_budget_remaining gauge
pcsync_write_budget_remaining 9990
`), "pcsync_write_budget_remaining"); err != nil {
		t.Error(err)
	}
	if got := testutil.ToFloat64(m.lastSuccess); got < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Errorf("last success: got %v, want about now", got)
	}
}

// TestNoPersonalLabels guards the rule that no label could carry an
// engagement id, a name, an e-mail address or a phone number.
func TestNoPersonalLabels(t *testing.T) {
	_, reg := newTestMetrics(t)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"operation": true, "code": true, "class": true, "outcome": true, "state": true}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			for _, l := range mt.GetLabel() {
				if !allowed[l.GetName()] {
					t.Errorf("%s has label %q; allowed are %v", mf.GetName(), l.GetName(), allowed)
				}
			}
		}
	}
}

package metrics

import (
	"fmt"
	dto "github.com/prometheus/client_model/go"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
	"github.com/pcsync/pcsync/updater"
)

// fakeQueue and fakeLimiter stand for the consumer and a limiter, whose
// state the metrics read at scrape time.
type fakeQueue struct{ held, busy int }

func (q *fakeQueue) Held() int { return q.held }
func (q *fakeQueue) Busy() int { return q.busy }

type fakeLimiter struct{ rate, ceiling float64 }

// fakeDepths stands for the consumer's knowledge of its queues' backlog.
type fakeDepths struct{ depths []queue.Depth }

func (d *fakeDepths) Depths() []queue.Depth { return d.depths }

func (l *fakeLimiter) Rate() float64    { return l.rate }
func (l *fakeLimiter) Ceiling() float64 { return l.ceiling }

// newTestMetrics builds the metrics as the worker does, on a pedantic
// registry, which also checks that what a collector collects matches what
// it describes.
func newTestMetrics(t *testing.T) (*Metrics, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Queues("pcsync-realtime", "pcsync-bulk")
	m.ObserveBudget(10000, func() int { return 9990 })
	m.ObserveQueue(&fakeQueue{})
	m.ObserveLimiter("write", &fakeLimiter{rate: 1, ceiling: 1})
	m.ObserveLimiter("read", &fakeLimiter{rate: 10, ceiling: 10})
	m.ObserveCircuit(retry.NewCircuit(retry.CircuitConfig{}))
	m.ObserveDepths(&fakeDepths{depths: []queue.Depth{{Queue: "pcsync-bulk", DLQ: "pcsync-bulk-dlq",
		Sample: queue.DepthSample{At: time.Now(), Visible: 3}, DLQSample: queue.DepthSample{At: time.Now(), Visible: 1},
		OldestHeld: time.Now().Add(-time.Minute), LastReceive: time.Now()}}})
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
	m.JobDone("pcsync-realtime", "applied", 20*time.Millisecond, 3*time.Second)
	m.JobDone("pcsync-realtime", "applied", 10*time.Millisecond, 0)
	m.JobDone("pcsync-bulk", "applied", 10*time.Millisecond, 0)
	m.JobDone("pcsync-bulk", "dead_lettered", time.Millisecond, time.Second)
	m.DeadLettered("invalid_job")
	m.APICall("UpdateEngagementContext", "ConflictException", 30*time.Millisecond)
	m.APICall("UpdateEngagementContext", "ThrottlingException", 30*time.Millisecond)
	m.APICall("UpdateEngagementContext", "OK", 30*time.Millisecond)
	m.SQSCall("ReceiveMessage", "", 5*time.Millisecond)
	m.SentBack("pcsync-bulk", "throttled")
	m.SentBack("pcsync-bulk", "throttled")
	m.SentBack("pcsync-realtime", "write_budget")

	tests := []struct {
		c    prometheus.Collector
		want float64
	}{
		{m.received, 10},
		{m.jobs.WithLabelValues("pcsync-realtime", "applied"), 2},
		{m.jobs.WithLabelValues("pcsync-bulk", "applied"), 1},
		{m.jobs.WithLabelValues("pcsync-bulk", "dead_lettered"), 1},
		{m.deadLettered.WithLabelValues("invalid_job"), 1},
		{m.conflicts, 1},
		{m.throttles.WithLabelValues("UpdateEngagementContext"), 1},
		{m.apiRequests.WithLabelValues("UpdateEngagementContext", "OK"), 1},
		{m.sqsRequests.WithLabelValues("ReceiveMessage", "OK"), 1},
		{m.sentBack.WithLabelValues("pcsync-bulk", "throttled"), 2},
		{m.sentBack.WithLabelValues("pcsync-realtime", "write_budget"), 1},
		{m.sentBack.WithLabelValues("pcsync-realtime", "throttled"), 0},
	}
	for i, tt := range tests {
		if got := testutil.ToFloat64(tt.c); got != tt.want {
			t.Errorf("case %d: got %v, want %v", i, got, tt.want)
		}
	}
	// Ages of 0 (unknown) are not observed: one of the realtime queue's
	// two jobs has one.
	var age dto.Metric
	if err := m.messageAge.WithLabelValues("pcsync-realtime").(prometheus.Metric).Write(&age); err != nil {
		t.Fatal(err)
	}
	if got := age.GetHistogram().GetSampleCount(); got != 1 {
		t.Errorf("message ages observed for pcsync-realtime: got %d, want 1", got)
	}
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

// TestStateReadAtScrape: held messages, busy workers, the limiters' rates
// and the circuit's state are what their owners say at the moment of the
// scrape, with the names, help texts and labels the dashboards know.
func TestStateReadAtScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	q := &fakeQueue{}
	writes := &fakeLimiter{rate: 0.25, ceiling: 1}
	circuit := retry.NewCircuit(retry.CircuitConfig{})
	m.ObserveQueue(q)
	m.ObserveLimiter("write", writes)
	m.ObserveLimiter("read", &fakeLimiter{rate: 2.5, ceiling: 10})
	m.ObserveCircuit(circuit)
	names := []string{"pcsync_messages_held", "pcsync_workers_busy", "pcsync_rate_limit_per_second",
		"pcsync_rate_ceiling_per_second", "pcsync_circuit_state"}
	expo := func(held, busy int, writeRate float64, closed, open int) string {
		return fmt.Sprintf(`
# HELP pcsync_messages_held Messages held: received and not yet deleted, released or given up.
# TYPE pcsync_messages_held gauge
pcsync_messages_held %d
# HELP pcsync_workers_busy Workers inside a job or applying its outcome.
# TYPE pcsync_workers_busy gauge
pcsync_workers_busy %d
# HELP pcsync_rate_limit_per_second Current rate of the shared limiter, by class (write, read).
# TYPE pcsync_rate_limit_per_second gauge
pcsync_rate_limit_per_second{class="read"} 2.5
pcsync_rate_limit_per_second{class="write"} %g
# HELP pcsync_rate_ceiling_per_second Configured ceiling of the shared limiter, by class (write, read).
# TYPE pcsync_rate_ceiling_per_second gauge
pcsync_rate_ceiling_per_second{class="read"} 10
pcsync_rate_ceiling_per_second{class="write"} 1
# HELP pcsync_circuit_state 1 for the circuit's current state (closed, open, half_open), 0 for the others.
# TYPE pcsync_circuit_state gauge
pcsync_circuit_state{state="closed"} %d
pcsync_circuit_state{state="half_open"} 0
pcsync_circuit_state{state="open"} %d
`, held, busy, writeRate, closed, open)
	}

	// Why the circuit is open: the kind of its reason, while it is.
	reasonIs := func(want string) {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		var ones []string
		series := 0
		for _, mf := range mfs {
			if mf.GetName() != "pcsync_circuit_open_reason" {
				continue
			}
			for _, mt := range mf.GetMetric() {
				series++
				if mt.GetGauge().GetValue() == 1 {
					ones = append(ones, mt.GetLabel()[0].GetValue())
				}
			}
		}
		if series != len(retry.CauseKinds()) {
			t.Errorf("pcsync_circuit_open_reason: got %d series, want one per kind (%d)", series, len(retry.CauseKinds()))
		}
		if got := strings.Join(ones, ","); got != want {
			t.Errorf("pcsync_circuit_open_reason at 1: got %q, want %q", got, want)
		}
	}
	reasonIs("")

	// The circuit's collector is this package's own code: lint it alone too.
	problems, err := testutil.CollectAndLint(newCircuitCollector(circuit))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}

	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo(0, 0, 0.25, 1, 0)), names...); err != nil {
		t.Errorf("at start: %v", err)
	}
	q.held, q.busy = 7, 3
	writes.rate = 0.8
	circuit.Record(false, retry.Systemic, &types.AccessDeniedException{})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expo(7, 3, 0.8, 0, 1)), names...); err != nil {
		t.Errorf("after changes: %v", err)
	}
	reasonIs("access_denied")
	circuit.Record(true, retry.None, nil)
	reasonIs("")
}

// TestDepthsReadAtScrape: what the consumer knows of each queue's backlog
// is exported as it is at the scrape; a count whose latest sample failed,
// or that was never made, is left out, while its timestamp says when SQS
// last answered.
func TestDepthsReadAtScrape(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	sampled := time.Unix(1_800_000_000, 0)
	d := &fakeDepths{depths: []queue.Depth{
		{Queue: "pcsync-realtime", DLQ: "pcsync-realtime-dlq",
			Sample:      queue.DepthSample{At: sampled, Visible: 994, InFlight: 20, Delayed: 7},
			DLQSample:   queue.DepthSample{At: sampled, Visible: 100, InFlight: 11},
			OldestHeld:  time.Now().Add(-4 * time.Hour),
			LastReceive: sampled.Add(-time.Minute)},
		// The bulk queue's count fails; its dead-letter queue never answered.
		{Queue: "pcsync-bulk", DLQ: "pcsync-bulk-dlq",
			Sample:      queue.DepthSample{At: sampled, Failing: true, Visible: 5},
			DLQSample:   queue.DepthSample{Failing: true},
			LastReceive: sampled},
		// No dead-letter queue.
		{Queue: "pcsync-other", Sample: queue.DepthSample{At: sampled}, LastReceive: sampled},
	}}
	m.ObserveDepths(d)
	want := `
# HELP pcsync_dead_letter_queue_messages Messages in the queue's dead-letter queue (dlq) as SQS last counted them, visible or not. Absent while the latest count failed.
# TYPE pcsync_dead_letter_queue_messages gauge
pcsync_dead_letter_queue_messages{dlq="pcsync-realtime-dlq",queue="pcsync-realtime"} 111
# HELP pcsync_dead_letter_queue_sample_timestamp_seconds Unix time SQS last answered the count of the dead-letter queue's messages; 0 if it never has.
# TYPE pcsync_dead_letter_queue_sample_timestamp_seconds gauge
pcsync_dead_letter_queue_sample_timestamp_seconds{dlq="pcsync-bulk-dlq",queue="pcsync-bulk"} 0
pcsync_dead_letter_queue_sample_timestamp_seconds{dlq="pcsync-realtime-dlq",queue="pcsync-realtime"} 1.8e+09
# HELP pcsync_queue_last_receive_timestamp_seconds Unix time a receive from the queue last brought messages, or the worker started consuming it.
# TYPE pcsync_queue_last_receive_timestamp_seconds gauge
pcsync_queue_last_receive_timestamp_seconds{queue="pcsync-bulk"} 1.8e+09
pcsync_queue_last_receive_timestamp_seconds{queue="pcsync-other"} 1.8e+09
pcsync_queue_last_receive_timestamp_seconds{queue="pcsync-realtime"} 1.79999994e+09
# HELP pcsync_queue_messages Messages on the queue as SQS last counted them, by state: visible (waiting), in_flight (received, not deleted: held by a worker or waiting to reappear), delayed (sent back for later, or sent with a delay). Absent while the latest count failed.
# TYPE pcsync_queue_messages gauge
pcsync_queue_messages{queue="pcsync-other",state="delayed"} 0
pcsync_queue_messages{queue="pcsync-other",state="in_flight"} 0
pcsync_queue_messages{queue="pcsync-other",state="visible"} 0
pcsync_queue_messages{queue="pcsync-realtime",state="delayed"} 7
pcsync_queue_messages{queue="pcsync-realtime",state="in_flight"} 20
pcsync_queue_messages{queue="pcsync-realtime",state="visible"} 994
# HELP pcsync_queue_sample_timestamp_seconds Unix time SQS last answered the count of the queue's messages; 0 if it never has.
# TYPE pcsync_queue_sample_timestamp_seconds gauge
pcsync_queue_sample_timestamp_seconds{queue="pcsync-bulk"} 1.8e+09
pcsync_queue_sample_timestamp_seconds{queue="pcsync-other"} 1.8e+09
pcsync_queue_sample_timestamp_seconds{queue="pcsync-realtime"} 1.8e+09
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "pcsync_queue_messages", "pcsync_queue_sample_timestamp_seconds",
		"pcsync_dead_letter_queue_messages", "pcsync_dead_letter_queue_sample_timestamp_seconds", "pcsync_queue_last_receive_timestamp_seconds"); err != nil {
		t.Error(err)
	}

	// The oldest held message's age is read at the scrape: 4 hours for
	// realtime, 0 for the queues whose worker holds nothing.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ages := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "pcsync_queue_oldest_held_message_age_seconds" {
			for _, mt := range mf.GetMetric() {
				ages[mt.GetLabel()[0].GetValue()] = mt.GetGauge().GetValue()
			}
		}
	}
	if got := ages["pcsync-realtime"]; got < 4*3600 || got > 4*3600+60 {
		t.Errorf("realtime's oldest held message: got %v s, want 4 hours", got)
	}
	if len(ages) != 3 || ages["pcsync-bulk"] != 0 || ages["pcsync-other"] != 0 {
		t.Errorf("oldest held by queue: got %v, want every queue, 0 where nothing is held", ages)
	}

	problems, err := testutil.CollectAndLint(newDepthCollector(d))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}

// TestSeriesFromTheStart: the series a dashboard panel or an alert reads
// exist at zero before the first event, so that a panel shows 0 and not
// "No data" while nothing happened: every outcome and send-back reason of
// each queue, every dead-letter class, the throttles and the successful
// calls of each operation.
func TestSeriesFromTheStart(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.Queues("pcsync-realtime", "pcsync-bulk")
	for _, tt := range []struct {
		name string
		want int
	}{
		{"pcsync_jobs_total", 2 * len(updater.Outcomes())},
		{"pcsync_jobs_sent_back_total", 2 * len(updater.SendBackReasons())},
		{"pcsync_messages_dead_lettered_total", len(updater.DeadLetterClasses())},
		{"pcsync_throttles_total", 2},
		{"pcsync_api_requests_total", 2},
	} {
		if got, err := testutil.GatherAndCount(reg, tt.name); err != nil || got != tt.want {
			t.Errorf("%s: got %d series (%v), want %d", tt.name, got, err, tt.want)
		}
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
	// queue and dlq are the names of SQS queues; reason is a bounded word
	// (a send-back's reason, the kind of the circuit's).
	allowed := map[string]bool{"operation": true, "code": true, "class": true, "outcome": true, "state": true,
		"queue": true, "dlq": true, "reason": true}
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

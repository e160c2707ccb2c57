// Package metrics defines pcsync's Prometheus metrics. It records the
// events of the queue consumer and the updater into them, and reads the
// current state of the consumer (messages held, workers busy, what it
// knows of its queues' backlog), of the rate limiters and of the circuit
// when they are scraped. Every metric is
// registered on the registry the caller passes in (main adds the Go and
// process collectors); nothing is global.
//
// Labels are low-cardinality by design: operations, outcome and error
// codes, error classes, limiter classes. No engagement id, name, e-mail
// address or phone number ever becomes a label.
//
// It does not own the HTTP endpoint (cmd/worker serves /metrics).
package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
	"github.com/pcsync/pcsync/updater"
)

const namespace = "pcsync"

// Metrics records pcsync's events. It implements queue.Observer and
// updater.Observer; its methods are safe for concurrent use and never
// block. The Observe methods export state read at scrape time.
type Metrics struct {
	received         prometheus.Counter
	receiveEmpty     prometheus.Counter
	acked            prometheus.Counter
	deadLettered     *prometheus.CounterVec
	retried          prometheus.Counter
	released         prometheus.Counter
	keptWithoutDLQ   prometheus.Counter
	extended         prometheus.Counter
	sqsRequests      *prometheus.CounterVec
	sqsDuration      *prometheus.HistogramVec
	sqsEntryFailures *prometheus.CounterVec

	jobs           *prometheus.CounterVec
	sentBack       *prometheus.CounterVec
	jobDuration    *prometheus.HistogramVec
	messageAge     *prometheus.HistogramVec
	apiRequests    *prometheus.CounterVec
	apiDuration    *prometheus.HistogramVec
	conflicts      prometheus.Counter
	conflictRounds prometheus.Histogram
	throttles      *prometheus.CounterVec
	limiterWait    *prometheus.HistogramVec
	budgetWait     prometheus.Histogram
	lastSuccess    prometheus.Gauge
	exitWhenIdle   prometheus.Gauge

	reg prometheus.Registerer
}

// New creates pcsync's metrics and registers them on reg.
func New(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help})
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
	}
	gauge := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help})
	}
	// Latencies of calls: 5 ms to 30 s.
	callBuckets := []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	// Waits and job times: 1 ms to 15 min (a held job may wait for the
	// limiter, a backoff or the circuit).
	waitBuckets := []float64{.001, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300, 900}
	// Message age: 10 ms (an event-driven trickle) to a day (a backlog).
	ageBuckets := []float64{.01, .05, .1, .25, .5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600}

	m := &Metrics{
		received:         counter("messages_received_total", "SQS messages received."),
		receiveEmpty:     counter("receives_empty_total", "ReceiveMessage calls that returned no message."),
		acked:            counter("messages_acked_total", "Messages deleted from the queue after their job ended (applied, coalesced, stale or dead-lettered)."),
		deadLettered:     counterVec("messages_dead_lettered_total", "Messages sent to the dead-letter queue, by error class.", "class"),
		retried:          counter("messages_retried_total", "Messages sent back to the queue to be tried again later."),
		released:         counter("messages_released_total", "Messages handed back unstarted (shutdown)."),
		keptWithoutDLQ:   counter("messages_kept_without_dlq_total", "Dead-letter outcomes kept on the source queue because no dead-letter queue took them."),
		extended:         counter("visibility_extensions_total", "Visibility timeout extensions of held messages."),
		sqsRequests:      counterVec("sqs_requests_total", "SQS requests, by operation and error code (OK on success).", "operation", "code"),
		sqsDuration:      prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "sqs_request_duration_seconds", Help: "Latency of SQS requests.", Buckets: callBuckets}, []string{"operation"}),
		sqsEntryFailures: counterVec("sqs_batch_entry_failures_total", "Failed entries of successful SQS batch calls, by operation and code.", "operation", "code"),

		jobs:           counterVec("jobs_total", "Jobs ended, by queue and outcome: "+strings.Join(updater.Outcomes(), ", ")+".", "queue", "outcome"),
		sentBack:       counterVec("jobs_sent_back_total", "Jobs sent back to the queue to be tried later (outcome retried), by queue and reason: "+strings.Join(updater.SendBackReasons(), ", ")+".", "queue", "reason"),
		jobDuration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "job_duration_seconds", Help: "Time from a job's start in a worker to its outcome, by queue.", Buckets: waitBuckets}, []string{"queue"}),
		messageAge:     prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "message_age_seconds", Help: "Age of a message when its job ended: now minus its SQS SentTimestamp, by queue.", Buckets: ageBuckets}, []string{"queue"}),
		apiRequests:    counterVec("api_requests_total", "Partner Central requests, by operation and outcome code (OK, the API's error code, or network, timeout, canceled).", "operation", "code"),
		apiDuration:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "api_request_duration_seconds", Help: "Latency of Partner Central requests.", Buckets: callBuckets}, []string{"operation"}),
		conflicts:      counter("conflicts_total", "ConflictException answers: stale EngagementLastModifiedAt healed by a re-read."),
		conflictRounds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "conflict_retries_per_job", Help: "Re-read-and-retry rounds of a job that met ConflictException.", Buckets: []float64{1, 2, 3, 4, 5, 6}}),
		throttles:      counterVec("throttles_total", "ThrottlingException answers, by operation.", "operation"),
		limiterWait:    prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "limiter_wait_seconds", Help: "Time a call waited for its turn under the rate limiter, by class.", Buckets: waitBuckets}, []string{"class"}),
		budgetWait:     prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "write_budget_wait_seconds", Help: "Time a write waited for room in the rolling daily write budget.", Buckets: waitBuckets}),
		lastSuccess:    gauge("last_success_timestamp_seconds", "Unix time of the last job applied, or found unchanged or already applied."),
		exitWhenIdle:   gauge("exit_when_idle_seconds", "Configured -exit-when-idle: 0 for a long-running worker, else a batch run that exits once its queues stay idle this long."),
		reg:            reg,
	}
	reg.MustRegister(m.received, m.receiveEmpty, m.acked, m.deadLettered, m.retried, m.released,
		m.keptWithoutDLQ, m.extended, m.sqsRequests, m.sqsDuration, m.sqsEntryFailures,
		m.jobs, m.sentBack, m.jobDuration, m.messageAge, m.apiRequests, m.apiDuration, m.conflicts, m.conflictRounds,
		m.throttles, m.limiterWait, m.budgetWait, m.lastSuccess, m.exitWhenIdle)
	// Series that a dashboard or an alert reads should exist from the
	// start, at zero, rather than appear with the first event (the job
	// series once the queues are known: Queues).
	for _, op := range []string{updater.OpUpdate, updater.OpGet} {
		m.throttles.WithLabelValues(op)
		m.apiRequests.WithLabelValues(op, "OK")
	}
	for _, class := range updater.DeadLetterClasses() {
		m.deadLettered.WithLabelValues(class)
	}
	return m
}

// Queue consumer events (queue.Observer).

func (m *Metrics) Received(n int)            { m.received.Add(float64(n)) }
func (m *Metrics) ReceiveEmpty()             { m.receiveEmpty.Inc() }
func (m *Metrics) Acked(n int)               { m.acked.Add(float64(n)) }
func (m *Metrics) DeadLettered(class string) { m.deadLettered.WithLabelValues(class).Inc() }
func (m *Metrics) Retried(n int)             { m.retried.Add(float64(n)) }
func (m *Metrics) Released(n int)            { m.released.Add(float64(n)) }
func (m *Metrics) KeptWithoutDLQ(n int)      { m.keptWithoutDLQ.Add(float64(n)) }
func (m *Metrics) VisibilityExtended(n int)  { m.extended.Add(float64(n)) }
func (m *Metrics) BatchEntryFailed(op, code string) {
	m.sqsEntryFailures.WithLabelValues(op, code).Inc()
}

// SQSCall records one SQS request; code "" is success.
func (m *Metrics) SQSCall(op, code string, latency time.Duration) {
	if code == "" {
		code = "OK"
	}
	m.sqsRequests.WithLabelValues(op, code).Inc()
	m.sqsDuration.WithLabelValues(op).Observe(latency.Seconds())
}

// Updater events (updater.Observer).

// Queues creates the job series of every outcome of each queue, at zero,
// so that a dashboard shows a queue that has not ended a job yet.
func (m *Metrics) Queues(names ...string) {
	for _, q := range names {
		for _, o := range updater.Outcomes() {
			m.jobs.WithLabelValues(q, o)
		}
		for _, r := range updater.SendBackReasons() {
			m.sentBack.WithLabelValues(q, r)
		}
		m.jobDuration.WithLabelValues(q)
		m.messageAge.WithLabelValues(q)
	}
}

// JobDone records a job's outcome, the time the worker spent on it, and
// the message's age (zero when unknown), by the queue it came from.
func (m *Metrics) JobDone(queue, outcome string, took, age time.Duration) {
	m.jobs.WithLabelValues(queue, outcome).Inc()
	m.jobDuration.WithLabelValues(queue).Observe(took.Seconds())
	if age > 0 {
		m.messageAge.WithLabelValues(queue).Observe(age.Seconds())
	}
	switch outcome {
	case updater.OutcomeApplied, updater.OutcomeUnchanged, updater.OutcomeAlreadyApplied:
		m.lastSuccess.SetToCurrentTime()
	}
}

// SentBack records why a job of queue went back to the queue.
func (m *Metrics) SentBack(queue, reason string) { m.sentBack.WithLabelValues(queue, reason).Inc() }

// ExitWhenIdle records the worker's -exit-when-idle: a batch run's end
// is not a worker gone missing (the alert rules read it).
func (m *Metrics) ExitWhenIdle(d time.Duration) { m.exitWhenIdle.Set(d.Seconds()) }

// APICall records one Partner Central request.
func (m *Metrics) APICall(op, code string, latency time.Duration) {
	m.apiRequests.WithLabelValues(op, code).Inc()
	m.apiDuration.WithLabelValues(op).Observe(latency.Seconds())
	// The codes are the generated error types' own.
	switch code {
	case (&types.ConflictException{}).ErrorCode():
		m.conflicts.Inc()
	case (&types.ThrottlingException{}).ErrorCode():
		m.throttles.WithLabelValues(op).Inc()
	}
}

// Conflicts records the rounds a job needed after ConflictException.
func (m *Metrics) Conflicts(rounds int) { m.conflictRounds.Observe(float64(rounds)) }

// LimiterWait records a call's wait under the rate limiter of its class.
func (m *Metrics) LimiterWait(class string, d time.Duration) {
	m.limiterWait.WithLabelValues(class).Observe(d.Seconds())
}

// BudgetWait records a write's wait for the daily budget.
func (m *Metrics) BudgetWait(d time.Duration) { m.budgetWait.Observe(d.Seconds()) }

// State read at scrape time: the consumer, the limiters, the circuit and
// the budget. Each Observe method registers its metrics on the registry
// given to New and is called once (once per class for ObserveLimiter), when
// what it reads exists: the consumer is built after the metrics it reports
// its events to.

// Queue is the queue consumer's state as the metrics read it
// (*queue.Consumer). Both methods are called at every scrape, from the
// scraping goroutine: they must be safe for concurrent use and quick.
type Queue interface {
	Held() int
	Busy() int
}

// ObserveQueue exports the messages the consumer holds and its busy
// workers.
func (m *Metrics) ObserveQueue(q Queue) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "messages_held", Help: "Messages held: received and not yet deleted, released or given up."},
			func() float64 { return float64(q.Held()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "workers_busy", Help: "Workers inside a job or applying its outcome."},
			func() float64 { return float64(q.Busy()) }),
	)
}

// Limiter is a rate limiter's state as the metrics read it
// (*retry.Limiter); same contract as Queue.
type Limiter interface {
	Rate() float64
	Ceiling() float64
}

// ObserveLimiter exports the current rate and the configured ceiling of the
// limiter of a class (write, read).
func (m *Metrics) ObserveLimiter(class string, l Limiter) {
	labels := prometheus.Labels{"class": class}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "rate_limit_per_second", Help: "Current rate of the shared limiter, by class (write, read).", ConstLabels: labels},
			l.Rate),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "rate_ceiling_per_second", Help: "Configured ceiling of the shared limiter, by class (write, read).", ConstLabels: labels},
			l.Ceiling),
	)
}

// Circuit is the circuit breaker's state as the metrics read it
// (*retry.Circuit); same contract as Queue.
type Circuit interface {
	Status() retry.CircuitStatus
}

// ObserveCircuit exports the circuit's state, one series per state, 1 for
// the current one; and why it is open, one series per kind of reason
// (retry.CauseKinds), 1 for the kind of the error that opened it while it
// is open or probing, all 0 while it is closed.
func (m *Metrics) ObserveCircuit(c Circuit) { m.reg.MustRegister(newCircuitCollector(c)) }

// circuitCollector reads the status once per scrape, so that exactly one
// state series is 1, and the reason series agree with it, even while the
// circuit changes.
type circuitCollector struct {
	c      Circuit
	state  *prometheus.Desc
	reason *prometheus.Desc
}

func newCircuitCollector(c Circuit) circuitCollector {
	return circuitCollector{c: c,
		state: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "circuit_state"),
			"1 for the circuit's current state (closed, open, half_open), 0 for the others.", []string{"state"}, nil),
		reason: prometheus.NewDesc(prometheus.BuildFQName(namespace, "", "circuit_open_reason"),
			"1 for the kind of error that opened the circuit ("+strings.Join(retry.CauseKinds(), ", ")+") while it is open or half open; all 0 while it is closed. The log and /readyz give the error itself.",
			[]string{"reason"}, nil),
	}
}

func (cc circuitCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- cc.state
	ch <- cc.reason
}

func (cc circuitCollector) Collect(ch chan<- prometheus.Metric) {
	now := cc.c.Status()
	for _, s := range []retry.CircuitState{retry.Closed, retry.Open, retry.HalfOpen} {
		ch <- prometheus.MustNewConstMetric(cc.state, prometheus.GaugeValue, oneIf(s == now.State), s.String())
	}
	for _, k := range retry.CauseKinds() {
		ch <- prometheus.MustNewConstMetric(cc.reason, prometheus.GaugeValue, oneIf(now.State != retry.Closed && k == now.Kind), k)
	}
}

func oneIf(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Depths is what the consumer knows of its queues' backlog
// (*queue.Consumer); same contract as Queue.
type Depths interface {
	Depths() []queue.Depth
}

// ObserveDepths exports, per queue, SQS's counts of its messages and of
// its dead-letter queue's, when they were last counted, the age of the
// oldest message the worker holds and when a receive last brought
// messages. A count whose latest sample failed is not exported: the
// sample's timestamp shows how old the last answer is, and a panel shows
// no data rather than a stale count as current.
func (m *Metrics) ObserveDepths(d Depths) { m.reg.MustRegister(newDepthCollector(d)) }

type depthCollector struct {
	d                              Depths
	messages, sampled              *prometheus.Desc
	dlqMessages, dlqSampled        *prometheus.Desc
	oldestHeldAge, lastReceiveTime *prometheus.Desc
}

func newDepthCollector(d Depths) depthCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return depthCollector{d: d,
		messages: desc("queue_messages", "Messages on the queue as SQS last counted them, by state: visible (waiting), in_flight (received, not deleted: held by a worker or waiting to reappear), delayed (sent back for later, or sent with a delay). Absent while the latest count failed.",
			"queue", "state"),
		sampled: desc("queue_sample_timestamp_seconds", "Unix time SQS last answered the count of the queue's messages; 0 if it never has.",
			"queue"),
		dlqMessages: desc("dead_letter_queue_messages", "Messages in the queue's dead-letter queue (dlq) as SQS last counted them, visible or not. Absent while the latest count failed.",
			"queue", "dlq"),
		dlqSampled: desc("dead_letter_queue_sample_timestamp_seconds", "Unix time SQS last answered the count of the dead-letter queue's messages; 0 if it never has.",
			"queue", "dlq"),
		oldestHeldAge: desc("queue_oldest_held_message_age_seconds", "Age (now minus SentTimestamp) of the oldest message of the queue this worker holds, received and not yet finished; 0 when it holds none. It grows while held jobs cannot end.",
			"queue"),
		lastReceiveTime: desc("queue_last_receive_timestamp_seconds", "Unix time a receive from the queue last brought messages, or the worker started consuming it.",
			"queue"),
	}
}

func (dc depthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{dc.messages, dc.sampled, dc.dlqMessages, dc.dlqSampled, dc.oldestHeldAge, dc.lastReceiveTime} {
		ch <- d
	}
}

func (dc depthCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	unix := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.UnixNano()) / 1e9
	}
	for _, d := range dc.d.Depths() {
		if s := d.Sample; !s.At.IsZero() && !s.Failing {
			gauge(dc.messages, float64(s.Visible), d.Queue, "visible")
			gauge(dc.messages, float64(s.InFlight), d.Queue, "in_flight")
			gauge(dc.messages, float64(s.Delayed), d.Queue, "delayed")
		}
		gauge(dc.sampled, unix(d.Sample.At), d.Queue)
		if d.DLQ != "" {
			if s := d.DLQSample; !s.At.IsZero() && !s.Failing {
				gauge(dc.dlqMessages, float64(s.Visible+s.InFlight+s.Delayed), d.Queue, d.DLQ)
			}
			gauge(dc.dlqSampled, unix(d.DLQSample.At), d.Queue, d.DLQ)
		}
		age := 0.0
		if !d.OldestHeld.IsZero() {
			age = max(now.Sub(d.OldestHeld).Seconds(), 0)
		}
		gauge(dc.oldestHeldAge, age, d.Queue)
		if !d.LastReceive.IsZero() {
			gauge(dc.lastReceiveTime, unix(d.LastReceive), d.Queue)
		}
	}
}

// ObserveBudget exports the rolling daily write budget: its limit and, read
// at every scrape, what is left of it.
func (m *Metrics) ObserveBudget(limit int, remaining func() int) {
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "write_budget_limit", Help: "Configured writes per rolling 24 h for this process (0: no budget)."},
			func() float64 { return float64(limit) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "write_budget_remaining", Help: "Writes left in the rolling 24 h budget of this process (-1: no budget)."},
			func() float64 { return float64(remaining()) }),
	)
}

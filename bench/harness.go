package main

// This file is the in-process harness of the rate, cost and latency
// scenarios: the local stack (kumo and the Partner Central simulator), the
// jobs, the real worker (internal/daemon) and what is read from them while
// it runs.

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

// samplePeriod is how often a run reads the simulator's counters and the
// worker's metrics; the charts and the steady-state windows are built from
// these samples.
const samplePeriod = 100 * time.Millisecond

// queueNames makes queue names unique within the process: kumo's queues
// are shared by every kumo server of a process.
type queueNames struct{ n atomic.Int64 }

func (q *queueNames) next(scenario string) string {
	return fmt.Sprintf("bench-%s-%d-%d", scenario, time.Now().UnixNano()%1_000_000, q.n.Add(1))
}

// job is one message body to send, with the engagement it updates.
type job struct {
	eng, ctx string
	body     string
}

// jobBody is a valid CustomerProject update of context ctxID of engagement
// eng. modifiedAt is EngagementLastModifiedAt ("" for none), source the
// SourceUpdatedAt (zero for none), version makes payloads differ.
func jobBody(eng, ctxID, modifiedAt string, source time.Time, version int) string {
	body := map[string]any{
		"Catalog":              "Sandbox",
		"EngagementIdentifier": eng,
		"ContextIdentifier":    ctxID,
		"Type":                 "CustomerProject",
		"Payload": map[string]any{"CustomerProject": map[string]any{
			"Customer": map[string]any{"Industry": "Software and Internet", "CompanyName": "Acme Corp",
				"WebsiteUrl": "https://acme.example", "CountryCode": "US"},
			"Project": map[string]any{"Title": fmt.Sprintf("Data center exit v%d", version),
				"BusinessProblem":      "Moves 40 VMs and two databases to AWS before the lease ends",
				"TargetCompletionDate": "2027-03-31"},
		}},
	}
	if modifiedAt != "" {
		body["EngagementLastModifiedAt"] = modifiedAt
	}
	if !source.IsZero() {
		body["SourceUpdatedAt"] = source.UTC().Format(time.RFC3339)
	}
	raw, _ := json.Marshal(body)
	return string(raw)
}

// oneJobPerEngagement makes n jobs, one per pre-created engagement, each
// carrying the engagement's current ModifiedAt, as an upstream that stored
// it at the last sync would.
func oneJobPerEngagement(sim *pcsim.Server, n int, source time.Time) []job {
	jobs := make([]job, n)
	for i := range n {
		eng := devstack.EngagementID(i + 1)
		st, _ := sim.Engagement(eng)
		jobs[i] = job{eng: eng, ctx: "1", body: jobBody(eng, "1", st.ModifiedAt, source, 1)}
	}
	return jobs
}

// enqueue sends the jobs, in order.
func enqueue(ctx context.Context, s *devstack.Stack, jobs []job) error {
	entries := make([]queue.Entry, len(jobs))
	for i, j := range jobs {
		entries[i] = queue.Entry{ID: fmt.Sprint(i), Body: j.body}
	}
	p := queue.NewProducer(s.SQS, s.QueueURL, queue.ProducerConfig{})
	if _, err := p.Send(ctx, entries); err != nil {
		return fmt.Errorf("enqueue %d jobs: %w", len(jobs), err)
	}
	return nil
}

// workerConfig is what a scenario changes of the worker.
type workerConfig struct {
	workers  int
	writeRPS float64
	readRPS  float64
}

// newDaemon wires the real worker to the stack, with its log discarded.
func newDaemon(s *devstack.Stack, w workerConfig) (*daemon.Daemon, error) {
	cfg := s.WorkerConfig()
	cfg.Workers, cfg.WriteRPS, cfg.ReadRPS = w.workers, w.writeRPS, w.readRPS
	cfg.DrainTimeout = 10 * time.Second
	d, err := daemon.New(cfg, s.AWSConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("wire the worker: %w", err)
	}
	return d, nil
}

// sample is one reading of the worker and the simulator.
type sample struct {
	at        time.Duration // since the worker started
	admitted  int           // writes the simulator let through its quota
	writeRate float64       // the worker's write limiter, calls/s
	finished  int           // jobs with an outcome that ends them
	held      float64
}

// runResult is what a worker run leaves to be judged.
type runResult struct {
	samples []sample
	reg     *prometheus.Registry
	sim     pcsim.Stats
	took    time.Duration
}

// runWorker runs the worker on the stack until total jobs are finished and
// nothing is held, or limit passes, sampling all along.
func runWorker(ctx context.Context, s *devstack.Stack, w workerConfig, total int, limit time.Duration) (*runResult, error) {
	d, err := newDaemon(s, w)
	if err != nil {
		return nil, err
	}
	workerCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- d.Run(workerCtx) }()

	res := &runResult{reg: d.Registry()}
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(samplePeriod)
	defer tick.Stop()
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			runErr = ctx.Err()
			break loop
		case <-deadline.C:
			runErr = fmt.Errorf("not done after %v", limit)
			break loop
		case err := <-done:
			return nil, fmt.Errorf("the worker stopped early: %v", err)
		case <-tick.C:
			sm := takeSample(res.reg, s.Sim, time.Since(start))
			res.samples = append(res.samples, sm)
			if sm.finished >= total && sm.held == 0 {
				break loop
			}
		}
	}
	res.took = time.Since(start)
	stop()
	if err := <-done; err != nil && runErr == nil {
		runErr = err
	}
	res.sim = s.Sim.Stats()
	if runErr != nil {
		last := sample{}
		if len(res.samples) > 0 {
			last = res.samples[len(res.samples)-1]
		}
		return res, fmt.Errorf("%w (%d of %d jobs finished)", runErr, last.finished, total)
	}
	return res, nil
}

func takeSample(reg prometheus.Gatherer, sim *pcsim.Server, at time.Duration) sample {
	m := gather(reg)
	sm := sample{at: at, admitted: sim.Stats().Admitted("UpdateEngagementContext"), held: m.gauge("pcsync_messages_held", nil)}
	sm.writeRate = m.gauge("pcsync_rate_limit_per_second", map[string]string{"class": "write"})
	for _, o := range updater.Outcomes() {
		if updater.Final(o) {
			sm.finished += int(m.counter("pcsync_jobs_total", map[string]string{"outcome": o}))
		}
	}
	return sm
}

func calls(st pcsim.Stats, op string) int {
	n := 0
	for _, v := range st.Calls[op] {
		n += v
	}
	return n
}

// metricSet is one Gather of a registry.
type metricSet []*dto.MetricFamily

func gather(reg prometheus.Gatherer) metricSet {
	fams, _ := reg.Gather()
	return fams
}

func (ms metricSet) find(name string, labels map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, f := range ms {
		if f.GetName() != name {
			continue
		}
	metric:
		for _, m := range f.GetMetric() {
			for k, v := range labels {
				if label(m, k) != v {
					continue metric
				}
			}
			out = append(out, m)
		}
	}
	return out
}

func (ms metricSet) gauge(name string, labels map[string]string) float64 {
	v := 0.0
	for _, m := range ms.find(name, labels) {
		v += m.GetGauge().GetValue()
	}
	return v
}

func (ms metricSet) counter(name string, labels map[string]string) float64 {
	v := 0.0
	for _, m := range ms.find(name, labels) {
		v += m.GetCounter().GetValue()
	}
	return v
}

// quantile estimates quantile q of a histogram by linear interpolation
// within its bucket, as Prometheus' histogram_quantile does; also returned
// is the upper bound of that bucket, the most the quantile can be.
func (ms metricSet) quantile(name string, labels map[string]string, q float64) (est, bound float64) {
	found := ms.find(name, labels)
	if len(found) == 0 {
		return math.NaN(), math.NaN()
	}
	h := found[0].GetHistogram()
	total := float64(h.GetSampleCount())
	if total == 0 {
		return 0, 0
	}
	rank := q * total
	prevBound, prevCount := 0.0, 0.0
	bs := h.GetBucket()
	sort.Slice(bs, func(i, j int) bool { return bs[i].GetUpperBound() < bs[j].GetUpperBound() })
	for _, b := range bs {
		c := float64(b.GetCumulativeCount())
		if c >= rank {
			if c == prevCount {
				return b.GetUpperBound(), b.GetUpperBound()
			}
			return prevBound + (b.GetUpperBound()-prevBound)*(rank-prevCount)/(c-prevCount), b.GetUpperBound()
		}
		prevBound, prevCount = b.GetUpperBound(), c
	}
	return math.Inf(1), math.Inf(1)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// window is the admitted write rate between two times of a run's samples
// (the samples nearest to them).
func window(samples []sample, from, to time.Duration) (rate float64, ok bool) {
	var a, b *sample
	for i := range samples {
		if a == nil && samples[i].at >= from {
			a = &samples[i]
		}
		if samples[i].at <= to {
			b = &samples[i]
		}
	}
	if a == nil || b == nil || b.at <= a.at {
		return 0, false
	}
	return float64(b.admitted-a.admitted) / (b.at - a.at).Seconds(), true
}

// firstWrite is when the first write was admitted.
func firstWrite(samples []sample) time.Duration {
	for _, s := range samples {
		if s.admitted > 0 {
			// The write happened within the period before this sample.
			return max(0, s.at-samplePeriod)
		}
	}
	return 0
}

// lastBusy is the last sample at which the queue still held at least
// backlog jobs not yet written: after it, the worker ran out of work and
// the rate falls for that reason alone.
func lastBusy(samples []sample, total, backlog int) time.Duration {
	var at time.Duration
	for _, s := range samples {
		if s.admitted <= total-backlog {
			at = s.at
		}
	}
	return at
}

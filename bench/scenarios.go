package main

// This file holds the in-process scenarios: the stack and the real worker
// share this process, which is fine for rates, call counts and latency
// (none of them is a CPU figure).

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

// The quota of the rate scenarios: 20 writes/s with a burst equal to the
// rate, as the issue asks.
const (
	quota      = 20.0
	quotaBurst = 20
	// warmup is cut from the start of a steady-state window.
	warmup = 5 * time.Second
)

// quotaStack starts a stack with the rate scenarios' quota and n
// engagements.
func quotaStack(ctx context.Context, e *env, name string, n int) (*devstack.Stack, error) {
	return devstack.Start(ctx, devstack.Options{Queue: e.names.next(name), Engagements: n, Sim: pcsim.Options{
		WriteRPS: quota, WriteBurst: quotaBurst, ReadRPS: 20, ReadBurst: 20, WriteBudget: -1, Seed: 1,
	}})
}

// rateRun loads jobs for about dur at the quota and runs the worker on
// them with the given write ceiling.
func rateRun(ctx context.Context, e *env, name string, ceiling float64, workers int, dur time.Duration) (*runResult, int, error) {
	total := e.n(int(quota*dur.Seconds()), 40)
	s, err := quotaStack(ctx, e, name, total)
	if err != nil {
		return nil, 0, err
	}
	defer s.Close()
	if err := enqueue(ctx, s, oneJobPerEngagement(s.Sim, total, time.Now())); err != nil {
		return nil, 0, err
	}
	res, err := runWorker(ctx, s, workerConfig{workers: workers, writeRPS: ceiling, readRPS: 10}, total, 3*dur+30*time.Second)
	if err == nil && e.opt.charts {
		if cerr := writeChart(filepath.Join(e.opt.results, name+".png"), res.samples, quota); cerr != nil {
			err = cerr
		}
	}
	return res, total, err
}

// steady is the admitted write rate over the run, from warmup after the
// first write to the last moment the queue still had two rounds of the
// workers' jobs left, against the quota.
func steady(e *env, res *runResult, total, workers int) (use float64, from, to time.Duration) {
	from = firstWrite(res.samples) + e.d(warmup, 500*time.Millisecond)
	to = lastBusy(res.samples, total, 2*workers)
	rate, ok := window(res.samples, from, to)
	if !ok {
		return 0, from, to
	}
	return rate / quota, from, to
}

func quotaKnown(ctx context.Context, e *env) result {
	const target = "use >= 0.98, 0 throttles"
	const workers = 16
	res, total, err := rateRun(ctx, e, "quota-known", quota, workers, e.d(30*time.Second, 3*time.Second))
	if err != nil {
		return failed(target, err)
	}
	use, from, to := steady(e, res, total, workers)
	throttles := res.sim.Calls["UpdateEngagementContext"]["429"]
	r := result{Target: target,
		Figures: []figure{fig("steady_quota_use", use, "ratio"), fig("throttles", float64(throttles), "calls"),
			fig("jobs", float64(total), "jobs"), fig("workers", workers, "")},
		Summary: fmt.Sprintf("use %.3f (%.0f-%.0fs), %d throttles, %d jobs, %d workers", use, from.Seconds(), to.Seconds(), throttles, total, workers),
		Pass:    use >= 0.98 && throttles == 0,
		Chart:   "quota-known.png",
	}
	return r
}

func quotaUnknown(ctx context.Context, e *env) result {
	const workers = 16
	ceiling := 3 * quota
	waitTarget := 2 * float64(workers) / quota
	target := fmt.Sprintf("use >= 0.98, thr <= 1%%, 10s >= 0.95, p99 <= %.1fs, 0 failed", waitTarget)
	res, total, err := rateRun(ctx, e, "quota-unknown", ceiling, workers, e.d(40*time.Second, 3*time.Second))
	if err != nil {
		return failed(target, err)
	}
	use, from, to := steady(e, res, total, workers)
	w := res.sim.Calls["UpdateEngagementContext"]
	throttles := w["429"]
	throttled := float64(throttles) / float64(max(1, calls(res.sim, "UpdateEngagementContext")))
	fw := firstWrite(res.samples)
	first := 10 * time.Second
	if e.opt.scale < 1 {
		first = e.d(first, time.Second)
	}
	var firstN int
	for _, sm := range res.samples {
		if sm.at <= fw+first {
			firstN = sm.admitted
		}
	}
	firstUse := float64(firstN) / (quota*first.Seconds() + quotaBurst)
	m := gather(res.reg)
	p99, bound := m.quantile("pcsync_limiter_wait_seconds", map[string]string{"class": "write"}, 0.99)
	failedJobs := m.counter("pcsync_jobs_total", map[string]string{"outcome": "dead_lettered"})
	applied := m.counter("pcsync_jobs_total", map[string]string{"outcome": "applied"})
	return result{Target: target,
		Figures: []figure{fig("steady_quota_use", use, "ratio"), fig("throttled_share", throttled, "ratio"),
			fig("first_10s_quota_use", firstUse, "ratio"), fig("limiter_wait_p99", p99, "s"), fig("limiter_wait_p99_bucket_bound", bound, "s"),
			fig("jobs_failed", failedJobs, "jobs"), fig("jobs_applied", applied, "jobs"), fig("jobs", float64(total), "jobs")},
		Summary: fmt.Sprintf("use %.3f, thr %.1f%% (%d), 10s %.3f, p99 %.2fs (<=%gs), %0.f failed",
			use, 100*throttled, throttles, firstUse, p99, bound, failedJobs),
		Pass: use >= 0.98 && throttled <= 0.01 && firstUse >= 0.95 && p99 <= waitTarget && failedJobs == 0 && int(applied) == total,
		Notes: fmt.Sprintf("ceiling %.0f/s, %d workers, %d jobs, steady window %.0f-%.0fs; quota use of the first %v counts the burst: admitted / (%g/s x %v + %d); "+
			"p99 interpolated in the histogram's bucket (<= %gs)", ceiling, workers, total, from.Seconds(), to.Seconds(), first, quota, first, quotaBurst, bound),
		Chart: "quota-unknown.png",
	}
}

// fastSim is a simulator quick enough that a scenario about counts, not
// rates, is not held up by a quota.
func fastSim(outside float64) pcsim.Options {
	return pcsim.Options{WriteRPS: 400, WriteBurst: 400, ReadRPS: 400, ReadBurst: 400, WriteBudget: -1, OutsideWritesPerSec: outside, Seed: 1}
}

var fastWorker = workerConfig{workers: 16, writeRPS: 400, readRPS: 400}

// countRun sends one job per engagement and runs the worker: it returns
// the simulator's counters, the worker's conflicts and how long it took.
func countRun(ctx context.Context, e *env, total int, outside float64) (pcsim.Stats, float64, time.Duration, error) {
	s, err := devstack.Start(ctx, devstack.Options{Queue: e.names.next("calls"), Engagements: total, Sim: fastSim(0)})
	if err != nil {
		return pcsim.Stats{}, 0, 0, err
	}
	defer s.Close()
	if err := enqueue(ctx, s, oneJobPerEngagement(s.Sim, total, time.Now())); err != nil {
		return pcsim.Stats{}, 0, 0, err
	}
	// The outside writer starts with the worker: edits made before would
	// make conflicts that depend on how long the enqueue took.
	var stopOutside func()
	if outside > 0 {
		stopOutside = outsideWriter(ctx, s.Sim, total, outside)
	}
	res, err := runWorker(ctx, s, fastWorker, total, 2*time.Minute)
	if stopOutside != nil {
		stopOutside()
	}
	if err != nil {
		return pcsim.Stats{}, 0, 0, err
	}
	conflicts := gather(res.reg).counter("pcsync_conflicts_total", nil)
	return res.sim, conflicts, res.took, nil
}

// outsideWriter touches random engagements at rate per second, as other
// users editing them in Partner Central would. (The simulator's own
// outside writer, OutsideWritesPerSec, is the same thing, but it runs from
// the simulator's start.)
func outsideWriter(ctx context.Context, sim *pcsim.Server, n int, rate float64) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		// A fixed sequence: the same run touches the same engagements.
		x := uint64(12345)
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				x = x*6364136223846793005 + 1442695040888963407
				_, _ = sim.Touch(devstack.EngagementID(int(x>>33)%n + 1))
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func callsPerJob(ctx context.Context, e *env) result {
	const target = "<= 1.02 quiet, <= 1.3 with ~10% conflicts"
	total := e.n(1000, 40)
	quiet, _, took, err := countRun(ctx, e, total, 0)
	if err != nil {
		return failed(target, err)
	}
	quietCalls := float64(calls(quiet, "UpdateEngagementContext")+calls(quiet, "GetEngagement")) / float64(total)
	// A job carries the ModifiedAt of the enqueue; an outside edit of its
	// engagement before its write is a conflict. Over a run of length D,
	// a job waits D/2 on average, so about rate*D/(2n) of the jobs meet
	// one: rate = 0.2*n/D aims at 10 %.
	rate := 0.2 * float64(total) / took.Seconds()
	busy, conflicts, _, err := countRun(ctx, e, total, rate)
	if err != nil {
		return failed(target, err)
	}
	busyCalls := float64(calls(busy, "UpdateEngagementContext")+calls(busy, "GetEngagement")) / float64(total)
	conflicted := float64(busy.Calls["UpdateEngagementContext"]["409"]) / float64(total)
	return result{Target: target,
		Figures: []figure{fig("calls_per_job_quiet", quietCalls, "calls"), fig("calls_per_job_conflicts", busyCalls, "calls"),
			fig("conflict_share", conflicted, "ratio"), fig("conflicts_metric", conflicts, "jobs"), fig("outside_writes_per_sec", rate, "1/s"), fig("jobs", float64(total), "jobs")},
		Summary: fmt.Sprintf("%.3f quiet; %.3f with %.1f%% of jobs meeting a 409 (%d jobs)", quietCalls, busyCalls, 100*conflicted, total),
		Pass:    quietCalls <= 1.02 && busyCalls <= 1.3,
		Notes:   fmt.Sprintf("outside edits %.1f/s over %d engagements; 409s per job counted at the simulator", rate, total),
	}
}

func coalescing(ctx context.Context, e *env) result {
	const target = "writes/message <= 0.4"
	contexts := e.n(300, 10)
	s, err := devstack.Start(ctx, devstack.Options{Queue: e.names.next("coalescing"), Engagements: contexts, Sim: fastSim(0)})
	if err != nil {
		return failed(target, err)
	}
	defer s.Close()
	// Three versions of each context, a minute apart, next to each other
	// in the batch (as an export lists a record's changes), newest not
	// always last.
	base := time.Now().Add(-time.Hour)
	var jobs []job
	for i := range contexts {
		eng := devstack.EngagementID(i + 1)
		st, _ := s.Sim.Engagement(eng)
		order := []int{0, 1, 2}
		if i%2 == 1 {
			order = []int{2, 0, 1}
		}
		for _, v := range order {
			jobs = append(jobs, job{eng: eng, ctx: "1", body: jobBody(eng, "1", st.ModifiedAt, base.Add(time.Duration(v)*time.Minute), v+1)})
		}
	}
	if err := enqueue(ctx, s, jobs); err != nil {
		return failed(target, err)
	}
	res, err := runWorker(ctx, s, fastWorker, len(jobs), 2*time.Minute)
	if err != nil {
		return failed(target, err)
	}
	writes := calls(res.sim, "UpdateEngagementContext")
	perMsg := float64(writes) / float64(len(jobs))
	m := gather(res.reg)
	coalesced := m.counter("pcsync_jobs_total", map[string]string{"outcome": "coalesced"})
	stale := m.counter("pcsync_jobs_total", map[string]string{"outcome": "stale"})
	// Every context must hold its newest version.
	wrong := 0
	for i := range contexts {
		st, _ := s.Sim.Engagement(devstack.EngagementID(i + 1))
		if !containsTitle(st, "Data center exit v3") {
			wrong++
		}
	}
	return result{Target: target,
		Figures: []figure{fig("writes_per_message", perMsg, "calls"), fig("writes", float64(writes), "calls"), fig("messages", float64(len(jobs)), ""),
			fig("coalesced", coalesced, "jobs"), fig("stale", stale, "jobs"), fig("contexts_not_newest", float64(wrong), "")},
		Summary: fmt.Sprintf("%.3f (%d writes, %d messages; %.0f coalesced, %.0f stale)", perMsg, writes, len(jobs), coalesced, stale),
		Pass:    perMsg <= 0.4 && wrong == 0,
		Notes:   fmt.Sprintf("%d contexts x 3 versions, enqueued before the worker started; %d contexts not at their newest version", contexts, wrong),
	}
}

func containsTitle(st pcsim.EngagementState, title string) bool {
	for _, c := range st.Contexts {
		if c.Id == "1" && strings.Contains(string(c.Payload), title) {
			return true
		}
	}
	return false
}

func trickle(ctx context.Context, e *env) result {
	const target = "p50 <= 50ms, p99 <= 150ms"
	const every = 200 * time.Millisecond // 5 jobs/s
	n := e.n(100, 5)
	s, err := devstack.Start(ctx, devstack.Options{Queue: e.names.next("trickle"), Engagements: n, Sim: fastSim(0)})
	if err != nil {
		return failed(target, err)
	}
	defer s.Close()
	d, err := newDaemon(s, fastWorker)
	if err != nil {
		return failed(target, err)
	}
	workerCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(workerCtx) }()

	// Let the worker start and sit in its long polls, idle.
	if err := wait(ctx, 2*time.Second); err != nil {
		return failed(target, err)
	}
	timer := newUpdateTimer(ctx, s, n)
	tick := time.NewTicker(every)
	defer tick.Stop()
	for i := range n {
		select {
		case <-ctx.Done():
			return failed(target, ctx.Err())
		case <-tick.C:
		}
		if err := timer.send(i, s.QueueURL, devstack.EngagementID(i+1), 1, 30*time.Second); err != nil {
			return failed(target, err)
		}
	}
	lat, missed := timer.wait()
	stop()
	<-done
	if missed != nil {
		return failed(target, missed)
	}
	slices.Sort(lat)
	p50, p99, worst := pct(lat, 0.50), pct(lat, 0.99), lat[len(lat)-1]
	m := gather(d.Registry())
	ageP50, ageB50 := m.quantile("pcsync_message_age_seconds", nil, 0.5)
	ageP99, ageB99 := m.quantile("pcsync_message_age_seconds", nil, 0.99)
	return result{Target: target,
		Figures: []figure{fig("p50", p50.Seconds(), "s"), fig("p99", p99.Seconds(), "s"), fig("max", worst.Seconds(), "s"),
			fig("message_age_p50_histogram", ageP50, "s"), fig("message_age_p99_histogram", ageP99, "s"), fig("jobs", float64(n), "jobs")},
		Summary: fmt.Sprintf("p50 %.0fms, p99 %.0fms, max %.0fms (%d jobs at 5/s)", ms(p50), ms(p99), ms(worst), n),
		Pass:    p50 <= 50*time.Millisecond && p99 <= 150*time.Millisecond,
		Notes: fmt.Sprintf("send call start -> context written, seen by polling the simulator every 1 ms; the worker's message_age histogram says p50 %.0fms (<= %gs), p99 %.0fms (<= %gs)",
			1000*ageP50, ageB50, 1000*ageP99, ageB99),
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// pct is quantile q of sorted durations (nearest rank).
func pct(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// updateTimer sends updates of context 1 of engagements and times each:
// from the send call's start until the simulator holds the write.
type updateTimer struct {
	ctx    context.Context
	s      *devstack.Stack
	wg     sync.WaitGroup
	mu     sync.Mutex
	lat    []time.Duration
	missed error
}

func newUpdateTimer(ctx context.Context, s *devstack.Stack, n int) *updateTimer {
	return &updateTimer{ctx: ctx, s: s, lat: make([]time.Duration, n)}
}

// send sends update i, a new version of eng's context 1 carrying its
// current ModifiedAt, to the queue at url, and times it in the background
// for at most limit.
func (u *updateTimer) send(i int, url, eng string, version int, limit time.Duration) error {
	st, _ := u.s.Sim.Engagement(eng)
	body := jobBody(eng, "1", st.ModifiedAt, time.Now(), version)
	sent := time.Now()
	if _, err := u.s.SQS.SendMessage(u.ctx, &sqs.SendMessageInput{QueueUrl: aws.String(url), MessageBody: aws.String(body)}); err != nil {
		return err
	}
	u.wg.Go(func() {
		at, err := appliedAt(u.ctx, u.s.Sim, eng, limit)
		u.mu.Lock()
		defer u.mu.Unlock()
		if err != nil {
			u.missed = err
			return
		}
		u.lat[i] = at.Sub(sent)
	})
	return nil
}

// wait waits for every update sent to be written and returns the times,
// sorted, or the first that was not written in time.
func (u *updateTimer) wait() ([]time.Duration, error) {
	u.wg.Wait()
	slices.Sort(u.lat)
	return u.lat, u.missed
}

// appliedAt polls the simulator until context 1 of eng has been written.
func appliedAt(ctx context.Context, sim *pcsim.Server, eng string, limit time.Duration) (time.Time, error) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	for {
		st, _ := sim.Engagement(eng)
		for _, c := range st.Contexts {
			if c.Id == "1" && c.Writes > 0 {
				return time.Now(), nil
			}
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-deadline.C:
			return time.Time{}, fmt.Errorf("%s not written after %v", eng, limit)
		case <-t.C:
		}
	}
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/devstack"
)

// priorityRun is one run of the priority scenario.
type priorityRun struct {
	latencies []time.Duration // each realtime update: send -> written
	use       float64         // writes admitted while the updates arrived and were applied, / the quota
	realtime  float64         // of which the realtime updates' share
}

// priority is event-driven updates arriving while a nightly batch waits:
// 30 realtime updates, two a second, on a realtime queue read before the
// bulk queue of 3,000 jobs, at the rate scenarios' quota (20 writes/s).
// The same run with both kinds on one queue is measured beside it.
func priority(ctx context.Context, e *env) result {
	const target = "worst realtime update <= 1.0s after its send; quota use >= 0.95 meanwhile"
	bulk, realtime := e.n(3000, 200), e.n(30, 6)
	two, err := runPriority(ctx, e, bulk, realtime, true)
	if err != nil {
		return failed(target, fmt.Errorf("two queues: %w", err))
	}
	one, err := runPriority(ctx, e, bulk, realtime, false)
	if err != nil {
		return failed(target, fmt.Errorf("one queue: %w", err))
	}
	worst, p50 := slices.Max(two.latencies), pct(two.latencies, 0.5)
	oneWorst, oneP50 := slices.Max(one.latencies), pct(one.latencies, 0.5)
	return result{Target: target,
		Figures: []figure{fig("realtime_max", worst.Seconds(), "s"), fig("realtime_p50", p50.Seconds(), "s"),
			fig("quota_use", two.use, "ratio"), fig("bulk_use", two.use-two.realtime, "ratio"),
			fig("one_queue_realtime_max", oneWorst.Seconds(), "s"), fig("one_queue_realtime_p50", oneP50.Seconds(), "s"),
			fig("one_queue_quota_use", one.use, "ratio"), fig("bulk_jobs", float64(bulk), "jobs"), fig("realtime_jobs", float64(realtime), "jobs")},
		Summary: fmt.Sprintf("two queues: realtime max %.2fs, p50 %.2fs, use %.3f (bulk %.3f); one queue: realtime max %.1fs, p50 %.1fs",
			worst.Seconds(), p50.Seconds(), two.use, two.use-two.realtime, oneWorst.Seconds(), oneP50.Seconds()),
		Pass: worst <= time.Second && two.use >= 0.95,
		Notes: fmt.Sprintf("%d bulk jobs enqueued first, %d realtime updates at 2/s from 5 s after the first write; quota %g writes/s, ceiling %g, 16 workers; "+
			"use = writes admitted from the first update's send to the last one's write, / the quota (realtime's own share %.3f)",
			bulk, realtime, quota, quota, two.realtime),
	}
}

func runPriority(ctx context.Context, e *env, bulk, realtime int, twoQueues bool) (priorityRun, error) {
	s, err := quotaStack(ctx, e, "priority", bulk+realtime)
	if err != nil {
		return priorityRun{}, err
	}
	defer s.Close()
	if err := enqueue(ctx, s, oneJobPerEngagement(s.Sim, bulk, time.Now())); err != nil {
		return priorityRun{}, err
	}
	cfg := s.WorkerConfig()
	cfg.Workers, cfg.WriteRPS, cfg.ReadRPS = 16, quota, 10
	cfg.DrainTimeout = 10 * time.Second
	rtURL := s.QueueURL
	if twoQueues {
		q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(e.names.next("priority-realtime"))})
		if err != nil {
			return priorityRun{}, err
		}
		rtURL = aws.ToString(q.QueueUrl)
		cfg.QueueURLs, cfg.DLQURLs = []string{rtURL, cfg.QueueURL}, []string{"", cfg.DLQURL}
		cfg.QueueURL, cfg.DLQURL = "", ""
	}
	d, err := daemon.New(cfg, s.AWSConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		return priorityRun{}, fmt.Errorf("wire the worker: %w", err)
	}
	workerCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(workerCtx) }()

	// The updates start once the batch is in full flow.
	admitted := func() int { return s.Sim.Stats().Admitted("UpdateEngagementContext") }
	for admitted() == 0 {
		if err := wait(ctx, 10*time.Millisecond); err != nil {
			return priorityRun{}, err
		}
	}
	if err := wait(ctx, 5*time.Second); err != nil {
		return priorityRun{}, err
	}
	start, before := time.Now(), admitted()
	timer := newUpdateTimer(ctx, s, realtime)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for i := range realtime {
		if i > 0 {
			select {
			case <-ctx.Done():
				return priorityRun{}, ctx.Err()
			case <-tick.C:
			}
		}
		if err := timer.send(i, rtURL, devstack.EngagementID(bulk+i+1), 2, 10*time.Minute); err != nil {
			return priorityRun{}, err
		}
	}
	lat, missed := timer.wait()
	took, writes := time.Since(start), admitted()-before
	stop()
	if err := <-done; err != nil {
		return priorityRun{}, err
	}
	if missed != nil {
		return priorityRun{}, missed
	}
	capacity := quota * took.Seconds()
	return priorityRun{latencies: lat, use: float64(writes) / capacity, realtime: float64(realtime) / capacity}, nil
}

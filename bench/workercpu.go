package main

// This file holds the worker-cpu scenario: the whole worker ("worker
// run") in a process of its own against the stack in this one, its CPU
// time and peak memory.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

func workerCPU(ctx context.Context, e *env) result {
	const target = "CPU <= 150us/job, peak RSS <= 60 MiB"
	const workers = 64
	backlog := e.n(100000, 300)
	engagements := min(backlog, 5000)
	bin, err := build(ctx, e, "cmd/worker")
	if err != nil {
		return failed(target, err)
	}
	s, err := devstack.Start(ctx, devstack.Options{Queue: e.names.next("worker-cpu"), Engagements: engagements,
		Sim: pcsim.Options{Unlimited: true, Seed: 1}})
	if err != nil {
		return failed(target, err)
	}
	defer s.Close()
	// Each engagement gets backlog/engagements versions of its customer
	// project, with SourceUpdatedAt in send order.
	// In the past, all of them: a SourceUpdatedAt in the future is an
	// invalid job.
	base := time.Now().Add(-time.Duration(backlog)*time.Second - time.Hour)
	bodies := make([]string, backlog)
	modified := make([]string, engagements)
	for i := range engagements {
		st, _ := s.Sim.Engagement(devstack.EngagementID(i + 1))
		modified[i] = st.ModifiedAt
	}
	for i := range bodies {
		k := i % engagements
		bodies[i] = jobBody(devstack.EngagementID(k+1), "1", modified[k], base.Add(time.Duration(i)*time.Second), i)
	}
	enqStart := time.Now()
	if err := sendParallel(ctx, s.SQS, s.QueueURL, bodies); err != nil {
		return failed(target, err)
	}
	enqTook := time.Since(enqStart)

	metricsAddr := ""
	if e.opt.profile != "" {
		if metricsAddr, err = freeAddr(); err != nil {
			return failed(target, err)
		}
	}
	// -state-dir off: this measures the worker's CPU per job against an
	// unlimited simulator, where a sync per write would measure the disk
	// (internal/state's benchmarks do), and kept the figures comparable
	// with the runs before the state file was on by default.
	cmd := exec.CommandContext(ctx, bin, "run", "-workers", fmt.Sprint(workers), "-write-rps", "1000000", "-read-rps", "1000000",
		"-write-budget", "0", "-metrics-addr", metricsAddr, "-pprof="+fmt.Sprint(metricsAddr != ""),
		"-exit-when-idle", "2s", "-log-level", "error", "-log-format", "text", "-state-dir", "off")
	cmd.Env = append(os.Environ(), s.Env()...)
	var logTail bytes.Buffer
	cmd.Stdout, cmd.Stderr = io.Discard, &logTail
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return failed(target, fmt.Errorf("worker run: %w", err))
	}
	stopProfile := func() {}
	if metricsAddr != "" {
		stopProfile = startWorkerProfiler(ctx, e, "worker-cpu", metricsAddr)
	}
	hwm := watchPeakRSS(cmd.Process.Pid)
	err = cmd.Wait()
	rssKiB := hwm()
	stopProfile()
	if err != nil {
		return failed(target, fmt.Errorf("worker run: %w: %s", err, lastLine(logTail.String())))
	}
	took := time.Since(start)
	ps := cmd.ProcessState
	cpu := ps.UserTime() + ps.SystemTime()
	st := s.Sim.Stats()
	writes, reads := calls(st, "UpdateEngagementContext"), calls(st, "GetEngagement")
	left, err := queueDepth(ctx, s)
	if err != nil {
		return failed(target, err)
	}
	cpuPer := cpu / time.Duration(backlog)
	rssMiB := float64(rssKiB) / 1024
	if logTail.Len() > 0 {
		fmt.Fprintf(e.stderr, "worker-cpu: the worker logged errors; the last: %s\n", lastLine(logTail.String()))
	}
	return result{Target: target,
		Figures: []figure{fig("cpu_per_job", cpuPer.Seconds()*1e6, "us"), fig("peak_rss", rssMiB, "MiB"), fig("backlog", float64(backlog), "messages"),
			fig("writes", float64(writes), "calls"), fig("reads", float64(reads), "calls"), fig("left_on_queue", float64(left), "messages"),
			fig("worker_seconds", took.Seconds(), "s")},
		Summary: fmt.Sprintf("%.0fus CPU/job, peak RSS %.1f MiB; %d-message backlog, %d workers, %.1fs", cpuPer.Seconds()*1e6, rssMiB, backlog, workers, took.Seconds()),
		Pass:    cpuPer <= 150*time.Microsecond && rssMiB <= 60 && left == 0,
		Notes: fmt.Sprintf("\"worker run\" as its own process, pcsim Unlimited; CPU from its rusage after it exited (incl. start and the 2s idle exit), peak RSS its VmHWM; "+
			"%d writes + %d reads for %d jobs over %d engagements (the rest coalesced or stale); %d left on the queue; enqueue took %.1fs",
			writes, reads, backlog, engagements, left, enqTook.Seconds()),
	}
}

// watchPeakRSS follows a child's peak resident memory, VmHWM in
// /proc/PID/status, until the returned function is called after the child
// exited; that returns the last reading, in KiB (0 where /proc is missing).
//
// The rusage Maxrss of a child is no use here: Go starts children with
// vfork, and Linux carries the parent's peak into the child's at exec, so
// a small worker started by this large process reports this process's
// peak. VmHWM belongs to the worker's own address space. It only grows, so
// the last reading before exit is the peak, short of the final interval;
// the worker spends its last 2 s idle (-exit-when-idle).
func watchPeakRSS(pid int) (stop func() int64) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	var peak atomic.Int64
	read := func() bool {
		raw, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		for line := range strings.Lines(string(raw)) {
			if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kib int64
				if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kib); err == nil && kib > peak.Load() {
					peak.Store(kib)
				}
			}
		}
		return true
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for read() {
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// queueDepth is what is left on the job queue, visible or not.
func queueDepth(ctx context.Context, s *devstack.Stack) (int, error) {
	out, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(s.QueueURL),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		return 0, fmt.Errorf("read the queue's depth: %w", err)
	}
	n := 0
	for _, k := range []string{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"} {
		var v int
		fmt.Sscan(out.Attributes[k], &v)
		n += v
	}
	return n, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

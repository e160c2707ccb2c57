package queue

import (
	"context"
	"log/slog"
	"time"
)

// This file is ExitWhenIdle: when a batch run's queues count as drained.

// waitForStop blocks until ctx is done or, with ExitWhenIdle, until every
// queue is drained; it reports whether it was idleness.
//
// Drained means: nothing received from any queue and nothing held for
// ExitWhenIdle, and SQS counts no message on any of the queues, visible, in
// flight or delayed. A
// ReceiveMessage whose response is lost on the way (and which the SDK
// retries) leaves its messages in flight with no one holding them; they
// reappear after the visibility timeout, and a batch run that stopped at
// the first quiet moment would leave them for the next run. So while SQS
// still counts messages, the Consumer keeps polling, for at most the
// longest visibility timeout plus one long poll beyond ExitWhenIdle: enough for
// such messages to reappear and be received, and a bound when the count
// is messages another worker holds or a long delay this one set.
func (c *Consumer) waitForStop(ctx context.Context) bool {
	if c.cfg.ExitWhenIdle <= 0 {
		<-ctx.Done()
		return false
	}
	check := min(max(c.cfg.ExitWhenIdle/4, 10*time.Millisecond), time.Second)
	var longestVT time.Duration
	for _, s := range c.srcs {
		longestVT = max(longestVT, s.vt)
	}
	limit := c.cfg.ExitWhenIdle + longestVT + c.cfg.WaitTime
	t := time.NewTimer(check)
	defer t.Stop()
	var nextAsk time.Time
	reported := false
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		c.mu.Lock()
		var quiet time.Duration
		if len(c.held) == 0 {
			quiet = time.Since(c.lastBusy)
		}
		c.mu.Unlock()
		if quiet < c.cfg.ExitWhenIdle {
			nextAsk, reported = time.Time{}, false
		} else if quiet >= limit || time.Now().After(nextAsk) {
			counts, err := c.leftOnQueues(ctx)
			left := 0
			for _, n := range counts {
				left += n
			}
			switch {
			case err == nil && left == 0:
				return true
			case quiet >= limit:
				c.log.Warn("queue idle here, but SQS still counts messages; leaving them for the next run",
					"messages", left, "by_queue", c.byQueue(counts), "idle_for", quiet.Round(time.Second), "err", err)
				return true
			case !reported:
				reported = true
				c.log.Info("queue idle here, but SQS still counts messages in flight or delayed; waiting for them",
					"messages", left, "by_queue", c.byQueue(counts), "up_to", (limit - quiet).Round(time.Second), "err", err)
			}
			// The counts are approximate and lag; asking once a second
			// is plenty.
			nextAsk = time.Now().Add(time.Second)
		}
		t.Reset(check)
	}
}

// leftOnQueues is SQS's count of the messages of each queue, by priority:
// visible, in flight and delayed. On an error the counts read so far are
// returned with it.
func (c *Consumer) leftOnQueues(ctx context.Context) ([]int, error) {
	counts := make([]int, 0, len(c.srcs))
	for _, s := range c.srcs {
		attrs, err := c.queueAttributes(ctx, s, depthAttributes...)
		if err != nil {
			return counts, err
		}
		d, err := countsOf(s.url, attrs)
		if err != nil {
			return counts, err
		}
		counts = append(counts, d.Visible+d.InFlight+d.Delayed)
	}
	return counts, nil
}

// byQueue logs counts by queue name: by_queue.pcsync-bulk=3.
func (c *Consumer) byQueue(counts []int) slog.Value {
	attrs := make([]slog.Attr, len(counts))
	for i, n := range counts {
		attrs[i] = slog.Int(c.srcs[i].name, n)
	}
	return slog.GroupValue(attrs...)
}

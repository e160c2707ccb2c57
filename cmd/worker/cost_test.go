package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

func TestCostSummary(t *testing.T) {
	for _, tt := range []struct {
		name           string
		jobs, contexts int
		rps            float64
		budget         int
		want, wantNot  []string
	}{
		{"a night that fits", 2000, 2000, 1, 10000,
			[]string{"2000 writes (2000 jobs on 2000 contexts)", "0.6 h at 1 writes/s", "20% of the daily budget of 10000 writes"},
			[]string{"does not fit", "up to"}},
		{"versions coalesce", 3000, 1000, 1, 10000,
			[]string{"1000 writes (3000 jobs on 1000 contexts)", "0.3 h", "10%", "up to 3000 writes"}, []string{"does not fit"}},
		{"more than a day", 25000, 25000, 1, 10000,
			[]string{"6.9 h", "250% of the daily budget", "does not fit in one day: the rest waits 1.5 day(s)"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := costSummary(tt.jobs, tt.contexts, tt.rps, tt.budget)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to say %q", got, w)
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(got, w) {
					t.Errorf("got %q, want it not to say %q", got, w)
				}
			}
		})
	}
}

func TestOneOffToolsTakeOneQueue(t *testing.T) {
	list := "https://sqs.us-east-1.amazonaws.com/1/pcsync-realtime,https://sqs.us-east-1.amazonaws.com/1/pcsync-bulk"
	for _, cmd := range []func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
			return runEnqueue(ctx, args, getenv, strings.NewReader(""), stdout, stderr)
		},
		runDLQ, runRedrive,
	} {
		var stderr strings.Builder
		getenv := func(k string) string {
			if k == "PCSYNC_QUEUE_URL" {
				return list
			}
			return ""
		}
		err := cmd(context.Background(), []string{"jobs.jsonl"}, getenv, io.Discard, &stderr)
		if err == nil || !strings.Contains(stderr.String(), "-queue-url (PCSYNC_QUEUE_URL) takes one queue") {
			t.Errorf("got %v, %q; want a usage error saying -queue-url takes one queue", err, stderr.String())
		}
	}
}

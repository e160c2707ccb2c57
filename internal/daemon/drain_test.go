package daemon_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

// TestDrainHandsBackJobsWaitingForATurn: on SIGTERM, jobs that only wait
// for the rate limiter go back to the queue at once (visible again), not
// abandoned at the drain deadline to reappear after the visibility
// timeout. The limiter lets one call through per 20 s, the drain timeout
// is 2 s and the visibility timeout 5 minutes: only a hand-back makes the
// messages receivable again when Run returns.
func TestDrainHandsBackJobsWaitingForATurn(t *testing.T) {
	const jobs = 12
	s, err := devstack.Start(t.Context(), devstack.Options{
		Queue: "daemon-drain-hand-back", Engagements: jobs,
		Sim: pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if _, err := s.SQS.SetQueueAttributes(t.Context(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(s.QueueURL), Attributes: map[string]string{"VisibilityTimeout": "300"}}); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= jobs; n++ {
		body := fmt.Sprintf(`{"Catalog":"Sandbox","EngagementIdentifier":%q,"ContextIdentifier":"1","Type":"CustomerProject","Payload":{"CustomerProject":{"Customer":{"Industry":"Other","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"t","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}`, devstack.EngagementID(n))
		if _, err := s.SQS.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(s.QueueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	cfg := s.WorkerConfig()
	cfg.Workers, cfg.WriteRPS, cfg.ReadRPS, cfg.DrainTimeout = jobs, 0.05, 0.05, 2*time.Second
	d, err := daemon.New(cfg, s.AWSConfig(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	// Wait until the first call went through and every job is held: the
	// rest wait for their turn.
	calls := func() int {
		n := 0
		for _, byStatus := range s.Sim.Stats().Calls {
			for _, c := range byStatus {
				n += c
			}
		}
		return n
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for calls() == 0 || held(t, d) < jobs {
		select {
		case err := <-done:
			t.Fatalf("worker ended early: %v", err)
		case <-tick.C:
		}
	}
	made := calls()
	sigterm()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	visible := 0
	for range 5 {
		out, err := s.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(s.QueueURL), MaxNumberOfMessages: 10, VisibilityTimeout: 300})
		if err != nil {
			t.Fatal(err)
		}
		visible += len(out.Messages)
	}
	// Each call made may have settled its job (a read alone settles none).
	if visible < jobs-made {
		t.Errorf("after SIGTERM: %d of %d messages visible again (%d calls made), want every job that waited for a turn handed back", visible, jobs, made)
	}
}

// held is the worker's pcsync_messages_held.
func held(t *testing.T, d *daemon.Daemon) float64 {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == "pcsync_messages_held" {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatal("no pcsync_messages_held")
	return 0
}

package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

// testAWS is an SDK configuration for kumo and the simulator, which accept
// any well-formed signature.
var testAWS = aws.Config{
	Region:      "us-east-1",
	Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
}

// newQueue makes a queue of its own on srv (every kumo server of a test
// binary shares one store) and returns its URL.
func newQueue(t *testing.T, client *sqs.Client, prefix string) string {
	t.Helper()
	name := strings.ReplaceAll(prefix+"-"+time.Now().Format("150405.000000000"), ".", "-")
	q, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl)
}

// until polls cond every 20 ms until it holds, failing the test after
// limit; it returns cond's last value.
func until[T any](t *testing.T, limit time.Duration, what string, cond func() (T, bool)) T {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		v, ok := cond()
		if ok {
			return v
		}
		select {
		case <-deadline.C:
			t.Fatalf("not %s within %v; last: %v", what, limit, v)
		case <-tick.C:
		}
	}
}

// readyz is /readyz's status and body.
func readyz(addr string) (int, string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// running is a Daemon's Run in a goroutine: err is set once done is
// closed.
type running struct {
	done chan struct{}
	err  error
}

// runDaemon runs d until it returns or the test ends.
func runDaemon(t *testing.T, d *Daemon) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{done: make(chan struct{})}
	go func() {
		r.err = d.Run(ctx)
		close(r.done)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(time.Minute):
			t.Error("Run did not return within a minute of being cancelled")
		}
	})
	return r
}

// TestReadyzNamesSQSOutage: a worker that cannot reach SQS is not ready,
// and /readyz says which queue and why; once SQS answers at the same
// address, it is ready.
func TestReadyzNamesSQSOutage(t *testing.T) {
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	direct := sqs.NewFromConfig(testAWS, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	queueURL := newQueue(t, direct, "daemon-readyz")
	name := queueURL[strings.LastIndex(queueURL, "/")+1:]

	// The worker's SQS endpoint is a port nothing listens on, for now.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sqsAddr := ln.Addr().String()
	ln.Close()

	d, err := New(Config{
		QueueURL:               queueURL,
		Workers:                1,
		WriteRPS:               1,
		ReadRPS:                1,
		DrainTimeout:           time.Second,
		MetricsAddr:            "127.0.0.1:0",
		SQSEndpoint:            "http://" + sqsAddr,
		PartnerCentralEndpoint: "http://127.0.0.1:1", // never called: the queue stays empty
	}, testAWS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)

	want := regexp.MustCompile(`^sqs: queue ` + regexp.QuoteMeta(name) + `: no answer for \d+s: .*connect: connection refused$`)
	body := until(t, 30*time.Second, "503 naming the queue and the refused connection", func() (string, bool) {
		status, body := readyz(d.Addr())
		return fmt.Sprint(status, " ", body), status == http.StatusServiceUnavailable && want.MatchString(body)
	})
	t.Logf("/readyz while SQS is away: %s", body)

	// SQS comes up at that address.
	kumoURL, _ := url.Parse(srv.URL)
	up, err := net.Listen("tcp", sqsAddr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", sqsAddr, err)
	}
	rp := httputil.NewSingleHostReverseProxy(kumoURL)
	// A long poll cancelled when the test ends is no news.
	rp.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) }
	proxy := &http.Server{Handler: rp, ReadHeaderTimeout: 5 * time.Second}
	go proxy.Serve(up)
	t.Cleanup(func() { proxy.Close() })

	until(t, 30*time.Second, "ready once SQS answers", func() (string, bool) {
		status, body := readyz(d.Addr())
		return fmt.Sprint(status, " ", body), status == http.StatusOK && body == "ready"
	})
}

// TestBatchRunEndsWhenCircuitStaysOpen: in a batch run, a circuit that
// stays open (Partner Central refusing every call, or out of reach) for
// MaxCircuitOpen ends Run with an error that says so and why, after the
// usual shutdown: every job is still on the queue, none went to the
// dead-letter queue. Meanwhile /readyz names the circuit's reason.
func TestBatchRunEndsWhenCircuitStaysOpen(t *testing.T) {
	denying, err := pcsim.NewServer(pcsim.Options{Faults: pcsim.Faults{DenyAccess: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(denying.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()

	for _, tc := range []struct {
		name, endpoint, reason string
	}{
		{"access denied", denying.URL, "AccessDeniedException"},
		{"connection refused", "http://" + closed, "connection refused to " + closed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := kumo.NewServer()
			t.Cleanup(srv.Close)
			client := sqs.NewFromConfig(testAWS, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
			queueURL := newQueue(t, client, "daemon-circuit")
			dlqURL := newQueue(t, client, "daemon-circuit-dlq")
			// Enough jobs on enough workers that a refused connection
			// (transient, one failure each) opens the circuit at once.
			const jobs = 20
			for i := range jobs {
				body := fmt.Sprintf(`{"Catalog":"Sandbox","EngagementIdentifier":"eng-c%013d","ContextIdentifier":"1","Type":"CustomerProject",`+
					`"Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},`+
					`"Project":{"Title":"t","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}`, i)
				if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
					t.Fatal(err)
				}
			}

			logs := &messages{started: make(chan struct{})}
			d, err := New(Config{
				QueueURL:               queueURL,
				DLQURL:                 dlqURL,
				Workers:                10,
				WriteRPS:               100,
				ReadRPS:                100,
				DrainTimeout:           time.Second,
				ExitWhenIdle:           time.Second,
				MaxCircuitOpen:         3 * time.Second,
				MetricsAddr:            "127.0.0.1:0",
				SQSEndpoint:            srv.URL,
				PartnerCentralEndpoint: tc.endpoint,
			}, testAWS, slog.New(logs))
			if err != nil {
				t.Fatal(err)
			}
			ran := runDaemon(t, d)

			until(t, 30*time.Second, "503 naming the circuit's reason", func() (string, bool) {
				status, body := readyz(d.Addr())
				return fmt.Sprint(status, " ", body), status == http.StatusServiceUnavailable && body == "circuit open: "+tc.reason
			})
			opened := d.circuit.OpenSince()

			select {
			case <-ran.done:
			case <-time.After(time.Minute):
				t.Fatal("Run did not return within a minute; the circuit has been open all along")
			}
			if want := "circuit open for 3s: " + tc.reason; ran.err == nil || ran.err.Error() != want {
				t.Fatalf("Run: got %v, want %q", ran.err, want)
			}
			if open := time.Since(opened); open < 3*time.Second {
				t.Errorf("Run returned when the circuit had been open for %v, before 3 s", open)
			}
			if !logs.logged("consumer stopped") {
				t.Error(`log: no "consumer stopped": the consumer did not shut down in its order`)
			}
			if left := messagesOn(t, client, queueURL); left != jobs {
				t.Errorf("messages on the queue after the run: got %d, want all %d", left, jobs)
			}
			if dead := messagesOn(t, client, dlqURL); dead != 0 {
				t.Errorf("messages on the dead-letter queue: got %d, want 0 (a refusing service is no job's fault)", dead)
			}
		})
	}
}

// messagesOn is SQS's count of a queue's messages, visible or in flight.
func messagesOn(t *testing.T, client *sqs.Client, queueURL string) int {
	t.Helper()
	out, err := client.GetQueueAttributes(t.Context(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(queueURL),
		AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesDelayed,
		}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, v := range out.Attributes {
		k, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("count %q: %v", v, err)
		}
		n += k
	}
	return n
}

// TestMetricsInAnOutage is what the metrics say while Partner Central is
// out of reach and jobs pile up: why the circuit is open, how many jobs
// wait on the queue beyond the ones held, the dead letters already in the
// dead-letter queue, and the oldest held message ageing though no job
// ends. The worker is a long-running one (no -exit-when-idle).
func TestMetricsInAnOutage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	client := sqs.NewFromConfig(testAWS, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	queueURL := newQueue(t, client, "daemon-outage")
	dlqURL := newQueue(t, client, "daemon-outage-dlq")
	const jobs, held, dead = 60, 10, 3
	for i := range jobs {
		body := fmt.Sprintf(`{"Catalog":"Sandbox","EngagementIdentifier":"eng-o%013d","ContextIdentifier":"1","Type":"CustomerProject",`+
			`"Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},`+
			`"Project":{"Title":"t","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}`, i)
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err)
		}
	}
	for range dead {
		if _, err := client.SendMessage(t.Context(), &sqs.SendMessageInput{QueueUrl: aws.String(dlqURL), MessageBody: aws.String("{}")}); err != nil {
			t.Fatal(err)
		}
	}

	d, err := New(Config{
		QueueURL:               queueURL,
		DLQURL:                 dlqURL,
		Workers:                held,
		MaxHeld:                held,
		WriteRPS:               100,
		ReadRPS:                100,
		DrainTimeout:           time.Second,
		QueueSampleInterval:    time.Second,
		PartnerCentralEndpoint: "http://" + closed,
		SQSEndpoint:            srv.URL,
	}, testAWS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	name, dlqName := queueURL[strings.LastIndex(queueURL, "/")+1:], dlqURL[strings.LastIndex(dlqURL, "/")+1:]

	until(t, time.Minute, "the circuit open for a refused connection", func() (map[string]float64, bool) {
		got := series(t, d, "pcsync_circuit_open_reason")
		return got, got[`reason="connection_refused"`] == 1
	})
	waiting := until(t, 30*time.Second, "the jobs not held counted on the queue", func() (map[string]float64, bool) {
		got := series(t, d, "pcsync_queue_messages")
		return got, got[`queue="`+name+`",state="visible"`] == jobs-held && got[`queue="`+name+`",state="in_flight"`] == held
	})
	t.Logf("pcsync_queue_messages: %v", waiting)
	if got := series(t, d, "pcsync_dead_letter_queue_messages"); got[`dlq="`+dlqName+`",queue="`+name+`"`] != dead {
		t.Errorf("pcsync_dead_letter_queue_messages: got %v, want %d in %s", got, dead, dlqName)
	}
	age := series(t, d, "pcsync_queue_oldest_held_message_age_seconds")[`queue="`+name+`"`]
	until(t, 30*time.Second, "the oldest held message ageing", func() (float64, bool) {
		now := series(t, d, "pcsync_queue_oldest_held_message_age_seconds")[`queue="`+name+`"`]
		return now, now >= age+1
	})
	if got := series(t, d, "pcsync_jobs_total"); got[`outcome="applied",queue="`+name+`"`] != 0 {
		t.Errorf("jobs applied during the outage: got %v, want none", got)
	}
	if got := series(t, d, "pcsync_exit_when_idle_seconds"); got[""] != 0 || len(got) != 1 {
		t.Errorf("pcsync_exit_when_idle_seconds: got %v, want 0 for a long-running worker", got)
	}
	sampled := series(t, d, "pcsync_queue_sample_timestamp_seconds")[`queue="`+name+`"`]
	if ago := time.Since(time.Unix(int64(sampled), 0)); ago > 5*time.Second {
		t.Errorf("queue sampled %v ago, want within the second's interval", ago)
	}
}

// series reads every series of a gauge of the worker's registry, by its
// labels as Prometheus writes them (`a="x",b="y"`).
func series(t *testing.T, d *Daemon, name string) map[string]float64 {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			v := m.GetGauge().GetValue()
			if m.GetCounter() != nil {
				v = m.GetCounter().GetValue()
			}
			out[strings.Join(labels, ",")] = v
		}
	}
	return out
}

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"
)

// messages is a slog handler that keeps the messages logged and closes
// started when the consumer has started, so a test waits for that without
// polling.
type messages struct {
	mu      sync.Mutex
	seen    []string
	started chan struct{}
}

func (h *messages) Enabled(context.Context, slog.Level) bool { return true }
func (h *messages) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *messages) WithGroup(string) slog.Handler            { return h }

func (h *messages) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seen = append(h.seen, r.Message)
	if r.Message == "consumer started" {
		close(h.started)
	}
	return nil
}

func (h *messages) logged(msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Contains(h.seen, msg)
}

// TestRunFailsWhenTheServerFails: a health and metrics server that stops
// serving (here its listener is closed under it) stops the running worker
// in the normal shutdown order, and Run returns the server's error instead
// of working on unseen until SIGTERM.
func TestRunFailsWhenTheServerFails(t *testing.T) {
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	awsCfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}
	client := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	// Every kumo server of a test binary shares one store: a name of its own.
	name := "daemon-server-fails-" + time.Now().Format("150405.000000000")
	name = strings.ReplaceAll(name, ".", "-")
	q, err := client.CreateQueue(t.Context(), &sqs.CreateQueueInput{QueueName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}

	logs := &messages{started: make(chan struct{})}
	d, err := New(Config{
		QueueURL:               aws.ToString(q.QueueUrl),
		Workers:                2,
		WriteRPS:               1,
		ReadRPS:                10,
		DrainTimeout:           time.Second,
		MetricsAddr:            "127.0.0.1:0",
		SQSEndpoint:            srv.URL,
		PartnerCentralEndpoint: "http://127.0.0.1:1", // never called: the queue stays empty
	}, awsCfg, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}

	// Run's ctx is not cancelled before the test ends: only the server's
	// failure can end Run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()

	// Wait until the consumer runs (it has found its queue and started
	// its loops). Whether Serve is already running or not, closing its
	// listener makes it fail.
	select {
	case <-logs.started:
	case err := <-ran:
		t.Fatalf("Run returned before the consumer started: %v", err)
	}

	d.listener.Close()
	select {
	case err := <-ran:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Run: got %v, want the server's error (%v)", err, net.ErrClosed)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after the server failed")
	}
	if !d.consumer.Draining() {
		t.Error("consumer: not shut down")
	}
	if !logs.logged("consumer stopped") {
		t.Error(`log: no "consumer stopped": the consumer did not shut down in its order`)
	}
}

func TestStateFileName(t *testing.T) {
	for _, tc := range []struct {
		queues []string
		want   string
	}{
		{[]string{"pcsync-jobs"}, "pcsync-jobs.db"},
		{[]string{"pcsync-realtime", "pcsync-bulk"}, "pcsync-realtime+pcsync-bulk.db"},
		{[]string{"jobs.fifo"}, "jobs.fifo.db"},
		{[]string{"../etc"}, "_etc.db"},
		{[]string{"."}, "pcsync.db"},
	} {
		if got := StateFileName(tc.queues); got != tc.want {
			t.Errorf("StateFileName(%q): got %q, want %q", tc.queues, got, tc.want)
		}
	}
	long := make([]string, 10)
	for i := range long {
		long[i] = strings.Repeat("q", 80)
	}
	if got := StateFileName(long); len(got) > 255 || StateFileName(long[:9]) == got {
		t.Errorf("ten long names: got %q (%d bytes), want a distinct name under 255 bytes", got, len(got))
	}
}

// stateConfig is a worker configuration on a queue of its own on a kumo
// server, with its state in dir.
func stateConfig(t *testing.T, dir string) (Config, aws.Config) {
	t.Helper()
	srv := kumo.NewServer()
	t.Cleanup(srv.Close)
	awsCfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("test", "test", "")}
	name := strings.ReplaceAll("daemon-state-"+time.Now().Format("150405.000000000"), ".", "-")
	return Config{
		QueueURL: srv.URL + "/000000000000/" + name, Workers: 1, WriteRPS: 1, ReadRPS: 1, WriteBudget: 3,
		DrainTimeout: time.Second, SQSEndpoint: srv.URL, PartnerCentralEndpoint: "http://127.0.0.1:1", StateDir: dir,
	}, awsCfg
}

// TestTheStateFileIsTheWorkersOwn: a second worker on the same queues and
// state directory fails at once, naming the file, instead of sharing it.
func TestTheStateFileIsTheWorkersOwn(t *testing.T) {
	cfg, awsCfg := stateConfig(t, t.TempDir())
	first, err := New(cfg, awsCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer first.state.Close()
	_, err = New(cfg, awsCfg, slog.New(slog.DiscardHandler))
	file := first.state.Path()
	if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), "another worker") {
		t.Errorf("second worker: got %v, want an error naming %s", err, file)
	}
}

// TestUnusableEndpointFailsAtStart: a configuration with which no call to
// Partner Central could go out fails New, naming the rule, before the state
// file is made.
func TestUnusableEndpointFailsAtStart(t *testing.T) {
	dir := t.TempDir()
	cfg, awsCfg := stateConfig(t, dir)
	fips := awsCfg.Copy()
	fips.ConfigSources = []any{config.EnvConfig{UseFIPSEndpoint: aws.FIPSEndpointStateEnabled}}
	noRegion := awsCfg.Copy()
	noRegion.Region = ""
	noEndpoint := cfg
	noEndpoint.PartnerCentralEndpoint = ""
	tests := []struct {
		name   string
		cfg    Config
		awsCfg aws.Config
		want   string
	}{
		{"FIPS with an endpoint", cfg, fips, "FIPS and custom endpoint are not supported"},
		{"no region", noEndpoint, noRegion, "Missing Region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := New(tt.cfg, tt.awsCfg, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				if d != nil && d.state != nil {
					d.state.Close()
				}
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
			if files, _ := os.ReadDir(dir); len(files) != 0 {
				t.Errorf("got %v in the state directory, want nothing made", files)
			}
		})
	}
}

// TestTheBudgetWindowSurvivesARestart: writes recorded by a worker count
// in the budget of the worker that replaces it.
func TestTheBudgetWindowSurvivesARestart(t *testing.T) {
	cfg, awsCfg := stateConfig(t, t.TempDir())
	first, err := New(cfg, awsCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		first.state.RecordWrite(time.Now())
	}
	first.state.Close()
	second, err := New(cfg, awsCfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer second.state.Close()
	if got := gauge(t, second, "pcsync_write_budget_remaining"); got != 1 {
		t.Errorf("write budget left after the restart: got %v, want 1 (3 less the 2 writes before it)", got)
	}
}

// gauge reads a gauge of the worker's registry.
func gauge(t *testing.T, d *Daemon, name string) float64 {
	t.Helper()
	families, err := d.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

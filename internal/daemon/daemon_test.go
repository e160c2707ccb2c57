package daemon

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sivchari/kumo"
)

// syncBuffer is a log sink safe for the worker's many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
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

	logs := &syncBuffer{}
	d, err := New(Config{
		QueueURL:               aws.ToString(q.QueueUrl),
		Workers:                2,
		WriteRPS:               1,
		ReadRPS:                10,
		DrainTimeout:           time.Second,
		MetricsAddr:            "127.0.0.1:0",
		SQSEndpoint:            srv.URL,
		PartnerCentralEndpoint: "http://127.0.0.1:1", // never called: the queue stays empty
	}, awsCfg, slog.New(slog.NewTextHandler(io.MultiWriter(logs, t.Output()), nil)))
	if err != nil {
		t.Fatal(err)
	}

	// Run's ctx is not cancelled before the test ends: only the server's
	// failure can end Run.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- d.Run(ctx) }()

	// Wait until the server answers and the consumer runs (it has found
	// its queue and started its loops).
	waitFor(t, 10*time.Second, "the worker serving and consuming", func() bool {
		if !strings.Contains(logs.String(), "consumer started") {
			return false
		}
		resp, err := http.Get("http://" + d.Addr() + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

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
	if !strings.Contains(logs.String(), "consumer stopped") {
		t.Error(`log: no "consumer stopped": the consumer did not shut down in its order`)
	}
}

// waitFor checks cond every 10 ms until it holds, or fails the test after
// timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-tick.C:
		}
	}
}

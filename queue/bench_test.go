package queue

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The benchmarks measure the consumer layer alone against in-process kumo:
// 20,000 messages, a handler that acks at once. CPU is the whole process's
// (consumer, SDK, kumo), so BenchmarkBareLoop, a plain receive-10 /
// delete-batch-10 loop over the same messages, is the yardstick.

const benchMessages = 20_000

func fillQueue(b *testing.B, client *sqs.Client, url string) {
	b.Helper()
	p := NewProducer(client, url, ProducerConfig{})
	entries := make([]Entry, 1000)
	for done := 0; done < benchMessages; done += len(entries) {
		for i := range entries {
			entries[i] = Entry{Body: fmt.Sprintf(`{"EngagementIdentifier":"eng-%014d","n":%d}`, (done+i)%997, done+i)}
		}
		if _, err := p.Send(context.Background(), entries); err != nil {
			b.Fatal(err)
		}
	}
}

func reportPerMessage(b *testing.B, requests int64, cpu time.Duration, n int) {
	b.ReportMetric(float64(requests)/float64(n), "req/msg")
	b.ReportMetric(float64(cpu.Nanoseconds())/1e3/float64(n), "cpu-µs/msg")
}

func BenchmarkConsumer(b *testing.B) {
	srv := newKumo(b)
	admin := newClient(srv.URL, nil)
	for b.Loop() {
		b.StopTimer()
		url := createQueue(b, admin, queueName(b, ""), nil)
		fillQueue(b, admin, url)
		counter := newRequestCounter()
		c, err := NewConsumer(newClient(srv.URL, counter), Config{
			QueueURL: url, Workers: 32, WaitTime: time.Second, ExitWhenIdle: 200 * time.Millisecond,
		}, handlerFuncs{handle: func(_ context.Context, batch []*Message) []Outcome { return ackAll(batch) }})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC() // the fill's garbage is not the consumer's
		b.StartTimer()
		cpu0 := cpuTime(b)
		if err := c.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
		reportPerMessage(b, counter.total.Load(), cpuTime(b)-cpu0, benchMessages)
	}
}

func BenchmarkBareLoop(b *testing.B) {
	srv := newKumo(b)
	admin := newClient(srv.URL, nil)
	for b.Loop() {
		b.StopTimer()
		url := createQueue(b, admin, queueName(b, ""), nil)
		fillQueue(b, admin, url)
		counter := newRequestCounter()
		client := newClient(srv.URL, counter)
		ids := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
		runtime.GC() // the fill's garbage is not the consumer's
		b.StartTimer()
		cpu0 := cpuTime(b)
		for done := 0; done < benchMessages; {
			out, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
				QueueUrl: &url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1,
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
				MessageAttributeNames:       []string{"All"},
			})
			if err != nil {
				b.Fatal(err)
			}
			if len(out.Messages) == 0 {
				continue
			}
			entries := make([]types.DeleteMessageBatchRequestEntry, len(out.Messages))
			for i, m := range out.Messages {
				entries[i] = types.DeleteMessageBatchRequestEntry{Id: &ids[i], ReceiptHandle: m.ReceiptHandle}
			}
			if _, err := client.DeleteMessageBatch(context.Background(), &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries}); err != nil {
				b.Fatal(err)
			}
			done += len(out.Messages)
		}
		reportPerMessage(b, counter.total.Load(), cpuTime(b)-cpu0, benchMessages)
	}
}

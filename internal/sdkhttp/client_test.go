package sdkhttp

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// lateTransport stands for net/http's transport at its worst: it reads
// the body it is given up to its length, answers, and keeps the body to
// read once more later, as http.Transport's writer goroutine does when
// the machine is busy.
type lateTransport struct {
	sent []byte
	body io.Reader
}

func (l *lateTransport) Do(r *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, r.ContentLength))
	if err != nil {
		return nil, err
	}
	l.sent, l.body = b, r.Body
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:       io.NopCloser(strings.NewReader(`{"Messages":[]}`)),
	}, nil
}

// TestRequestBodyEndsCleanlyAfterTheSDKClosedIt: the SDK closes a request
// body once the response headers are in; net/http may only then read it
// once more to see it end (io.CopyBuffer into io.Discard, as its transfer
// code does), and closes the connection the response is on when that read
// fails. Through Client, it must end cleanly.
func TestRequestBodyEndsCleanlyAfterTheSDKClosedIt(t *testing.T) {
	late := &lateTransport{}
	client := sqs.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *sqs.Options) {
		o.BaseEndpoint = aws.String("http://sqs.test")
		o.HTTPClient = NewClient(late)
	})
	url := "http://sqs.test/000000000000/q.fifo"
	if _, err := client.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: &url, ReceiveRequestAttemptId: aws.String("a1")}); err != nil {
		t.Fatalf("receive: %v", err)
	}
	if !strings.Contains(string(late.sent), `"ReceiveRequestAttemptId":"a1"`) {
		t.Errorf("body sent: got %s, want the request", late.sent)
	}
	if n, err := io.CopyBuffer(io.Discard, late.body, make([]byte, 512)); err != nil || n != 0 {
		t.Errorf("late read of the closed request body: got %d bytes, %v; want its end (0, nil)", n, err)
	}
}

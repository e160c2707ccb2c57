// Package sdkhttp owns one workaround in how the AWS SDK for Go v2 hands its
// requests to net/http; every SQS and DynamoDB client pcsync builds sends
// through it. Endpoints, credentials, retries and timeouts stay the SDK's.
package sdkhttp

import (
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// Client sends each request through the SDK's HTTP client with its body cut
// down to Read and Close.
//
// The SDK (smithy-go) wraps every request body in a reader whose WriteTo
// returns io.EOF once it is closed, and closes it as soon as the response
// headers are in. net/http, after sending a body of known length, reads it
// once more to see it end; when that read comes late (a busy machine, a
// service that answered at once), it goes through WriteTo, takes the io.EOF
// for a failure, and closes the connection, cutting the response still
// being read: "use of closed network connection". The SDK retries that
// error by itself, so a ReceiveMessage cut so loses its messages without a
// trace until their visibility timeout, and a SendMessageBatch cut so sends
// its messages twice. Read on a closed body ends with a plain io.EOF,
// which net/http takes for the end it expected.
type Client struct {
	next aws.HTTPClient
}

// NewClient returns a Client that sends through next, as an SDK client's
// options resolve it:
//
//	sqs.NewFromConfig(cfg, func(o *sqs.Options) { o.HTTPClient = sdkhttp.NewClient(o.HTTPClient) })
func NewClient(next aws.HTTPClient) *Client {
	return &Client{next: next}
}

// Do sends r through the next client. It may be called concurrently.
func (c *Client) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	// A shallow copy, as http.Request.WithContext makes: the caller's
	// request is not changed.
	out := *r
	out.Body = readCloser{r.Body}
	return c.next.Do(&out)
}

// readCloser hides every method of a body but Read and Close.
type readCloser struct {
	io.ReadCloser
}

// Package devstack runs pcsync's local stack in one process: an SQS
// emulator (kumo, embedded) with the job queue and its dead-letter queue,
// and the Partner Central simulator, both on loopback. It backs
// "devstack up", the demo, the end-to-end tests and the benchmark.
//
// It does not own the worker: it only provides what the worker talks to.
package devstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/sivchari/kumo"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/internal/fleet"
	"github.com/pcsync/pcsync/internal/sdkhttp"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// The credentials the stack accepts and prints. The simulator verifies
// signatures made with them, as the real service would with real ones.
const (
	AccessKeyID     = "devstack"
	SecretAccessKey = "devstack-secret"
	Region          = "us-east-1"
)

// Options size the stack.
type Options struct {
	// SQSAddr and PCAddr are the listen addresses; "" or a :0 port picks a
	// free one.
	SQSAddr, PCAddr string
	// Queue is the job queue's name; its dead-letter queue is Queue+"-dlq".
	// A name ending in .fifo makes both FIFO queues.
	Queue string
	// MaxReceiveCount is the RedrivePolicy's: after that many receives SQS
	// itself moves a message to the dead-letter queue. 0 means 25.
	MaxReceiveCount int
	// Sim configures the Partner Central simulator; its Credentials are
	// set to the stack's.
	Sim pcsim.Options
	// Engagements pre-creates that many engagements, eng-00000000000001
	// and on, each with a CustomerProject context "1" and a Lead context "2".
	Engagements int
}

// Stack is a running local stack.
type Stack struct {
	// SQSURL and PCURL are the endpoints (http://127.0.0.1:port).
	SQSURL, PCURL string
	// QueueURL and DLQURL are the queues' URLs.
	QueueURL, DLQURL string
	// StateTable is a fleet state table (internal/fleet) in the emulator's
	// DynamoDB, at SQSURL too: workers use it when given -state-table.
	StateTable string
	// Sim is the Partner Central simulator, for its knobs and state.
	Sim *pcsim.Server
	// SQS is a client of the emulator.
	SQS *sqs.Client

	kumoMu   sync.Mutex
	kumo     *kumo.Server
	target   atomic.Pointer[url.URL]
	sqsProxy *http.Server
}

// RestartSQS stops the SQS emulator and starts a new one behind the same
// address, as a restart of the service would look to a worker: calls in
// flight fail, the next ones reach the new emulator. Queues and messages
// survive: kumo keeps them per process.
func (s *Stack) RestartSQS() {
	s.kumoMu.Lock()
	defer s.kumoMu.Unlock()
	s.kumo.Close()
	s.kumo = kumo.NewServer()
	u, _ := url.Parse(s.kumo.URL)
	s.target.Store(u)
}

// EngagementID is the id of the n-th pre-created engagement (from 1).
func EngagementID(n int) string { return fmt.Sprintf("eng-%014d", n) }

// Start starts the stack. Close it when done.
func Start(ctx context.Context, o Options) (*Stack, error) {
	if o.Queue == "" {
		o.Queue = "pcsync-jobs"
	}
	if o.MaxReceiveCount == 0 {
		o.MaxReceiveCount = 25
	}
	s := &Stack{kumo: kumo.NewServer()}
	// kumo listens on a port of its own choosing; a reverse proxy gives it
	// the address asked for. Its queues are shared by every kumo server in
	// the process, so several stacks need distinct queue names.
	target, _ := url.Parse(s.kumo.URL)
	s.target.Store(target)
	ln, err := net.Listen("tcp", orLoopback(o.SQSAddr))
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("sqs listener: %w", err)
	}
	s.SQSURL = "http://" + ln.Addr().String()
	s.sqsProxy = &http.Server{Handler: newSQSProxy(s.target.Load, nil), ReadHeaderTimeout: 10 * time.Second}
	go s.sqsProxy.Serve(ln)

	o.Sim.Credentials = map[string]string{AccessKeyID: SecretAccessKey}
	if o.Sim.Region == "" {
		o.Sim.Region = Region
	}
	s.Sim, err = pcsim.Listen(orLoopback(o.PCAddr), o.Sim)
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("partner central simulator: %w", err)
	}
	s.PCURL = s.Sim.URL

	s.SQS = sqs.NewFromConfig(s.AWSConfig(), func(o *sqs.Options) {
		o.BaseEndpoint = aws.String(s.SQSURL)
		o.HTTPClient = sdkhttp.NewClient(o.HTTPClient)
	})
	if err := s.createQueues(ctx, o); err != nil {
		s.Close()
		return nil, err
	}
	s.StateTable = strings.TrimSuffix(o.Queue, ".fifo") + "-state"
	db := dynamodb.NewFromConfig(s.AWSConfig(), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(s.SQSURL)
		o.HTTPClient = sdkhttp.NewClient(o.HTTPClient)
	})
	if err := fleet.CreateTable(ctx, db, s.StateTable); err != nil {
		s.Close()
		return nil, err
	}
	for n := 1; n <= o.Engagements; n++ {
		if err := s.Sim.AddEngagement(pcsim.NewEngagement{Id: EngagementID(n), Catalog: "Sandbox", Contexts: []pcsim.NewContext{
			{Id: "1", Type: types.EngagementContextTypeCustomerProject},
			{Id: "2", Type: types.EngagementContextTypeLead},
		}}); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// newSQSProxy forwards every request to the emulator target points at,
// through transport (nil: http.DefaultTransport).
func newSQSProxy(target func() *url.URL, transport http.RoundTripper) http.Handler {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target())
			r.Out.Host = r.In.Host // kumo names queues after the host it is asked on
		},
		Transport:      transport,
		ModifyResponse: withDynamoDBChecksum,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			// A client that gave up (a long poll cancelled at shutdown) is
			// routine; the emulator being gone is a 502 the SDK retries.
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The request is read whole before it is forwarded. Streamed
		// through, it got answers cut short under load: after sending a
		// body, http.Transport reads it once more to see it end, and the
		// emulator may have answered by then (a receive finding messages
		// answers at once). The server closes a request body as soon as
		// the handler starts its response (an HTTP/1 handler may not read
		// the request after writing the answer: golang/go#15527, #40747),
		// so that last read fails, the transport closes its connection to
		// the emulator, and the client gets a 200 whose body stops short:
		// "unexpected EOF". The messages in a receive cut so stay in
		// flight, held by nobody, for their visibility timeout. A body in
		// memory cannot be closed under the transport; the emulator reads
		// every body into memory anyway.
		body, err := io.ReadAll(r.Body)
		if err != nil {
			// The client went away before its request was complete.
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		proxy.ServeHTTP(w, r)
	})
}

// withDynamoDBChecksum gives a DynamoDB answer the X-Amz-Crc32 header
// DynamoDB sends with every answer and kumo does not. The SDK checks every
// answer's body against it, taking a missing header for a checksum of 0, and
// warns of a mismatch on each: hundreds of warnings a minute in a worker's
// log on the local stack.
func withDynamoDBChecksum(resp *http.Response) error {
	if !strings.HasPrefix(resp.Request.Header.Get("X-Amz-Target"), "DynamoDB_") || resp.Header.Get("X-Amz-Crc32") != "" {
		return nil
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	resp.Header.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	resp.Header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.ContentLength = int64(len(body))
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return nil
}

func orLoopback(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

func (s *Stack) createQueues(ctx context.Context, o Options) error {
	fifo := len(o.Queue) > 5 && o.Queue[len(o.Queue)-5:] == ".fifo"
	dlqName := o.Queue + "-dlq"
	attrs := map[string]string{}
	if fifo {
		dlqName = o.Queue[:len(o.Queue)-5] + "-dlq.fifo"
		attrs["FifoQueue"] = "true"
	}
	dlq, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(dlqName), Attributes: attrs})
	if err != nil {
		return fmt.Errorf("create %s: %w", dlqName, err)
	}
	s.DLQURL = aws.ToString(dlq.QueueUrl)
	got, err := s.SQS.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: dlq.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("read %s's ARN: %w", dlqName, err)
	}
	arn := got.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
	if arn == "" {
		return errors.New("the emulator returned no ARN for the dead-letter queue")
	}
	policy, _ := json.Marshal(map[string]string{"deadLetterTargetArn": arn, "maxReceiveCount": strconv.Itoa(o.MaxReceiveCount)})
	attrs = map[string]string{"RedrivePolicy": string(policy), "VisibilityTimeout": "30"}
	if fifo {
		attrs["FifoQueue"] = "true"
	}
	q, err := s.SQS.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(o.Queue), Attributes: attrs})
	if err != nil {
		return fmt.Errorf("create %s: %w", o.Queue, err)
	}
	s.QueueURL = aws.ToString(q.QueueUrl)
	return nil
}

// AWSConfig is an SDK configuration for the stack's credentials and
// region, built by hand rather than by config.LoadDefaultConfig: the
// user's own AWS profile and environment must not matter to a local run.
// Endpoints are not in it; WorkerConfig and the SQS client set them.
func (s *Stack) AWSConfig() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		HTTPClient:  awshttp.NewBuildableClient(),
	}
}

// WorkerConfig is a worker configuration pointed at the stack: its queues
// and both endpoints. The caller sets the rest (workers, rates, ...).
func (s *Stack) WorkerConfig() daemon.Config {
	return daemon.Config{
		QueueURL:               s.QueueURL,
		DLQURL:                 s.DLQURL,
		SQSEndpoint:            s.SQSURL,
		PartnerCentralEndpoint: s.PCURL,
		DynamoDBEndpoint:       s.SQSURL,
	}
}

// Env is what a worker needs to talk to the stack, as environment
// variables.
func (s *Stack) Env() []string {
	return []string{
		"PCSYNC_QUEUE_URL=" + s.QueueURL,
		"PCSYNC_DLQ_URL=" + s.DLQURL,
		"AWS_ENDPOINT_URL_SQS=" + s.SQSURL,
		"AWS_ENDPOINT_URL_PARTNERCENTRAL_SELLING=" + s.PCURL,
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.SQSURL,
		"AWS_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=" + AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + SecretAccessKey,
	}
}

// Close stops the stack. The emulator's queues live on in the process.
func (s *Stack) Close() {
	if s.sqsProxy != nil {
		s.sqsProxy.Close()
	}
	if s.Sim != nil {
		s.Sim.Close()
	}
	s.kumoMu.Lock()
	defer s.kumoMu.Unlock()
	if s.kumo != nil {
		s.kumo.Close()
	}
}

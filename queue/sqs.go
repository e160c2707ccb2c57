package queue

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
)

// SQS is the part of the Amazon SQS API the Consumer calls; *sqs.Client
// implements it. It is declared here, by its user, so tests and wrappers
// (request counting, tracing) only need these six methods.
type SQS interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

// Sender is the one call a Producer makes.
type Sender interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Operation names passed to Observer.SQSCall and Observer.BatchEntryFailed.
const (
	OpReceiveMessage               = "ReceiveMessage"
	OpDeleteMessageBatch           = "DeleteMessageBatch"
	OpChangeMessageVisibilityBatch = "ChangeMessageVisibilityBatch"
	OpSendMessageBatch             = "SendMessageBatch"
	OpGetQueueAttributes           = "GetQueueAttributes"
	OpGetQueueURL                  = "GetQueueUrl"
)

// Error codes reported for failures that carry no SQS error code.
const (
	CodeCanceled  = "Canceled"
	CodeTimeout   = "Timeout"
	CodeTransport = "TransportError"
)

// The SQS batch APIs take at most this many entries, and ReceiveMessage
// returns at most this many messages.
const sqsBatchMax = 10

// maxVisibility is SQS's limit on how long a message may stay invisible,
// counted from the receive that handed it out.
const maxVisibility = 12 * time.Hour

// callTimeout bounds every SQS call but a long poll, so a connection that
// hangs without an error cannot stall a loop for good.
const callTimeout = 15 * time.Second

// errorCode reduces an error from the SDK to a short code fit for a metric
// label and a log field: the service's error code when there is one, else
// one of the Code* constants. It returns "" for nil.
func errorCode(err error) string {
	if err == nil {
		return ""
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	switch {
	case errors.Is(err, context.Canceled):
		return CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return CodeTimeout
	}
	return CodeTransport
}

// isQueueMissing reports whether err says the queue does not exist. SQS's
// JSON protocol calls it QueueDoesNotExist; the query-compatible code (which
// kumo sends) is AWS.SimpleQueueService.NonExistentQueue.
func isQueueMissing(err error) bool {
	switch errorCode(err) {
	case "QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue":
		return true
	}
	return false
}

// isPermanent reports whether retrying the same call cannot help: the queue
// is missing, the address is malformed, the caller is not allowed, or the
// configuration is wrong. At start-up such errors end Run at once instead of
// being retried forever.
func isPermanent(err error) bool {
	if errors.Is(err, ErrInvalidConfig) || isQueueMissing(err) {
		return true
	}
	switch errorCode(err) {
	case "InvalidAddress", "AccessDenied", "AccessDeniedException", "InvalidSecurity",
		"UnrecognizedClientException", "InvalidClientTokenId", "KmsAccessDenied":
		return true
	}
	return false
}

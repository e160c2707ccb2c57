package queue

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"golang.org/x/time/rate"
)

// DLQClient is the part of the SQS API the dead-letter tools call;
// *sqs.Client implements it.
type DLQClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
	GetQueueAttributes(ctx context.Context, in *sqs.GetQueueAttributesInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueAttributesOutput, error)
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, optFns ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
}

// DeadLetterQueueURL returns the dead-letter queue named by a queue's
// RedrivePolicy, or an error saying the queue has none.
func DeadLetterQueueURL(ctx context.Context, client DLQClient, queueURL string) (string, error) {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl:       &queueURL,
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return "", fmt.Errorf("read attributes of queue %s: %w", queueURL, err)
	}
	policy := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]
	if policy == "" {
		return "", fmt.Errorf("queue %s has no RedrivePolicy: name the dead-letter queue", queueURL)
	}
	arn, err := deadLetterTarget(policy)
	if err != nil {
		return "", err
	}
	return lookupQueueURL(ctx, client, arn)
}

// DLQMessage is one message of a dead-letter queue, as the Consumer left it.
type DLQMessage struct {
	MessageID       string
	Body            string
	Class           string // AttrErrorClass
	Reason          string // AttrErrorReason
	SourceMessageID string
	ReceiveCount    int       // of the original, when it was dead-lettered
	DeadLetteredAt  time.Time // zero if unknown
	GroupID         string    // MessageGroupId on a FIFO queue
	// Attributes are the original message's attributes, without the
	// dead-letter ones.
	Attributes map[string]types.MessageAttributeValue

	receiptHandle string
}

// dlqVisibility hides a message while a tool works on it. Short, so that a
// crashed tool loses nothing for long; the scan extends it for as long as
// it runs.
const dlqVisibility = 2 * time.Minute

// scanQuietReceives is how many receives in a row that bring nothing new end
// a scan: one empty receive can be SQS sampling too few servers.
const scanQuietReceives = 3

// scanDLQ receives every message of the queue once, up to max (0: no
// limit), and hands each batch to fn, which returns the messages it
// consumed (deleted). The others stay hidden, their visibility extended
// while the scan lasts, so that none is seen twice or missed; scanDLQ hands
// them all back (visibility 0) before it returns, whatever happened.
func scanDLQ(ctx context.Context, client DLQClient, url string, max int, fn func([]DLQMessage) ([]DLQMessage, error)) error {
	seen := map[string]bool{}
	hidden := map[string]DLQMessage{}
	extendedAt := time.Now()
	quiet := 0
	var scanErr error
	for scanErr == nil && quiet < scanQuietReceives && (max <= 0 || len(seen) < max) {
		if time.Since(extendedAt) > dlqVisibility/3 {
			if err := changeVisibility(ctx, client, url, values(hidden), dlqVisibility); err != nil {
				scanErr = fmt.Errorf("keep listed messages hidden: %w", err)
				break
			}
			extendedAt = time.Now()
		}
		out, err := client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    &url,
			MaxNumberOfMessages:         sqsBatchMax,
			VisibilityTimeout:           int32(dlqVisibility / time.Second),
			WaitTimeSeconds:             1,
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameMessageGroupId},
		})
		if err != nil {
			scanErr = fmt.Errorf("receive from %s: %w", url, err)
			break
		}
		var batch []DLQMessage
		for _, m := range out.Messages {
			d := newDeadLetter(m)
			switch {
			case seen[d.MessageID]:
				// Back again (a visibility that ran out): keep the newest
				// receipt handle, which is the one SQS honours.
				if _, ok := hidden[d.MessageID]; ok {
					hidden[d.MessageID] = d
				}
				continue
			case max > 0 && len(seen) >= max:
				hidden[d.MessageID] = d // over the limit: handed back untouched
				continue
			}
			seen[d.MessageID] = true
			hidden[d.MessageID] = d
			batch = append(batch, d)
		}
		if len(batch) == 0 {
			quiet++
			continue
		}
		quiet = 0
		consumed, err := fn(batch)
		for _, d := range consumed {
			delete(hidden, d.MessageID)
		}
		scanErr = err
	}
	relCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return errors.Join(scanErr, changeVisibility(relCtx, client, url, values(hidden), 0))
}

func values(m map[string]DLQMessage) []DLQMessage {
	out := make([]DLQMessage, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	return out
}

func newDeadLetter(m types.Message) DLQMessage {
	d := DLQMessage{
		MessageID:     deref(m.MessageId),
		Body:          deref(m.Body),
		GroupID:       m.Attributes[string(types.MessageSystemAttributeNameMessageGroupId)],
		Attributes:    map[string]types.MessageAttributeValue{},
		receiptHandle: deref(m.ReceiptHandle),
	}
	for k, v := range m.MessageAttributes {
		s := deref(v.StringValue)
		switch k {
		case AttrErrorClass:
			d.Class = s
		case AttrErrorReason:
			d.Reason = s
		case AttrSourceMessageID:
			d.SourceMessageID = s
		case AttrReceiveCount:
			d.ReceiveCount, _ = strconv.Atoi(s)
		case AttrDeadLetteredAt:
			d.DeadLetteredAt, _ = time.Parse(time.RFC3339Nano, s)
		default:
			d.Attributes[k] = v
		}
	}
	return d
}

// changeVisibility sets the visibility of messages, in batches.
func changeVisibility(ctx context.Context, client DLQClient, url string, msgs []DLQMessage, vis time.Duration) error {
	var errs []error
	for len(msgs) > 0 {
		n := min(len(msgs), sqsBatchMax)
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: addr(strconv.Itoa(i)), ReceiptHandle: addr(m.receiptHandle), VisibilityTimeout: int32(vis / time.Second)}
		}
		out, err := client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			errs = append(errs, err)
		} else {
			for _, f := range out.Failed {
				errs = append(errs, fmt.Errorf("change visibility of entry %s: %s", deref(f.Id), deref(f.Message)))
			}
		}
		msgs = msgs[n:]
	}
	return errors.Join(errs...)
}

func addr[T any](v T) *T { return &v }

// Browse lists up to max messages (0: all) of a dead-letter queue without
// consuming them: each is hidden while the list is made, then made visible
// again before Browse returns, so the queue is as it was.
func Browse(ctx context.Context, client DLQClient, dlqURL string, max int) ([]DLQMessage, error) {
	var all []DLQMessage
	err := scanDLQ(ctx, client, dlqURL, max, func(b []DLQMessage) ([]DLQMessage, error) {
		all = append(all, b...)
		return nil, nil
	})
	return all, err
}

// RedriveOptions say which dead letters go back and how fast.
type RedriveOptions struct {
	// Source is the queue the messages go back to. Required.
	Source string
	// Match selects the messages to move; nil moves all.
	Match func(DLQMessage) bool
	// Rate bounds the messages moved per second; 0 means no bound.
	Rate float64
	// Max bounds the messages scanned; 0 means the whole queue.
	Max int
	// DryRun moves nothing: it only counts and lists what would move.
	DryRun bool
	// GroupID names the message group of a message sent to a FIFO source
	// when the dead letter has none; nil leaves it empty.
	GroupID func(DLQMessage) string
	// Moved, if set, is called for every message moved (or, in a dry run,
	// that would be).
	Moved func(DLQMessage)
}

// RedriveResult counts what a redrive did.
type RedriveResult struct {
	Scanned, Matched, Moved, Failed int
}

// Redrive moves dead letters back to their source queue: each matching
// message is sent to the source first and deleted from the dead-letter
// queue only once the send succeeded, so a failure at any point leaves the
// message in one queue or, at worst, in both, never in neither. Messages
// that do not match, or failed to move, are made visible again.
func Redrive(ctx context.Context, client DLQClient, dlqURL string, o RedriveOptions) (RedriveResult, error) {
	var res RedriveResult
	if o.Source == "" {
		return res, errors.New("redrive: no source queue")
	}
	producer := NewProducer(client, o.Source, ProducerConfig{})
	var limiter *rate.Limiter
	if o.Rate > 0 {
		limiter = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	err := scanDLQ(ctx, client, dlqURL, o.Max, func(batch []DLQMessage) ([]DLQMessage, error) {
		res.Scanned += len(batch)
		var move []DLQMessage
		for _, d := range batch {
			if o.Match == nil || o.Match(d) {
				move = append(move, d)
			}
		}
		res.Matched += len(move)
		if o.DryRun || len(move) == 0 {
			for _, d := range move {
				if o.Moved != nil {
					o.Moved(d)
				}
			}
			return nil, nil
		}
		if limiter != nil {
			for range move {
				if err := limiter.Wait(ctx); err != nil {
					return nil, err
				}
			}
		}
		entries := make([]Entry, len(move))
		for i, d := range move {
			entries[i] = Entry{ID: d.MessageID, Body: d.Body, Attributes: d.Attributes, GroupID: d.GroupID}
			if entries[i].GroupID == "" && o.GroupID != nil {
				entries[i].GroupID = o.GroupID(d)
			}
		}
		sent, _ := producer.Send(ctx, entries)
		var done []DLQMessage
		for i, d := range move {
			if i < len(sent.MessageIDs) && sent.MessageIDs[i] != "" {
				done = append(done, d)
			} else {
				res.Failed++
			}
		}
		if err := deleteDeadLetters(ctx, client, dlqURL, done); err != nil {
			// Sent but not deleted: the job is in both queues. A later
			// redrive would send it again, and the worker apply the same
			// payload twice; say so rather than hide it.
			return nil, fmt.Errorf("moved %d messages but could not delete them from %s (a second redrive would send them again): %w", len(done), dlqURL, err)
		}
		res.Moved += len(done)
		for _, d := range done {
			if o.Moved != nil {
				o.Moved(d)
			}
		}
		return done, nil
	})
	return res, err
}

func deleteDeadLetters(ctx context.Context, client DLQClient, url string, msgs []DLQMessage) error {
	var errs []error
	for len(msgs) > 0 {
		n := min(len(msgs), sqsBatchMax)
		entries := make([]types.DeleteMessageBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: addr(strconv.Itoa(i)), ReceiptHandle: addr(m.receiptHandle)}
		}
		out, err := client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			errs = append(errs, err)
		} else {
			for _, f := range out.Failed {
				errs = append(errs, fmt.Errorf("delete entry %s: %s", deref(f.Id), deref(f.Message)))
			}
		}
		msgs = msgs[n:]
	}
	return errors.Join(errs...)
}

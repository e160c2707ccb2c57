package queue

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/retry"
)

// Errors of a Producer's entries, wrapped in an *EntryError.
var (
	// ErrInvalidEntry: SQS would refuse the entry; nothing was sent.
	ErrInvalidEntry = errors.New("invalid message")
	// ErrTooLarge: body and attributes exceed the size limit; nothing was sent.
	ErrTooLarge = errors.New("message too large")
	// ErrRejected: SQS refused the entry, or it still failed after the
	// last attempt.
	ErrRejected = errors.New("message not sent")
)

// MaxMessageSize is SQS's limit on one message, body and attributes
// together, and on the payload of one SendMessageBatch call.
const MaxMessageSize = 1 << 20

// maxDelay is SQS's limit on a message's delay.
const maxDelay = 15 * time.Minute

// ProducerConfig tunes a Producer; zero fields take their defaults.
type ProducerConfig struct {
	// MaxAttempts bounds the calls made for one entry. Default 5.
	MaxAttempts int
	// BackoffBase is the first wait before a retry; it doubles per
	// attempt up to BackoffMax. Defaults 200 ms and 5 s.
	BackoffBase, BackoffMax time.Duration
	// MaxMessageSize is the size limit checked before sending; lower it to
	// the queue's MaximumMessageSize if that is set lower. Default 1 MiB.
	MaxMessageSize int
	// Observer receives SQSCall and BatchEntryFailed. Default NopObserver.
	Observer Observer
	// Logger receives retry notices at debug level. Default: discard.
	Logger *slog.Logger
}

// Entry is one message to send.
type Entry struct {
	// ID names the entry in errors (a job id, "line 42"); optional.
	ID string
	// Body is the message body, 1 byte to MaxMessageSize with attributes.
	Body string
	// Attributes are message attributes, at most ten.
	Attributes map[string]types.MessageAttributeValue
	// GroupID is the MessageGroupId; required on a FIFO queue. On a FIFO
	// queue it is what keeps one key's messages in order across replicas.
	GroupID string
	// DeduplicationID is for FIFO queues only. When empty on a FIFO queue,
	// the SHA-256 of GroupID and Body is used, as content-based
	// deduplication would.
	DeduplicationID string
	// Delay hides the message for up to 15 minutes; standard queues only.
	Delay time.Duration
}

// size is the size SQS counts against its limit: the body plus, for each
// attribute, its name, data type and value.
func (e *Entry) size() int {
	n := len(e.Body)
	for name, v := range e.Attributes {
		n += attrSize(name, v)
	}
	return n
}

func attrSize(name string, v types.MessageAttributeValue) int {
	n := len(name) + len(deref(v.DataType)) + len(deref(v.StringValue)) + len(v.BinaryValue)
	for _, s := range v.StringListValues {
		n += len(s)
	}
	for _, b := range v.BinaryListValues {
		n += len(b)
	}
	return n
}

// EntryError says why one entry was not sent.
type EntryError struct {
	Index int    // position in the Send call
	ID    string // Entry.ID, if set
	Code  string // SQS's error code, when SQS refused the entry
	Err   error
}

func (e *EntryError) Error() string {
	name := "entry " + strconv.Itoa(e.Index)
	if e.ID != "" {
		name += " (" + e.ID + ")"
	}
	return name + ": " + e.Err.Error()
}

func (e *EntryError) Unwrap() error { return e.Err }

// SendResult says what became of each entry of a Send call.
type SendResult struct {
	// MessageIDs[i] is the SQS message id of entries[i], or "" if it was
	// not sent.
	MessageIDs []string
	// Failed lists the entries not sent, in order.
	Failed []*EntryError
}

// Producer sends messages to one queue in batches of up to ten. It is safe
// for concurrent use.
type Producer struct {
	client Sender
	url    string
	fifo   bool
	cfg    ProducerConfig
}

// NewProducer returns a Producer for queueURL. A URL ending in ".fifo" is a
// FIFO queue: every entry then needs a GroupID.
func NewProducer(client Sender, queueURL string, cfg ProducerConfig) *Producer {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.BackoffBase <= 0 {
		cfg.BackoffBase = 200 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = 5 * time.Second
	}
	if cfg.MaxMessageSize <= 0 || cfg.MaxMessageSize > MaxMessageSize {
		cfg.MaxMessageSize = MaxMessageSize
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Producer{client: client, url: queueURL, fifo: isFIFOURL(queueURL), cfg: cfg}
}

// Send sends entries in batches of up to ten (and up to MaxMessageSize per
// batch). Every entry is checked first; if one is invalid or too large,
// nothing is sent and the error names each bad entry. Entries that fail to
// send are retried with backoff, up to MaxAttempts calls, unless SQS says
// the fault is the entry's. The result tells which entries were sent; the
// error, when not nil, joins an *EntryError per entry that was not.
//
// A retried call whose first response was lost can enqueue a message twice
// on a standard queue; on a FIFO queue the deduplication id prevents that.
func (p *Producer) Send(ctx context.Context, entries []Entry) (SendResult, error) {
	res := SendResult{MessageIDs: make([]string, len(entries))}
	sizes := make([]int, len(entries))
	for i := range entries {
		var err error
		sizes[i], err = p.check(&entries[i])
		if err != nil {
			res.Failed = append(res.Failed, &EntryError{Index: i, ID: entries[i].ID, Err: err})
		}
	}
	if len(res.Failed) > 0 {
		return res, p.failure(res, len(entries))
	}

	for start := 0; start < len(entries); {
		end, total := start, 0
		for end < len(entries) && end-start < sqsBatchMax && total+sizes[end] <= p.cfg.MaxMessageSize {
			total += sizes[end]
			end++
		}
		p.sendBatch(ctx, entries, start, end, &res)
		start = end
	}
	if len(res.Failed) > 0 {
		return res, p.failure(res, len(entries))
	}
	return res, nil
}

func (p *Producer) failure(res SendResult, total int) error {
	errs := make([]error, len(res.Failed))
	for i, f := range res.Failed {
		errs[i] = f
	}
	return fmt.Errorf("send to %s: %d of %d messages not sent: %w", p.url, len(res.Failed), total, errors.Join(errs...))
}

// check validates an entry the way SQS would and returns its size.
func (p *Producer) check(e *Entry) (int, error) {
	size := e.size()
	switch {
	case e.Body == "":
		return size, fmt.Errorf("%w: body is empty", ErrInvalidEntry)
	case size > p.cfg.MaxMessageSize:
		return size, fmt.Errorf("%w: %d bytes (body %d, attributes %d), over the %d-byte limit",
			ErrTooLarge, size, len(e.Body), size-len(e.Body), p.cfg.MaxMessageSize)
	case len(e.Attributes) > maxMessageAttributes:
		return size, fmt.Errorf("%w: %d message attributes, SQS allows %d", ErrInvalidEntry, len(e.Attributes), maxMessageAttributes)
	case e.Delay < 0 || e.Delay > maxDelay:
		return size, fmt.Errorf("%w: delay %v is outside 0 to 15m", ErrInvalidEntry, e.Delay)
	case p.fifo && e.GroupID == "":
		return size, fmt.Errorf("%w: a FIFO queue needs a GroupID", ErrInvalidEntry)
	case p.fifo && e.Delay != 0:
		return size, fmt.Errorf("%w: a FIFO queue takes no per-message delay", ErrInvalidEntry)
	case !p.fifo && e.DeduplicationID != "":
		return size, fmt.Errorf("%w: DeduplicationID is for FIFO queues only", ErrInvalidEntry)
	}
	if at, r, ok := invalidChar(e.Body); !ok {
		return size, fmt.Errorf("%w: body has character %U at byte %d, which SQS does not accept", ErrInvalidEntry, r, at)
	}
	for name, v := range e.Attributes {
		if deref(v.DataType) == "" {
			return size, fmt.Errorf("%w: attribute %q has no DataType", ErrInvalidEntry, name)
		}
		if deref(v.StringValue) == "" && len(v.BinaryValue) == 0 {
			return size, fmt.Errorf("%w: attribute %q has no value", ErrInvalidEntry, name)
		}
	}
	return size, nil
}

// invalidChar finds the first character SQS refuses in a body: SQS accepts
// #x9, #xA, #xD, #x20-#xD7FF, #xE000-#xFFFD and #x10000-#x10FFFF, in UTF-8.
func invalidChar(s string) (int, rune, bool) {
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return i, r, false
			}
		case r == 0x9 || r == 0xA || r == 0xD:
		case r < 0x20, r > 0xD7FF && r < 0xE000, r == 0xFFFE || r == 0xFFFF:
			return i, r, false
		}
	}
	return 0, 0, true
}

// sendBatch sends entries[start:end] in one call, then retries the entries
// that failed for reasons other than their own.
func (p *Producer) sendBatch(ctx context.Context, entries []Entry, start, end int, res *SendResult) {
	pending := make([]int, 0, end-start)
	for i := start; i < end; i++ {
		pending = append(pending, i)
	}
	fail := func(i int, code string, err error) {
		res.Failed = append(res.Failed, &EntryError{Index: i, ID: entries[i].ID, Code: code, Err: err})
	}
	for attempt := 1; len(pending) > 0; attempt++ {
		if attempt > 1 && !retry.Sleep(ctx, backoff(attempt-1, p.cfg.BackoffBase, p.cfg.BackoffMax)) {
			for _, i := range pending {
				fail(i, "", fmt.Errorf("%w: %w", ErrRejected, context.Cause(ctx)))
			}
			return
		}
		last := attempt >= p.cfg.MaxAttempts
		out, err := p.call(ctx, entries, pending)
		if err != nil {
			if last || isPermanent(err) || ctx.Err() != nil {
				for _, i := range pending {
					fail(i, errorCode(err), fmt.Errorf("%w after %d attempts: %w", ErrRejected, attempt, err))
				}
				return
			}
			p.cfg.Logger.Debug("send failed; retrying", "queue", p.url, "messages", len(pending), "attempt", attempt, "err", err)
			continue
		}

		done := make(map[int]bool, len(pending))
		for _, s := range out.Successful {
			if k, ok := entryIndex(s.Id, len(pending)); ok {
				res.MessageIDs[pending[k]] = deref(s.MessageId)
				done[k] = true
			}
		}
		var retry []int
		for _, f := range out.Failed {
			k, ok := entryIndex(f.Id, len(pending))
			if !ok {
				continue
			}
			done[k] = true
			code := deref(f.Code)
			p.cfg.Observer.BatchEntryFailed(OpSendMessageBatch, code)
			switch {
			case f.SenderFault:
				fail(pending[k], code, fmt.Errorf("%w: SQS refused it: %s: %s", ErrRejected, code, deref(f.Message)))
			case last:
				fail(pending[k], code, fmt.Errorf("%w after %d attempts: %s: %s", ErrRejected, attempt, code, deref(f.Message)))
			default:
				retry = append(retry, pending[k])
			}
		}
		for k, i := range pending {
			if done[k] {
				continue
			}
			// Neither sent nor refused: SQS's answer was incomplete.
			if last {
				fail(i, "", fmt.Errorf("%w after %d attempts: no result for the entry", ErrRejected, attempt))
				continue
			}
			retry = append(retry, i)
		}
		if len(retry) > 0 {
			p.cfg.Logger.Debug("some messages not sent; retrying", "queue", p.url, "messages", len(retry), "attempt", attempt)
		}
		pending = retry
	}
}

// call makes one SendMessageBatch call; entry Ids are positions in pending.
func (p *Producer) call(ctx context.Context, entries []Entry, pending []int) (*sqs.SendMessageBatchOutput, error) {
	in := &sqs.SendMessageBatchInput{
		QueueUrl: &p.url,
		Entries:  make([]types.SendMessageBatchRequestEntry, len(pending)),
	}
	for k, i := range pending {
		e := &entries[i]
		id := strconv.Itoa(k)
		body := e.Body
		be := types.SendMessageBatchRequestEntry{
			Id:                &id,
			MessageBody:       &body,
			MessageAttributes: e.Attributes,
			DelaySeconds:      int32(e.Delay / time.Second),
		}
		if e.GroupID != "" {
			g := e.GroupID
			be.MessageGroupId = &g
		}
		if p.fifo {
			d := e.DeduplicationID
			if d == "" {
				sum := sha256.Sum256([]byte(e.GroupID + "\x00" + e.Body))
				d = hex.EncodeToString(sum[:])
			}
			be.MessageDeduplicationId = &d
		}
		in.Entries[k] = be
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	start := time.Now()
	out, err := p.client.SendMessageBatch(cctx, in)
	p.cfg.Observer.SQSCall(OpSendMessageBatch, errorCode(err), time.Since(start))
	return out, err
}

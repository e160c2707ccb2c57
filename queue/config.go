package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
)

// ErrInvalidConfig is wrapped by every error NewConsumer returns for a bad Config.
var ErrInvalidConfig = errors.New("invalid queue config")

// Defaults applied by NewConsumer to zero fields of Config.
const (
	DefaultWorkers       = 16
	DefaultWaitTime      = 20 * time.Second
	DefaultDrainTimeout  = 30 * time.Second
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultKeepDelay     = 5 * time.Minute
	// DefaultSampleInterval: one GetQueueAttributes call per queue and
	// per dead-letter queue every 30 s costs 2,880 requests a day each.
	DefaultSampleInterval = 30 * time.Second
)

// Limits checked by NewConsumer.
const (
	maxWorkers        = 4096
	maxPollers        = 64
	maxHeldLimit      = 100_000
	maxBatchLimit     = 1000
	maxFlushInterval  = 10 * time.Second
	maxWaitTime       = 20 * time.Second
	maxSampleInterval = time.Hour
)

// Source is one queue a Consumer consumes.
type Source struct {
	// URL is the queue's URL. Required.
	URL string
	// DLQURL is the queue's dead-letter queue for DeadLetter outcomes; it
	// must be a FIFO queue exactly when the queue is one. When empty, Run
	// discovers it from the queue's RedrivePolicy; when the queue has none,
	// dead-letter outcomes keep the message on the queue (see KeepDelay).
	DLQURL string
}

// Config configures a Consumer. Every field but the queues (Queues, or
// QueueURL for one) has a default that NewConsumer applies when the field
// is zero.
type Config struct {
	// Queues are the queues to consume, in priority order, first highest.
	// They share the workers and the key lanes: a free worker always starts
	// the lane whose waiting messages include the highest priority, and a
	// key's messages never run at the same time whichever queue they came
	// from. Each queue has its own pollers and its own MaxHeld, so a full
	// prefetch of a low-priority queue never keeps a message of a higher
	// one from being received. FIFO and standard queues may be mixed; no
	// URL may appear twice, and no two queues may share a name (the last
	// segment of the URL, Message.Queue), which tells them apart in logs
	// and metrics.
	Queues []Source
	// QueueURL is the shorthand for one queue: Queues = [{QueueURL, DLQURL}].
	// Set it or Queues, not both.
	QueueURL string
	// DLQURL is the dead-letter queue of QueueURL; see Source.DLQURL.
	DLQURL string

	// Workers is the number of messages (batches) handled at once. Default 16.
	Workers int
	// Pollers is the number of concurrent ReceiveMessage loops of each
	// queue. Default: one per eight workers, at least 1 and at most 8.
	Pollers int
	// MaxHeld bounds the messages held at once from each queue: received
	// and not yet deleted or handed back. A queue's pollers receive only
	// while there is room for a full batch of that queue. The bound is per
	// queue so that a full prefetch of one queue never keeps another's
	// messages from being received; the Consumer holds at most
	// len(Queues)*MaxHeld messages. Default 2*Workers + 10*Pollers; at
	// least Workers.
	MaxHeld int
	// MaxBatch is the most messages of one key handed to one Handle call.
	// Default 1.
	MaxBatch int

	// WaitTime is the long-poll wait of ReceiveMessage, 1 s to 20 s.
	// Default 20 s.
	WaitTime time.Duration
	// VisibilityTimeout is asked for on every receive and renewed by the
	// heartbeat; 1 s to 12 h, whole seconds. Default: each queue's own
	// VisibilityTimeout attribute, read when Run starts.
	VisibilityTimeout time.Duration
	// DrainTimeout bounds how long Run waits for running handlers after
	// its context is cancelled. Default 30 s.
	DrainTimeout time.Duration
	// FlushInterval is the longest a delete or visibility change waits for
	// its batch to fill. Default 100 ms.
	FlushInterval time.Duration
	// KeepDelay is how long a message whose dead letter could not be sent
	// (no dead-letter queue, or the send failed) stays invisible before it
	// comes back. Default 5 min.
	KeepDelay time.Duration
	// ExitWhenIdle, when set, makes Run return nil once nothing was received
	// from any queue and nothing was held for that long and SQS counts no
	// message on any of the queues; or, while it still counts some (in
	// flight after a lost receive response, held by another consumer,
	// delayed), once the quiet has lasted ExitWhenIdle + the longest
	// VisibilityTimeout of the queues + WaitTime (batch runs). Default 0:
	// never.
	ExitWhenIdle time.Duration
	// SampleInterval is how often SQS is asked how many messages each
	// queue and its dead-letter queue hold (one GetQueueAttributes call
	// each), for Depths. 1 s to 1 h; default 30 s.
	SampleInterval time.Duration

	// Gate, when set, is consulted before every receive.
	Gate Gate
	// Observer receives events for metrics. Default NopObserver.
	Observer Observer
	// Logger receives the consumer's logs. Default: discard.
	Logger *slog.Logger
}

// resolve validates cfg and returns it with defaults applied. Every error
// names the field and the rule it breaks; all of them are reported at once.
func (cfg Config) resolve() (Config, error) {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}

	cfg.Queues = cfg.checkQueues(bad)

	intField := func(name string, v *int, lo, hi int, def func() int) {
		switch {
		case *v == 0:
			*v = def()
		case *v < lo || *v > hi:
			bad("%s must be between %d and %d, got %d", name, lo, hi, *v)
		}
	}
	intField("Workers", &cfg.Workers, 1, maxWorkers, func() int { return DefaultWorkers })
	intField("Pollers", &cfg.Pollers, 1, maxPollers, func() int { return min(max(cfg.Workers/8, 1), 8) })
	intField("MaxHeld", &cfg.MaxHeld, 1, maxHeldLimit, func() int { return 2*cfg.Workers + sqsBatchMax*cfg.Pollers })
	intField("MaxBatch", &cfg.MaxBatch, 1, maxBatchLimit, func() int { return 1 })
	if cfg.MaxHeld > 0 && cfg.Workers > 0 && cfg.MaxHeld < cfg.Workers {
		bad("MaxHeld must be at least Workers (%d), got %d", cfg.Workers, cfg.MaxHeld)
	}
	if cfg.MaxBatch > cfg.MaxHeld && cfg.MaxHeld > 0 {
		bad("MaxBatch must be at most MaxHeld (%d), got %d", cfg.MaxHeld, cfg.MaxBatch)
	}

	durField := func(name string, v *time.Duration, lo, hi, def time.Duration) {
		switch {
		case *v == 0:
			*v = def
		case *v < lo || *v > hi:
			bad("%s must be between %v and %v, got %v", name, lo, hi, *v)
		}
	}
	durField("WaitTime", &cfg.WaitTime, time.Second, maxWaitTime, DefaultWaitTime)
	if cfg.WaitTime%time.Second != 0 {
		bad("WaitTime must be whole seconds, got %v", cfg.WaitTime)
	}
	if cfg.VisibilityTimeout != 0 {
		switch {
		case cfg.VisibilityTimeout < time.Second || cfg.VisibilityTimeout > maxVisibility:
			bad("VisibilityTimeout must be between 1s and 12h, got %v", cfg.VisibilityTimeout)
		case cfg.VisibilityTimeout%time.Second != 0:
			bad("VisibilityTimeout must be whole seconds, got %v", cfg.VisibilityTimeout)
		}
	}
	durField("DrainTimeout", &cfg.DrainTimeout, time.Millisecond, time.Hour, DefaultDrainTimeout)
	durField("FlushInterval", &cfg.FlushInterval, time.Millisecond, maxFlushInterval, DefaultFlushInterval)
	durField("KeepDelay", &cfg.KeepDelay, time.Second, maxVisibility, DefaultKeepDelay)
	durField("SampleInterval", &cfg.SampleInterval, time.Second, maxSampleInterval, DefaultSampleInterval)
	if cfg.ExitWhenIdle < 0 {
		bad("ExitWhenIdle must not be negative, got %v", cfg.ExitWhenIdle)
	}

	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg, errors.Join(errs...)
}

// checkQueues validates the queues and returns them as Queues, the
// shorthand QueueURL turned into a one-entry list. Errors name the field as
// the caller wrote it: QueueURL and DLQURL, or Queues[i] with its URL.
func (cfg Config) checkQueues(bad func(format string, args ...any)) []Source {
	switch {
	case len(cfg.Queues) == 0 && cfg.QueueURL == "":
		bad("no queue to consume (Queues is empty): QueueURL is required")
		return nil
	case len(cfg.Queues) == 0:
		q := Source{URL: cfg.QueueURL, DLQURL: cfg.DLQURL}
		checkSource(q, "QueueURL", "DLQURL", "", bad)
		return []Source{q}
	case cfg.QueueURL != "" || cfg.DLQURL != "":
		bad("QueueURL and DLQURL are the shorthand for one queue: leave them empty when Queues is set (%d queues)", len(cfg.Queues))
	}
	queues := slices.Clone(cfg.Queues)
	byURL := make(map[string]int, len(queues))
	byName := make(map[string]int, len(queues))
	for i, q := range queues {
		field := fmt.Sprintf("Queues[%d]", i)
		checkSource(q, field+".URL", field+".DLQURL", fmt.Sprintf(" (%s)", q.URL), bad)
		if q.URL == "" {
			continue
		}
		if j, dup := byURL[q.URL]; dup {
			bad("%s.URL repeats Queues[%d].URL: %s", field, j, q.URL)
			continue
		}
		byURL[q.URL] = i
		name := QueueName(q.URL)
		if j, dup := byName[name]; dup {
			bad("%s.URL (%s) has the queue name %q of Queues[%d].URL; logs and metrics tell the queues apart by name", field, q.URL, name, j)
		}
		byName[name] = i
	}
	// A dead-letter queue that is also consumed would hand its dead
	// letters to the handler again.
	for i, q := range queues {
		if j, consumed := byURL[q.DLQURL]; consumed && q.DLQURL != "" && j != i {
			bad("Queues[%d].DLQURL (%s) is consumed as Queues[%d].URL; a dead-letter queue must not be consumed", i, q.DLQURL, j)
		}
	}
	return queues
}

// checkSource validates one queue and its dead-letter queue; urlField and
// dlqField name them in errors, and where (may be "") names the queue.
func checkSource(q Source, urlField, dlqField, where string, bad func(format string, args ...any)) {
	switch {
	case q.URL == "":
		bad("%s is required", urlField)
	case !isAbsoluteURL(q.URL):
		bad("%s must be an absolute URL, got %q", urlField, q.URL)
	}
	if q.DLQURL == "" {
		return
	}
	switch {
	case !isAbsoluteURL(q.DLQURL):
		bad("%s must be an absolute URL, got %q%s", dlqField, q.DLQURL, where)
	case q.DLQURL == q.URL:
		bad("%s must differ from %s%s", dlqField, urlField, where)
	case isFIFOURL(q.DLQURL) != isFIFOURL(q.URL):
		bad("%s must be a FIFO queue (.fifo) exactly when %s is one, got %q for %q", dlqField, urlField, q.DLQURL, q.URL)
	}
}

func isAbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != ""
}

// isFIFOURL reports whether a queue URL names a FIFO queue: SQS requires
// FIFO queue names to end in ".fifo".
func isFIFOURL(queueURL string) bool {
	return strings.HasSuffix(queueURL, ".fifo")
}

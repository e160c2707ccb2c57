package queue

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
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
)

// Limits checked by NewConsumer.
const (
	maxWorkers       = 4096
	maxPollers       = 64
	maxHeldLimit     = 100_000
	maxBatchLimit    = 1000
	maxFlushInterval = 10 * time.Second
	maxWaitTime      = 20 * time.Second
)

// Config configures a Consumer. Every field but QueueURL has a default that
// NewConsumer applies when the field is zero.
type Config struct {
	// QueueURL is the queue to consume. Required.
	QueueURL string
	// DLQURL is the dead-letter queue for DeadLetter outcomes. When empty,
	// Run discovers it from the queue's RedrivePolicy; when the queue has
	// none, dead-letter outcomes keep the message on the queue (see KeepDelay).
	DLQURL string

	// Workers is the number of messages (batches) handled at once. Default 16.
	Workers int
	// Pollers is the number of concurrent ReceiveMessage loops. Default:
	// one per eight workers, at least 1 and at most 8.
	Pollers int
	// MaxHeld bounds the messages held at once: received and not yet
	// deleted or handed back. Pollers receive only while there is room for
	// a full batch. Default 2*Workers + 10*Pollers; at least Workers.
	MaxHeld int
	// MaxBatch is the most messages of one key handed to one Handle call.
	// Default 1.
	MaxBatch int

	// WaitTime is the long-poll wait of ReceiveMessage, 1 s to 20 s.
	// Default 20 s.
	WaitTime time.Duration
	// VisibilityTimeout is asked for on every receive and renewed by the
	// heartbeat; 1 s to 12 h, whole seconds. Default: the queue's
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
	// and nothing was held for that long and SQS counts no message on the
	// queue; or, while it still counts some (in flight after a lost
	// receive response, held by another consumer, delayed), once the quiet
	// has lasted ExitWhenIdle + VisibilityTimeout + WaitTime (batch runs).
	// Default 0: never.
	ExitWhenIdle time.Duration

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

	if cfg.QueueURL == "" {
		bad("QueueURL is required")
	} else if !isAbsoluteURL(cfg.QueueURL) {
		bad("QueueURL must be an absolute URL, got %q", cfg.QueueURL)
	}
	if cfg.DLQURL != "" {
		switch {
		case !isAbsoluteURL(cfg.DLQURL):
			bad("DLQURL must be an absolute URL, got %q", cfg.DLQURL)
		case cfg.DLQURL == cfg.QueueURL:
			bad("DLQURL must differ from QueueURL")
		case isFIFOURL(cfg.DLQURL) != isFIFOURL(cfg.QueueURL):
			bad("DLQURL must be a FIFO queue (.fifo) exactly when QueueURL is one, got %q for %q", cfg.DLQURL, cfg.QueueURL)
		}
	}

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

func isAbsoluteURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && u.Host != ""
}

// isFIFOURL reports whether a queue URL names a FIFO queue: SQS requires
// FIFO queue names to end in ".fifo".
func isFIFOURL(queueURL string) bool {
	return strings.HasSuffix(queueURL, ".fifo")
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// ErrAlreadyRun is returned by Run when the Consumer has been run before.
var ErrAlreadyRun = errors.New("queue consumer: Run called twice")

// Handler is the job the Consumer runs. Both methods are called from many
// goroutines at once.
type Handler interface {
	// Key names the lane of a message (for pcsync, the engagement).
	// Messages with the same key are never handled at the same time by one
	// Consumer, whichever queue they came from, and are handled in the
	// order they were received; different keys run in parallel. "" means
	// the MessageGroupId, or, on a standard queue, a lane of its own. Key
	// is called once per message, on the receive path: it must be fast.
	Key(m *Message) string
	// Handle handles every message waiting in one lane, in receive order,
	// at most Config.MaxBatch of them (usually one), and returns one Outcome
	// per message, in the same order. A batch may hold messages of several
	// queues (Message.Queue); each outcome is carried out on its message's
	// own queue. Messages of the key that arrive while Handle runs wait for
	// the next call. ctx is cancelled only when the drain deadline passes
	// during shutdown. The batch slice is reused after Handle returns: do
	// not keep it (keeping the *Message is fine).
	Handle(ctx context.Context, batch []*Message) []Outcome
}

// Gate lets another part of the daemon (the circuit breaker) stop the
// Consumer from taking new messages. Wait is called before every receive and
// blocks while receiving must not happen; it returns nil to allow the receive
// or ctx's error when ctx is done. Another error is treated like a failed
// receive: logged once per streak and retried with backoff. Messages already
// held are kept, heartbeated and handled while the gate is closed.
type Gate interface {
	Wait(ctx context.Context) error
}

// Timings of the shutdown that are not worth a knob.
const (
	// receiveStopGrace lets a receive already in flight when shutdown
	// starts return what SQS handed it (those messages are then released
	// at once) instead of cancelling it, which would leave them invisible
	// for a whole visibility timeout. An idle long poll is cancelled after it.
	receiveStopGrace = 500 * time.Millisecond
	// abandonGrace is how long handlers get to return after their context
	// is cancelled at the drain deadline.
	abandonGrace = time.Second
	// flushTimeout bounds the final flush of deletes and visibility changes.
	flushTimeout = 10 * time.Second
)

// Consumer receives messages from one or more SQS queues, in priority
// order, and runs them through a Handler on one pool of workers. Make one
// with NewConsumer and call Run once.
type Consumer struct {
	client SQS
	h      Handler
	cfg    Config
	log    *slog.Logger
	obs    Observer

	srcs      []*source // the queues, by priority; see sources.go
	recvBatch int       // messages asked for per receive: min(10, MaxHeld)
	batchIDs  []string  // "0".."9": entry ids for batch calls

	// Set by Run before any goroutine starts, read-only afterwards.
	hbTick time.Duration // heartbeat period: a quarter of the shortest visibility timeout

	started  atomic.Bool
	draining atomic.Bool

	ready   *readyLanes   // lanes with waiting messages, not running; see ready.go
	visKick chan struct{} // a final visibility change is pending; see heartbeat.go
	del     *deleter

	mu        sync.Mutex
	lanes     map[string]*lane
	freeLanes []*lane
	held      map[*Message]struct{} // of every queue; each source counts its own
	finals    []*Message            // pending visibility changes that end a hold
	urgent    bool                  // send finals now, not after FlushInterval
	stopping  bool                  // shutdown began: no lane starts, arrivals are released
	busy      int                   // workers inside the handler or applying its outcome
	lastBusy  time.Time             // last receive with messages, or last time held dropped to 0
}

// NewConsumer checks cfg, applies its defaults and returns a Consumer. It
// makes no SQS call; Run does.
func NewConsumer(client SQS, cfg Config, h Handler) (*Consumer, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: SQS client is nil", ErrInvalidConfig)
	}
	if h == nil {
		return nil, fmt.Errorf("%w: Handler is nil", ErrInvalidConfig)
	}
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	srcs := newSources(cfg.Queues, cfg.Logger)
	c := &Consumer{
		client:    client,
		h:         h,
		cfg:       cfg,
		log:       cfg.Logger,
		obs:       cfg.Observer,
		srcs:      srcs,
		recvBatch: min(sqsBatchMax, cfg.MaxHeld),
		batchIDs:  make([]string, sqsBatchMax),
		ready:     newReadyLanes(len(srcs), len(srcs)*cfg.MaxHeld),
		visKick:   make(chan struct{}, 1),
		lanes:     make(map[string]*lane),
		held:      make(map[*Message]struct{}, cfg.MaxHeld),
	}
	for i := range c.batchIDs {
		c.batchIDs[i] = strconv.Itoa(i)
	}
	c.del = newDeleter(c)
	return c, nil
}

// Draining reports whether shutdown has begun: the Consumer takes no new
// messages and finishes the running ones. For a readiness probe.
func (c *Consumer) Draining() bool { return c.draining.Load() }

// Health reports whether SQS answers for every queue: nil when Run has
// found each queue (read its attributes) and, for a queue whose latest
// call failed, the queue answered within the last 2 × (WaitTime + 10 s),
// twice the longest a ReceiveMessage may take; otherwise an error naming
// each queue in trouble, "sqs: queue pcsync-bulk: no answer for 45s: <the
// last error>", which wraps that error. The calls that count are
// ReceiveMessage and GetQueueAttributes. A queue nobody asks (its pollers
// wait for room or for the Gate) keeps what its last call said. It is safe
// for concurrent use and cheap (a lock per queue, no SQS call), for a
// readiness probe.
func (c *Consumer) Health() error {
	bound := 2 * (c.cfg.WaitTime + receiveSlack)
	var errs []error
	for _, s := range c.srcs {
		if err := s.health.check(s.name, bound); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Held is the number of messages held from all queues: received and not
// yet deleted, released or given up. It is safe for concurrent use, for a
// gauge read at scrape time.
func (c *Consumer) Held() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// Busy is the number of workers inside the handler or applying its outcome.
// It is safe for concurrent use, for a gauge read at scrape time.
func (c *Consumer) Busy() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.busy
}

// Run consumes until ctx is cancelled (or, with ExitWhenIdle, until every
// queue stays idle), then shuts down in this order and returns:
//
//  1. Stop receiving from every queue. Pollers take no new room; a receive
//     in flight gets receiveStopGrace (0.5 s) to return, then it is
//     cancelled. Draining reports true from here on. The queues' depth is
//     no longer sampled (a sample in flight is cancelled).
//  2. Release what was never started, of every queue at once: every
//     message waiting in a lane, and whatever a late receive brought, is
//     handed back to its own queue with
//     ChangeMessageVisibilityBatch(VisibilityTimeout 0), in batches of ten
//     messages of one queue.
//  3. Drain: running handlers finish and their outcomes are applied as
//     usual, while the heartbeat keeps their messages invisible, until
//     DrainTimeout after the start of the shutdown.
//  4. Deadline: the handlers' context is cancelled. Handlers that return
//     within abandonGrace (1 s) have their outcomes applied; the messages
//     of the others are abandoned: they are no longer extended and reappear
//     on the queue when their visibility runs out, and the outcomes those
//     handlers return later are ignored. Run then waits for them to return,
//     logging once that it does: a handler that ignores cancellation holds
//     up the rest of the shutdown (deletes and visibility changes already
//     pending still go out meanwhile, as during the drain), and one that
//     never returns keeps Run from returning.
//  5. Flush: pending deletes, then pending visibility changes (retries,
//     releases), of every queue, are sent to each message's own queue,
//     within flushTimeout (10 s). What cannot be sent is logged; those
//     messages reappear and are handled again.
//  6. The heartbeat stops and Run returns.
//
// No goroutine of the Consumer, and no call into the Handler, outlives Run:
// once Run returns, the caller may close what the Handler uses.
//
// Run returns nil after a shutdown, whatever was left to reappear (that is
// logged). It returns an error only when it cannot start: a queue does not
// exist or may not be read, or the dead-letter queue named by a queue's
// RedrivePolicy does not exist. Transient SQS errors never end Run: every
// loop backs off and retries.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return ErrAlreadyRun
	}
	now := time.Now()
	for _, s := range c.srcs {
		s.health.start(now)
	}
	if err := c.prepare(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	c.log.Info("consumer started", "workers", c.cfg.Workers, "pollers_per_queue", c.cfg.Pollers,
		"max_held_per_queue", c.cfg.MaxHeld, "max_batch", c.cfg.MaxBatch, "queues", sourceList(c.srcs))

	// The loops that must outlive ctx (handlers during the drain, deletes
	// and visibility changes during the flush) get contexts of their own
	// that keep ctx's values but not its cancellation.
	base := context.WithoutCancel(ctx)
	recvCtx, cancelRecv := context.WithCancel(base)
	defer cancelRecv()
	handlerCtx, cancelHandlers := context.WithCancel(base)
	defer cancelHandlers()
	ioCtx, cancelIO := context.WithCancel(base)
	defer cancelIO()
	stopCtx, stop := context.WithCancel(ctx)
	defer stop()

	c.mu.Lock()
	c.lastBusy = time.Now()
	for _, s := range c.srcs {
		s.lastReceive = c.lastBusy
	}
	c.mu.Unlock()

	var hbWG, delWG, workWG, pollWG, sampleWG sync.WaitGroup
	hbStop, delStop, workStop := make(chan struct{}), make(chan struct{}), make(chan struct{})
	hbWG.Go(func() { c.heartbeat(ioCtx, hbStop) })
	delWG.Go(func() { c.del.run(ioCtx, delStop) })
	for range c.cfg.Workers {
		workWG.Go(func() { c.work(handlerCtx, ioCtx, workStop) })
	}
	for _, s := range c.srcs {
		for range c.cfg.Pollers {
			pollWG.Go(func() { c.poll(stopCtx, recvCtx, s) })
		}
	}
	sampleWG.Go(func() { c.sampleDepths(stopCtx) })

	idle := c.waitForStop(stopCtx)
	shutdownStart := time.Now()
	drainDeadline := shutdownStart.Add(c.cfg.DrainTimeout)
	if idle {
		c.log.Info("queue idle; shutting down", "idle_for", c.cfg.ExitWhenIdle)
	} else {
		c.log.Info("shutting down", "drain_timeout", c.cfg.DrainTimeout)
	}

	// 1. Stop receiving; 2. release what never started.
	c.draining.Store(true)
	stop()
	released := c.releaseWaiting()
	pollsDone := doneWhen(&pollWG)
	if !closedWithin(pollsDone, receiveStopGrace) {
		cancelRecv()
		<-pollsDone
	}
	sampleWG.Wait()

	// 3. Drain the running handlers; 4. cancel them at the deadline,
	// abandon the messages of those that overrun the grace, and wait for
	// those handlers all the same.
	close(workStop)
	workDone := doneWhen(&workWG)
	abandoned := 0
	if !closedWithin(workDone, time.Until(drainDeadline)) {
		cancelHandlers()
		if !closedWithin(workDone, abandonGrace) {
			var running int
			abandoned, running = c.abandonRunning()
			c.log.Warn("waiting for handlers that ignore cancellation; shutdown continues when they return",
				"handlers", running, "abandoned", abandoned)
			<-workDone
		}
	}

	// 5. Flush deletes first: they need the heartbeat until they are done.
	// Then flush the visibility changes and stop the heartbeat (6).
	flushTimer := time.AfterFunc(flushTimeout, cancelIO)
	defer flushTimer.Stop()
	close(delStop)
	delWG.Wait()
	close(hbStop)
	hbWG.Wait()

	c.mu.Lock()
	left := len(c.held)
	c.mu.Unlock()
	c.log.Info("consumer stopped", "released", released, "abandoned", abandoned,
		"left_to_reappear", left, "took", time.Since(shutdownStart).Round(time.Millisecond))
	return nil
}

// releaseWaiting starts the shutdown under the lock: no lane starts any
// more, and every waiting message, of every queue, is handed back with
// visibility 0.
func (c *Consumer) releaseWaiting() int {
	c.mu.Lock()
	c.stopping = true
	n := 0
	for _, l := range c.lanes {
		n += c.releaseLaneLocked(l, nil)
		if l.queued {
			c.ready.remove(l)
		}
		c.retireLocked(l)
	}
	for _, s := range c.srcs {
		if s.room != nil {
			close(s.room)
			s.room = nil
		}
	}
	c.mu.Unlock()
	if n > 0 {
		c.obs.Released(n)
	}
	c.kickVisibility()
	return n
}

// abandonRunning gives up the messages of handlers that overran the drain
// deadline: the heartbeat stops extending them, so they reappear. It returns
// how many messages it gave up and how many workers are still busy.
func (c *Consumer) abandonRunning() (abandoned, busy int) {
	type given struct {
		m            *Message
		visibleUntil time.Time
	}
	var gone []given
	c.mu.Lock()
	for m := range c.held {
		if m.state == stateRunning {
			c.unholdLocked(m)
			m.state = stateAbandoned
			gone = append(gone, given{m, m.visibleUntil})
		}
	}
	busy = c.busy
	c.mu.Unlock()
	for _, g := range gone {
		g.m.src.log.Warn("handler still running after the drain deadline; message left to reappear",
			"message_id", g.m.ID, "key", g.m.Key(), "visible_in", time.Until(g.visibleUntil).Round(time.Second))
	}
	return len(gone), busy
}

// finishLocked ends the hold of m.
func (c *Consumer) finishLocked(m *Message) {
	if c.unholdLocked(m) {
		m.state = stateDone
	}
}

// unholdLocked takes m out of the held messages, reporting whether it was
// held. The caller wakes m's pollers (roomChangedLocked) when it is done.
func (c *Consumer) unholdLocked(m *Message) bool {
	if _, ok := c.held[m]; !ok {
		return false
	}
	delete(c.held, m)
	m.src.held--
	if len(c.held) == 0 {
		c.lastBusy = time.Now()
	}
	return true
}

// setFinalLocked schedules the visibility change that hands m back after d.
func (c *Consumer) setFinalLocked(m *Message, d time.Duration, kind finalKind) {
	m.state = stateFinal
	m.final = kind
	m.finalVis = visibilitySeconds(d, time.Until(m.expiresAt))
	c.finals = append(c.finals, m)
	if kind == finalRelease || len(c.finals) >= sqsBatchMax {
		c.urgent = true
	}
}

// visibilitySeconds converts d to the whole seconds SQS takes, rounding up
// so that a message never comes back before d, and capping at what is left
// of the 12 h limit.
func visibilitySeconds(d, left time.Duration) int32 {
	s := (d + time.Second - 1) / time.Second
	s = min(s, left/time.Second)
	return int32(max(s, 0))
}

// doneWhen returns a channel closed when wg's goroutines have all
// returned. Its one goroutine ends then too, so a caller that goes on to
// wait for the channel leaves nothing behind.
func doneWhen(wg *sync.WaitGroup) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}

// closedWithin waits at most d for done to be closed and reports whether
// it was.
func closedWithin(done <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(max(d, 0))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

package queue

import (
	"context"
	"runtime/debug"
	"slices"
	"strings"
)

// A lane holds the waiting messages of one key, in receive order, whatever
// queue they came from. At most one worker runs a lane at a time; that is
// what keeps one key's messages from overlapping. Lanes live in
// Consumer.lanes while they have waiting messages or run, and a lane with
// waiting messages that is not running is listed in Consumer.ready exactly
// once (queued), at its priority; see ready.go. All fields are guarded by
// Consumer.mu.
type lane struct {
	key     string
	buf     []*Message
	head    int   // buf[head:] are waiting
	waiting []int // waiting messages by queue priority
	running bool
	queued  bool

	listed     int   // the priority it is listed at, while queued
	prev, next *lane // neighbours in its ready list, while queued
}

func (l *lane) len() int { return len(l.buf) - l.head }

func (l *lane) push(m *Message) {
	l.buf = append(l.buf, m)
	l.waiting[m.src.priority]++
}

func (l *lane) pop() *Message {
	m := l.buf[l.head]
	l.buf[l.head] = nil
	l.head++
	if l.head == len(l.buf) {
		l.buf, l.head = l.buf[:0], 0
	}
	l.waiting[m.src.priority]--
	return m
}

// priority is the highest priority (lowest index) among the waiting
// messages; the lane must have one.
func (l *lane) priority() int {
	for p, n := range l.waiting {
		if n > 0 {
			return p
		}
	}
	return len(l.waiting) - 1
}

// laneLocked returns the lane of key, making it if needed. Lanes are
// recycled: a standard queue with unkeyed messages makes one per message.
func (c *Consumer) laneLocked(key string) *lane {
	if l, ok := c.lanes[key]; ok {
		return l
	}
	var l *lane
	if n := len(c.freeLanes); n > 0 {
		l = c.freeLanes[n-1]
		c.freeLanes = c.freeLanes[:n-1]
	} else {
		l = &lane{waiting: make([]int, len(c.srcs))}
	}
	l.key = key
	c.lanes[key] = l
	return l
}

// retireLocked forgets a lane that has nothing left to do.
func (c *Consumer) retireLocked(l *lane) {
	if l.running || l.queued || l.len() > 0 {
		return
	}
	if c.lanes[l.key] == l {
		delete(c.lanes, l.key)
	}
	l.key = ""
	if len(c.freeLanes) < c.cfg.Workers*2 {
		c.freeLanes = append(c.freeLanes, l)
	}
}

// releaseLaneLocked hands back with visibility 0 the waiting messages of l
// that came from only, or all of them when only is nil, and returns how
// many; the caller reports them once it has unlocked. The others keep their
// order.
func (c *Consumer) releaseLaneLocked(l *lane, only *source) int {
	n, kept := 0, l.head
	for i := l.head; i < len(l.buf); i++ {
		m := l.buf[i]
		l.buf[i] = nil
		if only != nil && m.src != only {
			l.buf[kept] = m
			kept++
			continue
		}
		l.waiting[m.src.priority]--
		c.setFinalLocked(m, 0, finalRelease)
		n++
	}
	l.buf = l.buf[:kept]
	if l.head == len(l.buf) {
		l.buf, l.head = l.buf[:0], 0
	}
	return n
}

// work is one worker: it takes a ready lane, hands its waiting messages to
// the handler and applies the outcomes, until stop is closed. hctx is the
// handlers' context; ioCtx is for the SQS calls that apply outcomes.
func (c *Consumer) work(hctx, ioCtx context.Context, stop <-chan struct{}) {
	buf := make([]*Message, 0, c.cfg.MaxBatch)
	for {
		select {
		case <-stop:
			return
		case <-c.ready.tokens:
			l, batch := c.take(buf[:0])
			if l == nil {
				continue
			}
			outs := c.handle(hctx, batch)
			c.settle(ioCtx, l, batch, outs)
			clear(batch)
		}
	}
}

// take starts the ready lane of the highest priority: it moves up to
// MaxBatch waiting messages into batch, in receive order (a batch may mix
// queues). It returns a nil lane when none is ready or shutdown has begun.
func (c *Consumer) take(batch []*Message) (*lane, []*Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping {
		return nil, nil
	}
	l := c.ready.pop()
	if l == nil {
		return nil, nil
	}
	for l.len() > 0 && len(batch) < c.cfg.MaxBatch {
		m := l.pop()
		m.state = stateRunning
		batch = append(batch, m)
	}
	l.running = true
	c.busy++
	return l, batch
}

// handle calls the handler and makes its answer usable: one valid outcome
// per message. A panic or a missing outcome is the handler's bug; the
// message then comes back after the visibility timeout, as after a crash,
// and the bug is logged.
func (c *Consumer) handle(ctx context.Context, batch []*Message) (outs []Outcome) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("handler panicked; its messages will come back after the visibility timeout",
				"panic", r, "key", batch[0].Key(), "queue", batchQueues(batch), "messages", len(batch), "stack", string(debug.Stack()))
			outs = nil
		} else if len(outs) != len(batch) {
			c.log.Error("handler returned the wrong number of outcomes; messages without one will come back after the visibility timeout",
				"key", batch[0].Key(), "queue", batchQueues(batch), "messages", len(batch), "outcomes", len(outs))
		}
		if len(outs) < len(batch) {
			outs = append(outs, make([]Outcome, len(batch)-len(outs))...)
		}
	}()
	return c.h.Handle(ctx, batch)
}

// batchQueues names the queues of a batch's messages, for a log: one name,
// or several joined by commas, in priority order.
func batchQueues(batch []*Message) string {
	var srcs []*source
	for _, m := range batch {
		if !slices.Contains(srcs, m.src) {
			srcs = append(srcs, m.src)
		}
	}
	slices.SortFunc(srcs, func(a, b *source) int { return a.priority - b.priority })
	names := make([]string, len(srcs))
	for i, s := range srcs {
		names[i] = s.name
	}
	return strings.Join(names, ",")
}

// settle applies the outcomes of one batch and ends the lane's turn.
func (c *Consumer) settle(ctx context.Context, l *lane, batch []*Message, outs []Outcome) {
	var acks, dead []*Message
	var deadOuts []Outcome
	var backFIFO []*source // FIFO queues with a message going back
	retried, released := 0, 0
	c.mu.Lock()
	for i, m := range batch {
		if m.state != stateRunning {
			continue // abandoned at the drain deadline
		}
		switch o := outs[i]; o.kind {
		case OutcomeAck:
			m.state = stateDeleting
			acks = append(acks, m)
		case OutcomeRetry:
			c.setFinalLocked(m, o.delay, finalRetry)
			retried++
			if m.src.fifo && !slices.Contains(backFIFO, m.src) {
				backFIFO = append(backFIFO, m.src)
			}
		case OutcomeDeadLetter:
			m.state = stateDeadLettering
			dead = append(dead, m)
			deadOuts = append(deadOuts, o)
		default:
			// Abandoned (the handler stopped for shutdown), or no outcome
			// at all (the handler's bug, logged in handle): left for
			// another worker as after a crash, neither deleted nor sent
			// back early.
			c.setFinalLocked(m, m.src.vt, finalAbandon)
			retried++
			if m.src.fifo && !slices.Contains(backFIFO, m.src) {
				backFIFO = append(backFIFO, m.src)
			}
		}
	}
	for _, s := range backFIFO {
		// On a FIFO queue the rest of the group must not overtake the
		// message that goes back: hand back the lane's messages of that
		// queue too, SQS redelivers them in order. Messages of the key
		// from other queues keep their place: no order binds them.
		released += c.releaseLaneLocked(l, s)
	}
	c.mu.Unlock()

	if retried > 0 {
		c.obs.Retried(retried)
	}
	if released > 0 {
		c.obs.Released(released)
	}
	if retried > 0 || released > 0 {
		c.kickVisibility()
	}
	c.del.add(acks)
	if len(dead) > 0 {
		// In the worker, so the lane stays busy: a later message of the
		// key does not start before this one has left the queue.
		c.deadLetter(ctx, dead, deadOuts)
	}
	c.endLane(l)
}

// endLane ends a lane's turn: back in the ready queue if messages arrived
// meanwhile, else retired.
func (c *Consumer) endLane(l *lane) {
	c.mu.Lock()
	l.running = false
	c.busy--
	if l.len() > 0 && !c.stopping {
		c.ready.push(l, l.priority())
		c.mu.Unlock()
		return
	}
	released := c.releaseLaneLocked(l, nil)
	c.retireLocked(l)
	c.mu.Unlock()
	if released > 0 {
		c.obs.Released(released)
		c.kickVisibility()
	}
}

// kickVisibility wakes the heartbeat loop to look at pending final changes.
func (c *Consumer) kickVisibility() {
	select {
	case c.visKick <- struct{}{}:
	default:
	}
}

package queue

// readyLanes are the lanes that have waiting messages and no worker: one
// FIFO list per queue priority. A free worker takes the head of the
// highest-priority list that is not empty, so a realtime message never
// waits behind lanes of bulk messages, and lanes of one priority start in
// the order they became ready.
//
// A lane is listed at its priority: the highest priority (lowest index)
// among its waiting messages. A message of a higher priority joining a
// listed lane moves the lane up, to the tail of that priority's list.
//
// The lists are guarded by Consumer.mu. Workers wait for tokens without
// the lock: every listing sends one token, so a worker blocks while nothing
// is ready, and stop ends the wait as any channel does. A lane taken off
// the lists by the shutdown leaves its token behind; the worker that takes
// it finds nothing and waits again.
type readyLanes struct {
	lists  []laneList
	tokens chan struct{}
}

// laneList is a doubly linked list of lanes through lane.prev and lane.next.
type laneList struct{ head, tail *lane }

// newReadyLanes makes the lists of priorities queues and room for
// maxListed tokens. A lane is listed at most once and only while it has a
// waiting message, and waiting messages are held, so the Consumer's bound
// on held messages is a bound on tokens: a send never blocks.
func newReadyLanes(priorities, maxListed int) *readyLanes {
	return &readyLanes{lists: make([]laneList, priorities), tokens: make(chan struct{}, maxListed)}
}

// push lists l at the tail of priority p's list and hands a worker a token.
func (r *readyLanes) push(l *lane, p int) {
	l.queued = true
	r.link(l, p)
	r.tokens <- struct{}{}
}

// raise moves a listed lane up to priority p, if p is higher than the
// priority it is listed at.
func (r *readyLanes) raise(l *lane, p int) {
	if p >= l.listed {
		return
	}
	r.unlink(l)
	r.link(l, p)
}

// pop takes the lane that starts next off the lists, or returns nil when
// none is listed.
func (r *readyLanes) pop() *lane {
	for p := range r.lists {
		if l := r.lists[p].head; l != nil {
			r.remove(l)
			return l
		}
	}
	return nil
}

// remove takes a listed lane off the lists; its token stays behind.
func (r *readyLanes) remove(l *lane) {
	r.unlink(l)
	l.queued = false
}

func (r *readyLanes) link(l *lane, p int) {
	list := &r.lists[p]
	l.listed = p
	l.prev, l.next = list.tail, nil
	if list.tail != nil {
		list.tail.next = l
	} else {
		list.head = l
	}
	list.tail = l
}

func (r *readyLanes) unlink(l *lane) {
	list := &r.lists[l.listed]
	if l.prev != nil {
		l.prev.next = l.next
	} else {
		list.head = l.next
	}
	if l.next != nil {
		l.next.prev = l.prev
	} else {
		list.tail = l.prev
	}
	l.prev, l.next = nil, nil
}

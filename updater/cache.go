package updater

import (
	"container/list"
	"sync"
)

// boundedMap is a map that keeps at most max entries, dropping the least
// recently written one when full. It bounds what the updater remembers per
// engagement and per context, however many a run touches. It is safe for
// concurrent use.
type boundedMap[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of string keys, most recently written at the front
	items map[string]*entry[V]
}

type entry[V any] struct {
	value V
	elem  *list.Element
}

func newBoundedMap[V any](max int) *boundedMap[V] {
	return &boundedMap[V]{max: max, order: list.New(), items: make(map[string]*entry[V])}
}

func (m *boundedMap[V]) get(key string) (V, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[key]
	if !ok {
		var zero V
		return zero, false
	}
	return e.value, true
}

func (m *boundedMap[V]) has(key string) bool {
	_, ok := m.get(key)
	return ok
}

func (m *boundedMap[V]) put(key string, v V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.putLocked(key, v)
}

// remove forgets key.
func (m *boundedMap[V]) remove(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e, ok := m.items[key]; ok {
		m.order.Remove(e.elem)
		delete(m.items, key)
	}
}

func (m *boundedMap[V]) putLocked(key string, v V) {
	if e, ok := m.items[key]; ok {
		e.value = v
		m.order.MoveToFront(e.elem)
		return
	}
	m.items[key] = &entry[V]{value: v, elem: m.order.PushFront(key)}
	if m.order.Len() > m.max {
		oldest := m.order.Back()
		m.order.Remove(oldest)
		delete(m.items, oldest.Value.(string))
	}
}

// update sets key to fn(old, found) under the lock.
func (m *boundedMap[V]) update(key string, fn func(old V, found bool) V) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.items[key]
	var old V
	if ok {
		old = e.value
	}
	m.putLocked(key, fn(old, ok))
}

func (m *boundedMap[V]) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}

// pair is one key and its value, as snapshot returns them.
type pair[V any] struct {
	key   string
	value V
}

// snapshot returns a copy of every entry, least recently written first, so
// that the caller can work through them (write a file) without holding the
// map's lock.
func (m *boundedMap[V]) snapshot() []pair[V] {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]pair[V], 0, len(m.items))
	for e := m.order.Back(); e != nil; e = e.Prev() {
		k := e.Value.(string)
		out = append(out, pair[V]{key: k, value: m.items[k].value})
	}
	return out
}

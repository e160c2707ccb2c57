// Package state keeps what one worker must remember across restarts, in
// one bbolt database file: per context, the newest version the worker set
// out to write (Store implements updater.Versions), and the times of the
// writes in its daily budget's rolling window (for retry.Budget's Restore
// and OnTake).
//
// It never refuses to start over what it finds in the file: a record it
// cannot read is skipped and deleted, with one warning that counts them; a
// file that is not a database, or whose pages are damaged, is moved aside
// and replaced by a new database holding whatever could still be read (the
// text log of pcsync versions before this store is read that way, so it is
// migrated). What it does refuse is a file another process holds: bbolt
// locks it, and Open fails after a bounded wait, naming the file.
//
// It does not decide what is stale (package updater) nor count the budget
// (package retry), and it is one process's memory: replicas on a standard
// queue each have their own, so it orders one replica's writes, not the
// fleet's.
package state

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bolt "go.etcd.io/bbolt"
)

// ErrLocked says another process holds the state file. Two workers must
// never share one: each would take the other's records for its own.
var ErrLocked = errors.New("held by another process")

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	// MaxContexts bounds how many contexts are kept; the least recently
	// written are forgotten first. 0 means 100,000 (the updater's
	// DefaultMaxRemembered).
	MaxContexts int
	// Window is the daily budget's rolling window: writes older than it
	// are forgotten. 0 means 24 hours.
	Window time.Duration
	// LockWait bounds how long Open waits for another process to release
	// the file (a worker being replaced may still be exiting). 0 means 5
	// seconds.
	LockWait time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

func (o *Options) defaults() {
	if o.MaxContexts <= 0 {
		o.MaxContexts = 100_000
	}
	if o.Window <= 0 {
		o.Window = 24 * time.Hour
	}
	if o.LockWait <= 0 {
		o.LockWait = 5 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Store is an open state file. Its methods are safe for concurrent use.
type Store struct {
	db   *bolt.DB
	path string
	opts Options
	log  *slog.Logger
	// commit runs a write transaction: db.Update, one fsync each (0.34 to
	// 0.41 ms on a local ext4 disk). At the worker's 1 to 20 writes a
	// second, two records each, that is a few milliseconds a second.
	// db.Batch makes every lone record wait its 10 ms delay (11.6 ms), and
	// with 32 concurrent callers it is no cheaper (0.37 ms), since that
	// delay bounds its batches (BenchmarkIntend measures both).
	commit func(func(*bolt.Tx) error) error

	// What the file held when it was opened.
	contexts int
	writes   []time.Time
}

// Open opens the state file at path, creating it (and its directory) if
// need be, and repairs what it must (see the package comment), logging a
// warning for each repair. It fails when the file or its directory cannot
// be created or opened, or when another process holds it (ErrLocked).
func Open(path string, o Options) (*Store, error) {
	o.defaults()
	s := &Store{path: path, opts: o, log: o.Logger}
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the file's path.
func (s *Store) Path() string { return s.path }

// Contexts is how many contexts the file held when it was opened.
func (s *Store) Contexts() int { return s.contexts }

// Writes returns the times of the budgeted writes the file held when it was
// opened that are still within the window, oldest first: what
// retry.Budget.Restore takes.
func (s *Store) Writes() []time.Time { return append([]time.Time(nil), s.writes...) }

// Close closes the file. Nothing may be recorded after it.
func (s *Store) Close() error { return s.db.Close() }

// Intended returns the newest version recorded for context key.
func (s *Store) Intended(_ context.Context, key string) (time.Time, bool, error) {
	var (
		v  time.Time
		ok bool
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		rec := tx.Bucket(bucketContexts).Get([]byte(key))
		if rec == nil {
			return nil
		}
		// A record that cannot be read is as good as none: Open deletes
		// such records, so this one was damaged since.
		t, _, err := decodeVersion(rec)
		v, ok = t, err == nil
		return nil
	})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("state %s: %w", s.path, err)
	}
	return v, ok, nil
}

// Intend records v as the newest version of context key unless one as new
// or newer is recorded, and returns once it is on disk (bbolt syncs each
// transaction). The least recently written context beyond MaxContexts is
// forgotten in the same transaction.
func (s *Store) Intend(ctx context.Context, key string, v time.Time) error {
	if len(key) == 0 || len(key) > maxKeyLen {
		return fmt.Errorf("state %s: a context key of %d bytes, want 1 to %d", s.path, len(key), maxKeyLen)
	}
	// A version no newer than the one recorded (a redelivery) needs no
	// write transaction, which bbolt would sync even with nothing in it.
	if t, ok, err := s.Intended(ctx, key); err == nil && ok && !v.After(t) {
		return nil
	}
	k := []byte(key)
	err := s.commit(func(tx *bolt.Tx) error {
		contexts, order, meta := tx.Bucket(bucketContexts), tx.Bucket(bucketOrder), tx.Bucket(bucketMeta)
		n := readCount(meta)
		if rec := contexts.Get(k); rec == nil {
			n++
		} else if t, seq, err := decodeVersion(rec); err == nil {
			if !v.After(t) {
				return nil
			}
			if err := order.Delete(seqKey(seq)); err != nil {
				return err
			}
		}
		seq, err := order.NextSequence()
		if err != nil {
			return err
		}
		if err := order.Put(seqKey(seq), k); err != nil {
			return err
		}
		if err := contexts.Put(k, encodeVersion(v, seq)); err != nil {
			return err
		}
		for ; n > s.opts.MaxContexts; n-- {
			sk, oldest := order.Cursor().First()
			if sk == nil {
				break
			}
			oldest = bytes.Clone(oldest)
			if err := order.Delete(sk); err != nil {
				return err
			}
			if err := contexts.Delete(oldest); err != nil {
				return err
			}
		}
		return meta.Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(n)))
	})
	if err != nil {
		return fmt.Errorf("state %s: record %s: %w", s.path, key, err)
	}
	return nil
}

// RecordWrite records a budgeted write made at t, and forgets the writes
// that left the window by then. retry.Budget.OnTake calls it before each
// write. A failure is logged, not returned: the write goes ahead, and a
// restart within the window would count it out.
func (s *Store) RecordWrite(t time.Time) {
	err := s.commit(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketWrites)
		// Two writes in the same nanosecond (a coarse clock) both count.
		k := timeKey(t)
		for b.Get(k) != nil {
			t = t.Add(1)
			k = timeKey(t)
		}
		if err := b.Put(k, []byte{}); err != nil {
			return err
		}
		cutoff := timeKey(t.Add(-s.opts.Window))
		c := b.Cursor()
		for old, _ := c.First(); old != nil && bytes.Compare(old, cutoff) <= 0; old, _ = c.First() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Warn("state: could not record a write of the daily budget; a restart within 24 h would count it out", "file", s.path, "error", err)
	}
}

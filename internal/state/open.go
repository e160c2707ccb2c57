package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// This file opens a state file and makes it sound: it reads every record,
// checks the database's pages, deletes what cannot be read, and replaces a
// file that is not a database, or is damaged, by one holding what could be
// read.

// unreadableError says a file is not a database this package can open: not
// bbolt at all (the text log of older versions, anything else), a bbolt
// file whose meta pages are damaged or of another format version, or one
// that crashed bbolt while it opened it.
type unreadableError struct{ err error }

func (e *unreadableError) Error() string { return "not a readable database: " + e.err.Error() }
func (e *unreadableError) Unwrap() error { return e.err }

// damagedError says a database opened but its pages are not sound.
type damagedError struct{ err error }

func (e *damagedError) Error() string { return "damaged database: " + e.err.Error() }
func (e *damagedError) Unwrap() error { return e.err }

// bad is what the read of a sound database found wrong, to be repaired.
type bad struct {
	corrupt, oversized int      // records that cannot be read, by why
	contexts, writes   [][]byte // keys to delete: bad records, and writes out of the window
	orderStale         bool     // bucketOrder does not match the contexts: rebuild it
	maxSeq             uint64
}

// open opens s.path and leaves s.db sound, or fails.
func (s *Store) open() error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	finishReplace(s.path)
	// Twice at most: once the file, once (if that had to be replaced) its
	// replacement, which must then open cleanly.
	for attempt := 0; ; attempt++ {
		db, err := s.openDB()
		var unreadable *unreadableError
		if errors.As(err, &unreadable) && attempt == 0 {
			c, skipped, terr := readTextLog(s.path)
			if terr != nil {
				return fmt.Errorf("%w; reading it as text: %w", err, terr)
			}
			if len(c.versions) == 0 {
				moved, rerr := s.replace(contents{}, "corrupt")
				if rerr != nil {
					return fmt.Errorf("%w; replacing it: %w", err, rerr)
				}
				s.log.Warn("state: the file is not a readable pcsync state database: moved aside, starting empty",
					"file", s.path, "moved_to", moved, "error", err)
				continue
			}
			moved, rerr := s.replace(c, "text")
			if rerr != nil {
				return fmt.Errorf("state file %s: migrate the text format: %w", s.path, rerr)
			}
			s.log.Warn("state: the file was in the text format of older pcsync versions: migrated, the old file moved aside",
				"file", s.path, "moved_to", moved, "contexts", len(c.versions), "lines_skipped", skipped)
			continue
		}
		if err != nil {
			return err
		}
		c, b, err := s.read(db)
		var damaged *damagedError
		if errors.As(err, &damaged) && attempt == 0 {
			db.Close()
			moved, rerr := s.replace(c, "corrupt")
			if rerr != nil {
				return fmt.Errorf("state file %s: %w; replacing it: %w", s.path, err, rerr)
			}
			s.log.Warn("state: the database is damaged: moved aside, kept what could be read",
				"file", s.path, "moved_to", moved, "error", err, "contexts_kept", len(c.versions), "writes_kept", len(c.writes))
			continue
		}
		if err != nil {
			db.Close()
			return fmt.Errorf("state file %s: %w", s.path, err)
		}
		if err := s.repair(db, &c, b); err != nil {
			db.Close()
			return fmt.Errorf("state file %s: %w", s.path, err)
		}
		if b.corrupt+b.oversized > 0 {
			s.log.Warn("state: skipped unreadable records (deleted)", "file", s.path, "corrupt", b.corrupt, "oversized", b.oversized)
		}
		s.db, s.commit, s.contexts, s.writes = db, db.Update, len(c.versions), c.writes
		return nil
	}
}

// openDB opens the file, waiting at most LockWait for another process to
// release it, and saying so in the log if it has to wait.
func (s *Store) openDB() (*bolt.DB, error) {
	const glance = 100 * time.Millisecond
	db, err := boltOpen(s.path, min(glance, s.opts.LockWait))
	if errors.Is(err, bolt.ErrTimeout) && s.opts.LockWait > glance {
		s.log.Info("state: the file is held by another process; waiting for it", "file", s.path, "wait", s.opts.LockWait)
		db, err = boltOpen(s.path, s.opts.LockWait-glance)
	}
	if errors.Is(err, bolt.ErrTimeout) {
		return nil, fmt.Errorf("state file %s: %w (waited %v)", s.path, ErrLocked, s.opts.LockWait)
	}
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", s.path, err)
	}
	return db, nil
}

// boltOpen opens a bbolt file. bbolt trusts the pages it maps: a damaged
// or truncated file makes it panic, or fault on memory past the file's end,
// which debug.SetPanicOnFault turns into a panic too (in this goroutine);
// either is an unreadableError.
func boltOpen(path string, wait time.Duration) (db *bolt.DB, err error) {
	var f *os.File
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			if f != nil {
				f.Close() // and with it bbolt's lock
			}
			db, err = nil, &unreadableError{fmt.Errorf("bbolt: %v", r)}
		}
	}()
	db, err = bolt.Open(path, 0o600, &bolt.Options{Timeout: wait, OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
		var err error
		f, err = os.OpenFile(name, flag, perm)
		return f, err
	}})
	if errors.Is(err, bolt.ErrInvalid) || errors.Is(err, bolt.ErrVersionMismatch) || errors.Is(err, bolt.ErrChecksum) {
		return nil, &unreadableError{err}
	}
	return db, err
}

// read reads every record of a database, and checks its pages. A database
// that is shorter than its pages, that makes bbolt panic or fault, or that
// fails bbolt's check is a damagedError, returned with what could be read.
//
// The records are read first, in this goroutine, where a fault is a panic
// (SetPanicOnFault): that touches every page the records are on. Only then
// does bbolt's check run, in a goroutine of its own, on pages known to be
// readable.
func (s *Store) read(db *bolt.DB) (c contents, b bad, err error) {
	now := s.opts.Now()
	fi, err := os.Stat(s.path)
	if err != nil {
		return c, b, err
	}
	var damage []error
	// Each part on its own, so that a damaged page in one does not lose
	// what the other holds.
	for _, part := range []func(*bolt.Tx) error{
		func(tx *bolt.Tx) error {
			if tx.Size() > fi.Size() {
				return &damagedError{fmt.Errorf("the file is %d bytes, its pages %d", fi.Size(), tx.Size())}
			}
			return nil
		},
		func(tx *bolt.Tx) error { return s.readContexts(tx, &c, &b) },
		func(tx *bolt.Tx) error { return s.readWrites(tx, now, &c, &b) },
	} {
		err := protect(func() error { return db.View(part) })
		var damaged *damagedError
		if errors.As(err, &damaged) {
			damage = append(damage, err)
			continue
		}
		if err != nil {
			return c, b, err
		}
	}
	if len(damage) > 0 {
		return c, b, errors.Join(damage...)
	}
	var problems []error
	err = db.View(func(tx *bolt.Tx) error {
		for e := range tx.Check() {
			if len(problems) < 3 {
				problems = append(problems, e)
			}
		}
		return nil
	})
	if err == nil && len(problems) > 0 {
		err = &damagedError{errors.Join(problems...)}
	}
	return c, b, err
}

// protect runs fn, turning a panic or a memory fault into a damagedError.
func protect(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &damagedError{fmt.Errorf("bbolt: %v", r)}
		}
	}()
	return fn()
}

func (s *Store) readContexts(tx *bolt.Tx, c *contents, b *bad) error {
	contexts := tx.Bucket(bucketContexts)
	if contexts == nil {
		return nil
	}
	err := contexts.ForEach(func(k, rec []byte) error {
		switch {
		case len(k) > maxKeyLen || len(rec) > maxRecordLen:
			b.oversized++
			b.contexts = append(b.contexts, bytes.Clone(k))
			return nil
		}
		v, seq, err := decodeVersion(rec) // a nested bucket (rec nil) fails here too
		if err != nil {
			b.corrupt++
			b.contexts = append(b.contexts, bytes.Clone(k))
			return nil
		}
		c.versions = append(c.versions, version{key: string(k), v: v, seq: seq})
		b.maxSeq = max(b.maxSeq, seq)
		return nil
	})
	if err != nil {
		return err
	}
	slices.SortFunc(c.versions, func(a, b version) int { return compareUint(a.seq, b.seq) })
	// The order must name each context once, under its own sequence
	// number, and nothing else.
	bySeq := make(map[uint64]string, len(c.versions))
	for _, v := range c.versions {
		if _, dup := bySeq[v.seq]; dup {
			b.orderStale = true
		}
		bySeq[v.seq] = v.key
	}
	order := tx.Bucket(bucketOrder)
	if order == nil {
		b.orderStale = b.orderStale || len(c.versions) > 0
		return nil
	}
	n := 0
	err = order.ForEach(func(k, key []byte) error {
		n++
		if len(k) != 8 || key == nil || bySeq[binary.BigEndian.Uint64(k)] != string(key) {
			b.orderStale = true
		}
		return nil
	})
	if n != len(c.versions) || order.Sequence() < b.maxSeq {
		b.orderStale = true
	}
	return err
}

func (s *Store) readWrites(tx *bolt.Tx, now time.Time, c *contents, b *bad) error {
	writes := tx.Bucket(bucketWrites)
	if writes == nil {
		return nil
	}
	return writes.ForEach(func(k, v []byte) error {
		switch {
		case len(k) > 8 || len(v) > 0:
			b.oversized++
			b.writes = append(b.writes, bytes.Clone(k))
			return nil
		case len(k) < 8 || v == nil: // v nil: a nested bucket
			b.corrupt++
			b.writes = append(b.writes, bytes.Clone(k))
			return nil
		}
		t := time.Unix(0, int64(binary.BigEndian.Uint64(k)))
		switch {
		case now.Sub(t) >= s.opts.Window:
			// Left the window: forgotten, not counted as bad.
			b.writes = append(b.writes, bytes.Clone(k))
		case t.Sub(now) > s.opts.Window:
			// Further ahead than any clock step this could be.
			b.corrupt++
			b.writes = append(b.writes, bytes.Clone(k))
		default:
			// A write "in the future" (the clock stepped back since)
			// counts from now.
			if t.After(now) {
				t = now
			}
			c.writes = append(c.writes, t)
		}
		return nil
	})
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// repair deletes the bad records, rebuilds a stale order, forgets the
// contexts beyond MaxContexts, and sets the count, in one transaction.
func (s *Store) repair(db *bolt.DB, c *contents, b bad) error {
	return db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("bucket %s: %w", name, err)
			}
		}
		contexts, order, writes := tx.Bucket(bucketContexts), tx.Bucket(bucketOrder), tx.Bucket(bucketWrites)
		for _, k := range b.contexts {
			if err := deleteKey(contexts, k); err != nil {
				return err
			}
		}
		for _, k := range b.writes {
			if err := deleteKey(writes, k); err != nil {
				return err
			}
		}
		if extra := len(c.versions) - s.opts.MaxContexts; extra > 0 {
			for _, v := range c.versions[:extra] {
				if err := contexts.Delete([]byte(v.key)); err != nil {
					return err
				}
				if !b.orderStale {
					if err := order.Delete(seqKey(v.seq)); err != nil {
						return err
					}
				}
			}
			c.versions = c.versions[extra:]
		}
		if b.orderStale {
			if err := tx.DeleteBucket(bucketOrder); err != nil {
				return err
			}
			var err error
			if order, err = tx.CreateBucket(bucketOrder); err != nil {
				return err
			}
			if err := putVersions(contexts, order, c.versions); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(len(c.versions))))
	})
}

// deleteKey deletes a key, or the nested bucket of that name.
func deleteKey(b *bolt.Bucket, k []byte) error {
	err := b.Delete(k)
	if errors.Is(err, bolt.ErrIncompatibleValue) {
		err = b.DeleteBucket(k)
	}
	return err
}

// putVersions writes the versions, least recently written first, under new
// sequence numbers 1, 2, ... into empty buckets (or over the same keys).
func putVersions(contexts, order *bolt.Bucket, versions []version) error {
	for i, v := range versions {
		seq := uint64(i + 1)
		if err := order.Put(seqKey(seq), []byte(v.key)); err != nil {
			return err
		}
		if err := contexts.Put([]byte(v.key), encodeVersion(v.v, seq)); err != nil {
			return err
		}
	}
	return order.SetSequence(uint64(len(versions)))
}

// replace builds a new database from c beside the file, moves the file
// aside as path.<suffix>-<time>, and puts the new one in its place. It
// returns where the old file went. A replacement cut short between the two
// renames is finished by the next Open (finishReplace).
func (s *Store) replace(c contents, suffix string) (string, error) {
	tmp := s.path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	db, err := bolt.Open(tmp, 0o600, &bolt.Options{Timeout: s.opts.LockWait})
	if err != nil {
		return "", err
	}
	// What a damaged file yielded may be in any order.
	slices.SortStableFunc(c.versions, func(a, b version) int { return compareUint(a.seq, b.seq) })
	if len(c.versions) > s.opts.MaxContexts {
		c.versions = c.versions[len(c.versions)-s.opts.MaxContexts:]
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := putVersions(tx.Bucket(bucketContexts), tx.Bucket(bucketOrder), c.versions); err != nil {
			return err
		}
		for _, t := range c.writes {
			if err := tx.Bucket(bucketWrites).Put(timeKey(t), []byte{}); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(len(c.versions))))
	})
	if err = errors.Join(err, db.Close()); err != nil {
		os.Remove(tmp)
		return "", err
	}
	aside := fmt.Sprintf("%s.%s-%s", s.path, suffix, s.opts.Now().UTC().Format("20060102T150405.000Z"))
	if err := os.Rename(s.path, aside); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return "", err
	}
	// The renames themselves must survive a crash.
	if dir, err := os.Open(filepath.Dir(s.path)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return aside, nil
}

// finishReplace completes a replacement cut short: the old file moved
// aside, the new one not yet in its place. A new one left beside a file
// that is still there was never finished, and is dropped.
func finishReplace(path string) {
	tmp := path + ".new"
	if _, err := os.Stat(tmp); err != nil {
		return
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		os.Rename(tmp, path)
		return
	}
	os.Remove(tmp)
}

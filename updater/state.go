package updater

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"
)

// stateFile keeps, across restarts, the newest SourceUpdatedAt this worker
// set out to write to each context. On a standard queue an older version of
// a context can arrive after a newer one was applied; in memory the
// watermark catches that, but a worker killed after applying v4 and before
// acknowledging v3's batch would, once restarted, write v3 over v4. The file
// is an append-only log of "context<TAB>time" lines, written before each
// write call (so a write never happens that the file does not know of) and
// compacted when it grows. Plain writes, no fsync: they survive the
// process being killed, which is what this guards against; a FIFO queue
// grouped by engagement guards against everything else.
type stateFile struct {
	path string
	max  int

	mu    sync.Mutex
	f     *os.File
	lines int
}

// openState loads the file's intents into into and opens it for appending.
func openState(path string, max int, into *boundedMap[time.Time]) (*stateFile, error) {
	s := &stateFile{path: path, max: max}
	f, err := os.Open(path)
	switch {
	case os.IsNotExist(err):
	case err != nil:
		return nil, fmt.Errorf("state file: %w", err)
	default:
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			key, ts, ok := strings.Cut(sc.Text(), "\t")
			t, err := time.Parse(time.RFC3339Nano, ts)
			if !ok || err != nil {
				continue // a line cut short by a kill: the others stand
			}
			into.update(key, func(old time.Time, found bool) time.Time {
				if found && old.After(t) {
					return old
				}
				return t
			})
			s.lines++
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("state file %s: %w", path, err)
		}
	}
	if err := s.compact(into); err != nil {
		return nil, err
	}
	return s, nil
}

// record appends one intent, compacting the file first when it has grown
// to several times what the map keeps.
func (s *stateFile) record(key string, t time.Time, all *boundedMap[time.Time]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines > 4*s.max {
		if err := s.compactLocked(all); err != nil {
			return err
		}
	}
	if _, err := fmt.Fprintf(s.f, "%s\t%s\n", key, t.UTC().Format(time.RFC3339Nano)); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	s.lines++
	return nil
}

func (s *stateFile) compact(all *boundedMap[time.Time]) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked(all)
}

// compactLocked rewrites the file from the map, atomically.
func (s *stateFile) compactLocked(all *boundedMap[time.Time]) error {
	tmp := s.path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	w := bufio.NewWriter(f)
	// A copy, so that the file is written without holding the map's lock,
	// which every job takes.
	entries := all.snapshot()
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\n", e.key, e.value.UTC().Format(time.RFC3339Nano))
	}
	n := len(entries)
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("state file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, err = os.OpenFile(s.path, os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("state file: %w", err)
	}
	s.lines = n
	return nil
}

func (s *stateFile) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	return s.f.Close()
}

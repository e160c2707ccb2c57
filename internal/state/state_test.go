package state

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// logged is a slog handler that keeps what was logged, for a test to
// read.
type logged struct {
	mu      sync.Mutex
	records []string // "LEVEL message key=value ..."
}

func (h *logged) Enabled(context.Context, slog.Level) bool { return true }
func (h *logged) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logged) WithGroup(string) slog.Handler            { return h }

func (h *logged) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Level, r.Message)
	r.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, b.String())
	return nil
}

// warnings are the warnings logged so far.
func (h *logged) warnings() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, r := range h.records {
		if strings.HasPrefix(r, "WARN ") {
			out = append(out, r)
		}
	}
	return out
}

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

// open opens the store at path at the time now, failing the test on error.
func open(t testing.TB, path string, now time.Time, o Options) (*Store, *logged) {
	t.Helper()
	log := &logged{}
	o.Now = func() time.Time { return now }
	o.Logger = slog.New(log)
	s, err := Open(path, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s, log
}

func intend(t *testing.T, s *Store, key string, v time.Time) {
	t.Helper()
	if err := s.Intend(context.Background(), key, v); err != nil {
		t.Fatalf("Intend %s: %v", key, err)
	}
}

// wantVersion checks the version recorded for key (zero: none).
func wantVersion(t *testing.T, s *Store, key string, want time.Time) {
	t.Helper()
	got, ok, err := s.Intended(context.Background(), key)
	switch {
	case err != nil:
		t.Errorf("Intended %s: %v", key, err)
	case want.IsZero() && ok:
		t.Errorf("Intended %s: got %v, want none", key, got)
	case !want.IsZero() && (!ok || !got.Equal(want)):
		t.Errorf("Intended %s: got %v (found %v), want %v", key, got, ok, want)
	}
}

func TestReopenKeepsTheNewestVersionsAndTheBudgetWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "q.db") // the directory is made too
	s, _ := open(t, path, t0, Options{})
	intend(t, s, "Sandbox/eng-1/1", t0.Add(2*time.Minute))
	intend(t, s, "Sandbox/eng-1/1", t0.Add(time.Minute)) // older: not recorded
	intend(t, s, "Sandbox/eng-2/1", t0.Add(3*time.Minute))
	writes := []time.Time{t0.Add(-23 * time.Hour), t0.Add(-time.Hour), t0, t0} // two in the same nanosecond
	for _, w := range writes {
		s.RecordWrite(w)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// An hour later the first write has left the window.
	s, log := open(t, path, t0.Add(time.Hour), Options{})
	defer s.Close()
	wantVersion(t, s, "Sandbox/eng-1/1", t0.Add(2*time.Minute))
	wantVersion(t, s, "Sandbox/eng-2/1", t0.Add(3*time.Minute))
	wantVersion(t, s, "Sandbox/eng-3/1", time.Time{})
	if got := s.Contexts(); got != 2 {
		t.Errorf("Contexts: got %d, want 2", got)
	}
	got := s.Writes()
	want := []time.Time{t0.Add(-time.Hour), t0, t0.Add(1)}
	if len(got) != len(want) {
		t.Fatalf("Writes: got %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("Writes[%d]: got %v, want %v", i, got[i], want[i])
		}
	}
	if w := log.warnings(); len(w) != 0 {
		t.Errorf("warnings on a sound file: %v", w)
	}
}

func TestForgetsTheLeastRecentlyWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, _ := open(t, path, t0, Options{MaxContexts: 3})
	for i, k := range []string{"a", "b", "c", "a", "d"} {
		intend(t, s, k, t0.Add(time.Duration(i)*time.Minute))
	}
	// "a" was written again after "b" and "c": "b" is the one forgotten.
	wantVersion(t, s, "b", time.Time{})
	wantVersion(t, s, "a", t0.Add(3*time.Minute))
	s.Close()

	// Reopened with a lower bound, the least recently written go first.
	s, _ = open(t, path, t0, Options{MaxContexts: 2})
	defer s.Close()
	wantVersion(t, s, "c", time.Time{})
	wantVersion(t, s, "a", t0.Add(3*time.Minute))
	wantVersion(t, s, "d", t0.Add(4*time.Minute))
	intend(t, s, "e", t0.Add(5*time.Minute))
	wantVersion(t, s, "a", time.Time{})
	if s.Contexts() != 2 {
		t.Errorf("Contexts: got %d, want 2", s.Contexts())
	}
}

// raw edits a closed state file with bbolt directly.
func raw(t testing.TB, path string, fn func(tx *bolt.Tx) error) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(fn); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestBadRecordsAreSkippedWithOneWarning(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, _ := open(t, path, t0, Options{})
	intend(t, s, "good", t0)
	s.RecordWrite(t0)
	s.Close()
	raw(t, path, func(tx *bolt.Tx) error {
		contexts, writes := tx.Bucket(bucketContexts), tx.Bucket(bucketWrites)
		if _, err := contexts.CreateBucket([]byte("a bucket")); err != nil { // corrupt
			return err
		}
		return errors.Join(
			contexts.Put([]byte("garbage"), []byte("not a record")),                           // corrupt
			contexts.Put([]byte("truncated"), encodeVersion(t0, 99)[:12]),                     // corrupt
			contexts.Put([]byte(strings.Repeat("k", 5000)), encodeVersion(t0, 100)),           // oversized key
			contexts.Put([]byte("huge"), make([]byte, 100<<10)),                               // oversized value
			writes.Put([]byte("abc"), []byte{}),                                               // corrupt
			writes.Put(timeKey(t0.Add(time.Minute)), []byte("x")),                             // oversized
			writes.Put(timeKey(t0.Add(-25*time.Hour)), []byte{}),                              // out of the window: dropped quietly
			tx.Bucket(bucketOrder).Put(seqKey(12345), []byte("a context not in the buckets")), // a stale order entry: rebuilt quietly
		)
	})

	s, log := open(t, path, t0, Options{})
	wantVersion(t, s, "good", t0)
	wantVersion(t, s, "garbage", time.Time{})
	if got := len(s.Writes()); got != 1 {
		t.Errorf("Writes: got %d, want 1", got)
	}
	w := log.warnings()
	if len(w) != 1 || !strings.Contains(w[0], "skipped unreadable records") || !strings.Contains(w[0], "corrupt=4") || !strings.Contains(w[0], "oversized=3") {
		t.Errorf("warnings: got %q, want one that counts 4 corrupt and 3 oversized records", w)
	}
	// The bad records were deleted: the next start is quiet, and the
	// store works as before.
	intend(t, s, "next", t0)
	s.Close()
	s, log = open(t, path, t0, Options{MaxContexts: 1})
	defer s.Close()
	if w := log.warnings(); len(w) != 0 {
		t.Errorf("warnings after the repair: %q", w)
	}
	wantVersion(t, s, "good", time.Time{}) // the least recently written
	wantVersion(t, s, "next", t0)
}

// asideFiles are the files moved aside from path with suffix.
func asideFiles(t *testing.T, path, suffix string) []string {
	t.Helper()
	m, err := filepath.Glob(path + "." + suffix + "-*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTheTextLogOfOlderVersionsIsMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "versions.state")
	lines := []string{
		"Sandbox/eng-1/1\t2026-11-25T10:00:00Z",
		"Sandbox/eng-2/1\t2026-11-25T10:05:00.123456789Z",
		strings.Repeat("x", 100<<10), // over 64 KiB: the old worker could not start
		"Sandbox/eng-1/1\t2026-11-25T11:00:00Z",
		"Sandbox/eng-1/1\t2026-11-25T09:00:00Z", // an older one after a newer one: the newer stands
		"Sandbox/eng-3/1\t2026-11-2",            // cut short by a kill
	}
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	s, log := open(t, path, t0, Options{})
	wantVersion(t, s, "Sandbox/eng-1/1", time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
	wantVersion(t, s, "Sandbox/eng-2/1", time.Date(2026, 11, 25, 10, 5, 0, 123456789, time.UTC))
	wantVersion(t, s, "Sandbox/eng-3/1", time.Time{})
	w := log.warnings()
	if len(w) != 1 || !strings.Contains(w[0], "migrated") || !strings.Contains(w[0], "contexts=2") || !strings.Contains(w[0], "lines_skipped=2") {
		t.Errorf("warnings: got %q, want one saying 2 contexts were migrated and 2 lines skipped", w)
	}
	if got := asideFiles(t, path, "text"); len(got) != 1 {
		t.Errorf("old file moved aside: got %v, want one %s.text-*", got, path)
	}
	s.Close()
	s, log = open(t, path, t0, Options{})
	defer s.Close()
	if w := log.warnings(); len(w) != 0 {
		t.Errorf("warnings on the migrated file: %q", w)
	}
	wantVersion(t, s, "Sandbox/eng-1/1", time.Date(2026, 11, 25, 11, 0, 0, 0, time.UTC))
}

func TestAFileThatIsNotADatabaseIsMovedAside(t *testing.T) {
	for name, data := range map[string][]byte{
		"random bytes": func() []byte { b := make([]byte, 20_000); rand.Read(b); return b }(),
		"one byte":     []byte("x"),
		"text":         []byte("hello\nworld\n"),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "q.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			s, log := open(t, path, t0, Options{})
			defer s.Close()
			w := log.warnings()
			if len(w) != 1 || !strings.Contains(w[0], "not a readable pcsync state database") || !strings.Contains(w[0], path) {
				t.Errorf("warnings: got %q, want one naming the file", w)
			}
			aside := asideFiles(t, path, "corrupt")
			if len(aside) != 1 {
				t.Fatalf("moved aside: got %v, want one %s.corrupt-*", aside, path)
			}
			if kept, _ := os.ReadFile(aside[0]); string(kept) != string(data) {
				t.Errorf("the file moved aside does not hold the old contents")
			}
			intend(t, s, "a", t0)
			wantVersion(t, s, "a", t0)
		})
	}
}

// filled is a state file with n contexts (written in one transaction) and
// a budgeted write.
func filled(t testing.TB, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "q.db")
	s, _ := open(t, path, t0, Options{})
	s.RecordWrite(t0)
	s.Close()
	var versions []version
	for i := range n {
		versions = append(versions, version{key: fmt.Sprintf("Sandbox/eng-%05d/1", i), v: t0})
	}
	raw(t, path, func(tx *bolt.Tx) error {
		return errors.Join(putVersions(tx.Bucket(bucketContexts), tx.Bucket(bucketOrder), versions),
			tx.Bucket(bucketMeta).Put(keyCount, binary.BigEndian.AppendUint64(nil, uint64(n))))
	})
	return path
}

// overwrite writes junk over the file from offset on.
func overwrite(path string, offset int64, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	junk := make([]byte, n)
	rand.Read(junk)
	_, err = f.WriteAt(junk, offset)
	return err
}

// leafPages are the ids of the leaf pages of a state file.
func leafPages(t *testing.T, path string) (ids []int, pageSize int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.View(func(tx *bolt.Tx) error {
		for id := 2; ; id++ {
			p, err := tx.Page(id)
			if err != nil || p == nil {
				return nil
			}
			if p.Type == "leaf" {
				ids = append(ids, id)
			}
		}
	})
	return ids, db.Info().PageSize
}

func TestADamagedDatabaseIsMovedAside(t *testing.T) {
	for name, damage := range map[string]func(t *testing.T, path string) error{
		// A file cut short (a disk that filled up, a copy that stopped).
		"truncated": func(t *testing.T, path string) error { return os.Truncate(path, 16<<10) },
		// Its pages overwritten beyond the two meta pages.
		"pages overwritten": func(t *testing.T, path string) error { return overwrite(path, 8<<10, 64<<10) },
		// One leaf page in the middle overwritten: what the others hold
		// can still be read.
		"one leaf overwritten": func(t *testing.T, path string) error {
			ids, size := leafPages(t, path)
			return overwrite(path, int64(ids[len(ids)/2]*size), size)
		},
	} {
		t.Run(name, func(t *testing.T) {
			path := filled(t, 2000)
			if err := damage(t, path); err != nil {
				t.Fatal(err)
			}
			s, log := open(t, path, t0, Options{})
			defer s.Close()
			w := log.warnings()
			if len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "moved aside") {
				t.Errorf("warnings: got %q, want one naming the file and saying it was moved aside", w)
			}
			if got := asideFiles(t, path, "corrupt"); len(got) != 1 {
				t.Errorf("moved aside: got %v, want one %s.corrupt-*", got, path)
			}
			t.Logf("%s: %s; %d contexts kept", name, w, s.Contexts())
			intend(t, s, "a", t0)
			wantVersion(t, s, "a", t0)
		})
	}
}

func TestALockedFileFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	first, _ := open(t, path, t0, Options{})
	log := &logged{}
	start := time.Now()
	_, err := Open(path, Options{LockWait: 300 * time.Millisecond, Logger: slog.New(log)})
	took := time.Since(start)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), path) {
		t.Errorf("second Open: got %v, want ErrLocked naming %s", err, path)
	}
	// bbolt polls the lock every 50 ms and may give up one poll early.
	if took < 200*time.Millisecond || took > 5*time.Second {
		t.Errorf("second Open failed after %v, want after about the 300ms wait", took)
	}
	if len(log.records) != 1 || !strings.Contains(log.records[0], "waiting") {
		t.Errorf("log: got %q, want one line saying it waits", log.records)
	}
	first.Close()
	second, _ := open(t, path, t0, Options{})
	second.Close()
}

// TestAnInterruptedReplacementIsFinished: a replacement cut short after the
// old file went aside and before the new one took its place is finished by
// the next Open.
func TestAnInterruptedReplacementIsFinished(t *testing.T) {
	path := filled(t, 3)
	if err := os.Rename(path, path+".new"); err != nil {
		t.Fatal(err)
	}
	s, _ := open(t, path, t0, Options{})
	defer s.Close()
	if got := s.Contexts(); got != 3 {
		t.Errorf("Contexts: got %d, want the 3 of the new file", got)
	}
}

func TestConcurrentIntentsStayBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q.db")
	s, _ := open(t, path, t0, Options{MaxContexts: 50})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 40 {
				if err := s.Intend(context.Background(), fmt.Sprintf("%d/%d", g, i), t0.Add(time.Duration(i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	s.Close()
	s, _ = open(t, path, t0, Options{MaxContexts: 50})
	defer s.Close()
	if got := s.Contexts(); got != 50 {
		t.Errorf("Contexts: got %d, want 50", got)
	}
}

package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BenchmarkIntend measures the record path, the one transaction before
// every write call: serially (one worker writing) and from 32 goroutines
// (a busy worker's lanes), committed with db.Update (what Store does, one
// fsync per record) and with db.Batch (records of concurrent callers share
// a transaction, a lone one waits up to 10 ms for company).
//
//	go test -run '^$' -bench . -benchtime 2s ./internal/state
func BenchmarkIntend(b *testing.B) {
	for _, commit := range []string{"update", "batch"} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/callers=%d", commit, callers), func(b *testing.B) {
				s := benchStore(b, commit)
				var n atomic.Int64
				ctx := context.Background()
				record := func() {
					i := n.Add(1)
					if err := s.Intend(ctx, fmt.Sprintf("Sandbox/eng-%05d/1", i%1000), t0.Add(time.Duration(i))); err != nil {
						b.Error(err)
					}
				}
				runCallers(b, callers, record)
			})
		}
	}
}

// BenchmarkRecordWrite measures the other record before every write: the
// daily budget's.
func BenchmarkRecordWrite(b *testing.B) {
	for _, commit := range []string{"update", "batch"} {
		for _, callers := range []int{1, 32} {
			b.Run(fmt.Sprintf("%s/callers=%d", commit, callers), func(b *testing.B) {
				s := benchStore(b, commit)
				var n atomic.Int64
				runCallers(b, callers, func() { s.RecordWrite(t0.Add(time.Duration(n.Add(1)) * time.Millisecond)) })
			})
		}
	}
}

// BenchmarkIntended measures the read before each batch of jobs.
func BenchmarkIntended(b *testing.B) {
	s := benchStore(b, "update")
	for i := range 1000 {
		s.Intend(context.Background(), fmt.Sprintf("Sandbox/eng-%05d/1", i), t0)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, ok, _ := s.Intended(context.Background(), fmt.Sprintf("Sandbox/eng-%05d/1", i%1000)); !ok {
			b.Fatal("not found")
		}
	}
}

func benchStore(b *testing.B, commit string) *Store {
	s, err := Open(filepath.Join(b.TempDir(), "bench.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	if commit == "batch" {
		s.commit = s.db.Batch
	}
	return s
}

// runCallers calls fn b.N times in all, from callers goroutines.
func runCallers(b *testing.B, callers int, fn func()) {
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	done := make(chan struct{})
	for range callers {
		go func() {
			defer func() { done <- struct{}{} }()
			for left.Add(-1) >= 0 {
				fn()
			}
		}()
	}
	for range callers {
		<-done
	}
}

// BenchmarkOpenFull measures a start with a full file: 100,000 contexts
// (the default bound) and a day's 10,000 budgeted writes, every record
// read and the pages checked; file_bytes is the file's size.
func BenchmarkOpenFull(b *testing.B) {
	path := filled(b, 100_000)
	raw(b, path, func(tx *bolt.Tx) error {
		for i := range 10_000 {
			if err := tx.Bucket(bucketWrites).Put(timeKey(t0.Add(-time.Duration(i)*time.Second)), []byte{}); err != nil {
				return err
			}
		}
		return nil
	})
	for b.Loop() {
		s, _ := open(b, path, t0, Options{})
		if s.Contexts() != 100_000 || len(s.Writes()) != 10_000 {
			b.Fatalf("opened %d contexts, %d writes", s.Contexts(), len(s.Writes()))
		}
		s.Close()
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()), "file_bytes")
}

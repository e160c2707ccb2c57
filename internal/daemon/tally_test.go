package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pcsync/pcsync/updater"
)

func TestTallySummary(t *testing.T) {
	tl := newTally(updater.NopObserver{})
	for _, o := range []string{updater.OutcomeApplied, updater.OutcomeUnchanged, updater.OutcomeUnchanged, updater.OutcomeStale} {
		tl.JobDone("pcsync-jobs", o, time.Millisecond, time.Second)
	}
	tl.APICall(updater.OpGet, "OK", time.Millisecond)
	tl.APICall(updater.OpUpdate, "ConflictException", time.Millisecond)
	tl.APICall(updater.OpUpdate, "OK", time.Millisecond)
	var b bytes.Buffer
	slog.New(slog.NewTextHandler(&b, nil)).Info("worker stopped", tl.summary()...)
	for _, want := range []string{"jobs.applied=1", "jobs.unchanged=2", "jobs.stale=1", "jobs.dead_lettered=0", "writes=2", "reads=1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary: got %q, want it to contain %q", b.String(), want)
		}
	}
}

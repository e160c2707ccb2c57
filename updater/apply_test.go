package updater

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pcsync/pcsync/partnercentral"
)

// the cached view is trusted although the job's own
// EngagementLastModifiedAt proves it is older than the engagement.
func TestViewOlderThanTheJobIsNotTrusted(t *testing.T) {
	api := newFakeAPI()
	before, _ := newTestUpdater(t, api)
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w1", "1", "v1", time.Time{}, api.ts())})

	u, rec := newTestUpdater(t, api)
	// A repeat: read, found unchanged; the view (context 1 = v1) is cached.
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a", "1", "v1", time.Time{}, "")})

	// Someone else (another replica, a person in the console) sets context 1 to x.
	other, _ := newTestUpdater(t, api)
	other.Apply(context.Background(), []Delivery{jobMessage(t, other, "o", "1", "x", time.Time{}, api.ts())})

	// The CRM, which has seen that change (its timestamp is the current one),
	// sets context 1 back to v1, well within the 30 s of the cached view.
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "b", "1", "v1", time.Time{}, api.ts())})
	if got := string(api.contexts["1"]); !strings.Contains(got, `"Title":"v1"`) {
		t.Errorf("context 1 after the job: got %s (outcome %q, outcomes %v), want v1 written", got, outs[0].Outcome, rec.outcomes)
	}
}

// a write whose response was lost and that is sent back without a
// re-read leaves the cached view showing the old payload; a newer job that
// reverts to that payload is then settled unchanged and never written.
func TestViewForgottenAfterAFailedWrite(t *testing.T) {
	api := newFakeAPI()
	before, _ := newTestUpdater(t, api)
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w1", "1", "v1", time.Time{}, api.ts())})

	// The failure comes at the end of the attempt's budget.
	u, _ := newTestUpdater(t, api, func(c *Config) { c.Policy.AttemptBudget = time.Nanosecond })
	base := time.Now().Add(-time.Hour)
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a", "1", "v1", base, "")}) // read: unchanged, view cached

	api.mu.Lock()
	api.applyThenFail = true
	api.mu.Unlock()
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "b", "1", "v2", base.Add(time.Minute), "")})
	if outs[0].Outcome != OutcomeRetried {
		t.Fatalf("job b: got %q, want retried (sent back after the lost response)", outs[0].Outcome)
	}
	// The service now holds v2. The CRM reverts to v1 (a newer version).
	outs = u.Apply(context.Background(), []Delivery{jobMessage(t, u, "c", "1", "v1", base.Add(2*time.Minute), "")})
	if got := string(api.contexts["1"]); !strings.Contains(got, `"Title":"v1"`) {
		t.Errorf("context 1 after the revert: got %s (outcome %q), want v1", got, outs[0].Outcome)
	}
}

// after this worker's own write the view lacks the context, and
// the next job of that context within 30 s is written without reading first
// even when reading first pays: a repeat costs a write (for a Lead, its
// interaction is appended a second time).
func TestRepeatAfterOwnWriteIsReadFirst(t *testing.T) {
	api := newFakeAPI()
	before, _ := newTestUpdater(t, api)
	for _, id := range []string{"1", "2", "3"} {
		before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w"+id, id, "v1", time.Time{}, api.ts())})
	}
	u, _ := newTestUpdater(t, api)
	// Repeats: reading first pays (share of unchanged high).
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a2", "2", "v1", time.Time{}, "")})
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a3", "3", "v1", time.Time{}, "")})
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "b", "1", "v2", time.Time{}, "")}) // a change: written
	writes := len(api.writes)
	// The same record again (no SourceUpdatedAt, e.g. the nightly export after the event).
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "c", "1", "v2", time.Time{}, "")})
	if got := len(api.writes) - writes; got != 0 {
		t.Errorf("repeat of what this worker just wrote: got %d writes (outcome %q), want 0 (unchanged)", got, outs[0].Outcome)
	}
}

// countingAPI counts write calls and lets a test act after a read.
type countingAPI struct {
	*fakeAPI
	writeCalls int
	afterRead  func(n int)
	readsSeen  int
}

func (c *countingAPI) UpdateEngagementContext(ctx context.Context, in *partnercentral.UpdateEngagementContextInput, o ...func(*partnercentral.Options)) (*partnercentral.UpdateEngagementContextOutput, error) {
	c.writeCalls++
	return c.fakeAPI.UpdateEngagementContext(ctx, in, o...)
}

func (c *countingAPI) GetEngagement(ctx context.Context, in *partnercentral.GetEngagementInput, o ...func(*partnercentral.Options)) (*partnercentral.GetEngagementOutput, error) {
	out, err := c.fakeAPI.GetEngagement(ctx, in, o...)
	c.readsSeen++
	if c.afterRead != nil {
		c.afterRead(c.readsSeen)
	}
	return out, err
}

type conflictRec struct {
	recorder
	rounds []int
}

func (r *conflictRec) Conflicts(n int) { r.rounds = append(r.rounds, n) }

// op stays OpGet for a write made in the same loop turn as a
// read, so decide treats the write's ConflictException as transient (no
// re-read: the same stale timestamp is written again) and an ambiguous write
// failure as a plain retry (no re-read before writing again).
func TestConflictAfterReadIsHealedByReadingAgain(t *testing.T) {
	api := &countingAPI{fakeAPI: newFakeAPI()}
	before, _ := newTestUpdater(t, api.fakeAPI)
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w1", "1", "v1", time.Time{}, api.ts())})

	rec := &conflictRec{}
	u, _ := newTestUpdater(t, api)
	u.obs = rec
	// Another writer changes the engagement right after our read.
	api.afterRead = func(n int) {
		if n == 1 {
			api.modified++ // under fakeAPI.mu? GetEngagement has returned; single goroutine here
		}
	}
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a", "1", "v2", time.Time{}, "")})
	if outs[0].Outcome != OutcomeApplied {
		t.Fatalf("got %q, want applied", outs[0].Outcome)
	}
	if api.writeCalls != 2 {
		t.Errorf("write calls: got %d, want 2 (the conflict, then the write after a re-read)", api.writeCalls)
	}
	if len(rec.rounds) != 1 || rec.rounds[0] != 1 {
		t.Errorf("conflict rounds reported: got %v, want [1]", rec.rounds)
	}
}

func TestLostWriteAfterReadIsSettledByReadingAgain(t *testing.T) {
	api := &countingAPI{fakeAPI: newFakeAPI()}
	before, _ := newTestUpdater(t, api.fakeAPI)
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w1", "1", "v1", time.Time{}, api.ts())})
	u, _ := newTestUpdater(t, api)
	api.applyThenFail = true
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a", "1", "v2", time.Time{}, "")})
	if outs[0].Outcome != OutcomeAlreadyApplied {
		t.Errorf("got %q, want already_applied", outs[0].Outcome)
	}
	if api.writeCalls != 1 {
		t.Errorf("write calls: got %d, want 1 (a lost response costs a read, not a second write)", api.writeCalls)
	}
}

// TestMixedBatchRealtimeFirst: a batch of one engagement's jobs from both
// queues writes the contexts of realtime jobs first, whatever the receive
// order, and a context's write takes the priority of its most urgent job.
func TestMixedBatchRealtimeFirst(t *testing.T) {
	api := newFakeAPI()
	u, _ := newTestUpdater(t, api)
	bulk := jobMessage(t, u, "bulk", "2", "bulk-v1", time.Time{}, api.ts())
	bulk.Priority = 1
	realtime := jobMessage(t, u, "rt", "1", "rt-v1", time.Time{}, api.ts())
	u.Apply(context.Background(), []Delivery{bulk, realtime})
	if got := strings.Join(api.writes, ","); got != "rt-v1,bulk-v1" {
		t.Errorf("writes: got %s, want the realtime job's context first: rt-v1,bulk-v1", got)
	}
}

package updater

import (
	"context"
	"testing"
	"time"
)

// TestUnchangedJobsCostOneReadPerEngagement: a fresh worker gets a full
// export in which every context already holds its payload: one read for
// the engagement, whatever the number of its jobs and batches, and no
// write.
func TestUnchangedJobsCostOneReadPerEngagement(t *testing.T) {
	api := newFakeAPI()
	before, _ := newTestUpdater(t, api)
	for _, id := range []string{"1", "2", "3"} {
		before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w"+id, id, "v1", time.Time{}, api.ts())})
	}
	writes, reads := len(api.writes), api.reads

	u, rec := newTestUpdater(t, api)
	outs := u.Apply(context.Background(), []Delivery{
		jobMessage(t, u, "a", "1", "v1", time.Time{}, ""),
		jobMessage(t, u, "b", "2", "v1", time.Time{}, ""),
	})
	outs = append(outs, u.Apply(context.Background(), []Delivery{jobMessage(t, u, "c", "3", "v1", time.Time{}, "")})...)
	for i, v := range outs {
		if v.Outcome != OutcomeUnchanged {
			t.Errorf("job %d: got %q, want %q", i, v.Outcome, OutcomeUnchanged)
		}
	}
	if got := len(api.writes) - writes; got != 0 {
		t.Errorf("writes: got %d, want 0", got)
	}
	if got := api.reads - reads; got != 1 {
		t.Errorf("reads: got %d, want 1 for the engagement", got)
	}
	if rec.outcomes[OutcomeUnchanged] != 3 {
		t.Errorf("outcomes: got %v, want 3 unchanged", rec.outcomes)
	}
}

// TestChangedJobAfterReadIsWrittenOnce: the read that finds a context
// changed gives the timestamp of the write, and the next job of the
// engagement within the read's freshness needs no read of its own.
func TestChangedJobAfterReadIsWrittenOnce(t *testing.T) {
	api := newFakeAPI()
	before, _ := newTestUpdater(t, api)
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w1", "1", "v1", time.Time{}, api.ts())})
	before.Apply(context.Background(), []Delivery{jobMessage(t, before, "w2", "2", "v1", time.Time{}, api.ts())})
	writes, reads := len(api.writes), api.reads

	u, rec := newTestUpdater(t, api)
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "a", "1", "v2", time.Time{}, "")})
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "b", "2", "v1", time.Time{}, "")})
	if got := len(api.writes) - writes; got != 1 {
		t.Errorf("writes: got %d, want 1 (the change)", got)
	}
	if got := api.reads - reads; got != 1 {
		t.Errorf("reads: got %d, want 1", got)
	}
	if rec.outcomes[OutcomeApplied] != 1 || rec.outcomes[OutcomeUnchanged] != 1 {
		t.Errorf("outcomes: got %v, want 1 applied, 1 unchanged", rec.outcomes)
	}
}

// TestReadPolicy: a stream of real changes is read first only to probe
// (1 in probeEvery); a stream of repeats is read first; the policy follows
// the stream when it turns.
func TestReadPolicy(t *testing.T) {
	var p readPolicy
	reads := func(jobs int, unchanged bool) int {
		n := 0
		for range jobs {
			if p.readFirst() {
				n++
				p.observe(unchanged)
			}
		}
		return n
	}
	if got := reads(6400, false); got != 6400/probeEvery {
		t.Errorf("real changes: read first %d of 6400, want %d (the probes)", got, 6400/probeEvery)
	}
	// The stream turns to repeats: a probe finds one, then every job is
	// read first.
	reads(probeEvery, true)
	if got := reads(1000, true); got != 1000 {
		t.Errorf("repeats: read first %d of 1000, want all", got)
	}
	// And back to real changes: within a few dozen reads it stops.
	if got := reads(1000, false); got > 50 {
		t.Errorf("changes again: read first %d of 1000, want the few it takes to notice (< 50)", got)
	}
	// A mixed stream reads first while more than a tenth is unchanged.
	mixed := func(share float64, jobs int) int {
		n, acc := 0, 0.0
		for range jobs {
			if p.readFirst() {
				n++
				acc += share
				p.observe(acc >= 1)
				if acc >= 1 {
					acc--
				}
			}
		}
		return n
	}
	mixed(0.5, 1000)
	if got := mixed(0.5, 1000); got < 900 {
		t.Errorf("half unchanged: read first %d of 1000, want nearly all", got)
	}
	mixed(0.02, 5000)
	if got := mixed(0.02, 6400); got > 6400/probeEvery*2 {
		t.Errorf("2%% unchanged: read first %d of 6400, want about the probes (%d)", got, 6400/probeEvery)
	}
}

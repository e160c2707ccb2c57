package updater

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pcsync/pcsync/partnercentral"
)

// fakeClaimer is a Claimer whose answers the test sets.
type fakeClaimer struct {
	claimErr error     // Claim's answer
	holdErr  error     // Hold's answer
	deadline time.Time // Hold's deadline
	claims   []time.Time
	releases int
}

func newFakeClaimer() *fakeClaimer {
	return &fakeClaimer{deadline: time.Now().Add(time.Hour)}
}

func (f *fakeClaimer) Claim(_ context.Context, _ string, v time.Time) (Claim, error) {
	f.claims = append(f.claims, v)
	if f.claimErr != nil {
		return nil, f.claimErr
	}
	return fakeClaim{f}, nil
}

type fakeClaim struct{ f *fakeClaimer }

func (c fakeClaim) Hold(context.Context) (time.Time, error) { return c.f.deadline, c.f.holdErr }
func (c fakeClaim) Release(context.Context) error           { c.f.releases++; return nil }

// deadlineAPI records the deadline of every write's context.
type deadlineAPI struct {
	*fakeAPI
	deadlines []time.Time
}

func (d *deadlineAPI) UpdateEngagementContext(ctx context.Context, in *partnercentral.UpdateEngagementContextInput, o ...func(*partnercentral.Options)) (*partnercentral.UpdateEngagementContextOutput, error) {
	dl, _ := ctx.Deadline()
	d.deadlines = append(d.deadlines, dl)
	return d.fakeAPI.UpdateEngagementContext(ctx, in, o...)
}

func TestWriteUnderClaim(t *testing.T) {
	api := &deadlineAPI{fakeAPI: newFakeAPI()}
	c := newFakeClaimer()
	c.deadline = time.Now().Add(40 * time.Second)
	u, _ := newTestUpdater(t, api, func(cfg *Config) { cfg.Claims = c })
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	outs := u.Apply(t.Context(), []Delivery{
		jobMessage(t, u, "m1", "1", "v1", base, api.ts()),
		jobMessage(t, u, "m2", "1", "v2", base.Add(time.Minute), api.ts()),
	})
	if outs[1].Outcome != OutcomeApplied || outs[0].Outcome != OutcomeCoalesced {
		t.Fatalf("outcomes: %v", outs)
	}
	if len(c.claims) != 1 || !c.claims[0].Equal(base.Add(time.Minute)) || c.releases != 1 {
		t.Errorf("claims %v, releases %d: want one claim of the newest version, released", c.claims, c.releases)
	}
	if len(api.deadlines) != 1 || !api.deadlines[0].Equal(c.deadline) {
		t.Errorf("write deadlines %v, want the claim's %v", api.deadlines, c.deadline)
	}
}

func TestClaimRefusals(t *testing.T) {
	for _, tc := range []struct {
		name              string
		claimErr, holdErr error
		want              string
		maxDelay          time.Duration
	}{
		{name: "a newer version elsewhere", claimErr: ErrSuperseded, want: OutcomeStale},
		{name: "held by another worker", claimErr: &ClaimedError{Holder: "w2", Until: time.Now().Add(time.Hour)}, want: OutcomeRetried, maxDelay: claimRecheck + 5*time.Second},
		{name: "store unreachable", claimErr: errors.New("connection refused"), want: OutcomeRetried, maxDelay: time.Hour},
		{name: "claim lost before the write", holdErr: errors.New("lapsed and taken"), want: OutcomeRetried, maxDelay: time.Hour},
	} {
		// In a bubble: a claim held elsewhere is waited for (claimPatience)
		// on the bubble's clock.
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				base := time.Now().Add(-48 * time.Hour) // the bubble's clock starts in 2000
				api := newFakeAPI()
				c := newFakeClaimer()
				c.claimErr, c.holdErr = tc.claimErr, tc.holdErr
				u, _ := newTestUpdater(t, api, func(cfg *Config) { cfg.Claims = c })
				outs := u.Apply(t.Context(), []Delivery{
					jobMessage(t, u, "m1", "1", "v1", base, api.ts()),
					jobMessage(t, u, "m2", "1", "v2", base.Add(time.Minute), api.ts()),
				})
				for i, v := range outs {
					if v.Outcome != tc.want {
						t.Errorf("job %d: got %v, want %s", i, v, tc.want)
					}
					if tc.maxDelay > 0 && (v.Delay <= 0 || v.Delay > tc.maxDelay) {
						t.Errorf("job %d: sent back for %v, want (0, %v]", i, v.Delay, tc.maxDelay)
					}
				}
				if len(api.writes) != 0 {
					t.Errorf("writes %v, want none", api.writes)
				}
				if tc.holdErr != nil && c.releases != 1 {
					t.Errorf("releases %d, want the claim released", c.releases)
				}
				if tc.name == "held by another worker" && !strings.Contains(outs[0].Reason, "w2") {
					t.Errorf("reason %q, want the holder named", outs[0].Reason)
				}
			})
		})
	}
}

// busyThenFree is a Claimer whose context is held by another worker for
// the first busy claims.
type busyThenFree struct {
	*fakeClaimer
	busy int
}

func (b *busyThenFree) Claim(ctx context.Context, key string, v time.Time) (Claim, error) {
	if b.busy > 0 {
		b.busy--
		b.claims = append(b.claims, v)
		return nil, &ClaimedError{Holder: "w2", Until: time.Now().Add(time.Minute)}
	}
	return b.fakeClaimer.Claim(ctx, key, v)
}

// TestShortClaimIsWaitedFor: a claim another worker releases within
// claimPatience is waited for, held, not bounced through the queue.
func TestShortClaimIsWaitedFor(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		api := newFakeAPI()
		c := &busyThenFree{fakeClaimer: newFakeClaimer(), busy: 3}
		u, _ := newTestUpdater(t, api, func(cfg *Config) { cfg.Claims = c })
		start := time.Now()
		outs := u.Apply(t.Context(), []Delivery{jobMessage(t, u, "m1", "1", "v1", time.Now().Add(-time.Hour), api.ts())})
		if outs[0].Outcome != OutcomeApplied || len(c.claims) != 4 {
			t.Fatalf("got %v after %d claims, want applied on the fourth", outs[0], len(c.claims))
		}
		if waited := time.Since(start); waited > claimPatience {
			t.Errorf("waited %v for the claim, want at most %v", waited, claimPatience)
		}
	})
}

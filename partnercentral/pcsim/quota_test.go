package pcsim

import (
	"net/http"
	"testing"
	"time"
)

// writer writes one engagement over and over, each time with the timestamp
// the last success returned, and reports each call's status.
type writer struct {
	c    *client
	id   string
	last string
}

func (w *writer) write(t *testing.T) result {
	t.Helper()
	res := w.c.update(updateReq(w.id, "1", w.last, "CustomerProject", customerProject("T")))
	if res.status == http.StatusOK {
		var out struct{ EngagementLastModifiedAt string }
		res.decode(t, &out)
		w.last = out.EngagementLastModifiedAt
	}
	return res
}

// statuses makes n writes and returns how many got each status.
func (w *writer) statuses(t *testing.T, n int) map[int]int {
	t.Helper()
	got := map[int]int{}
	for range n {
		got[w.write(t).status]++
	}
	return got
}

func TestRateQuota(t *testing.T) {
	clock := newFakeClock()
	srv := newTestServer(t, Options{WriteRPS: 2, WriteBurst: 2, ReadRPS: 3, ReadBurst: 1, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	w := &writer{c: c, id: engID(40), last: addEngagement(t, srv.Sim, engID(40))}

	got := w.statuses(t, 5)
	if got[200] != 2 || got[429] != 3 {
		t.Fatalf("5 writes at one instant: got %v, want 2 x 200 and 3 x 429", got)
	}
	clock.Advance(time.Second)
	got = w.statuses(t, 3)
	if got[200] != 2 || got[429] != 1 {
		t.Fatalf("3 writes a second later: got %v, want 2 x 200 and 1 x 429", got)
	}
	clock.Advance(500 * time.Millisecond)
	if got = w.statuses(t, 2); got[200] != 1 || got[429] != 1 {
		t.Fatalf("2 writes half a second later: got %v, want 1 x 200 and 1 x 429", got)
	}

	// Reads have their own bucket: writes spent theirs, reads still pass.
	reads := map[int]int{}
	for range 3 {
		reads[c.get("Sandbox", w.id).status]++
	}
	if reads[200] != 1 || reads[429] != 2 {
		t.Errorf("3 reads at one instant with burst 1: got %v, want 1 x 200 and 2 x 429", reads)
	}
	res := w.write(t)
	wantError(t, res, http.StatusTooManyRequests, "ThrottlingException")
	if st := srv.Stats(); st.Calls[opUpdate]["200"] != 5 || st.Calls[opUpdate]["429"] != 6 {
		t.Errorf("got counts %v, want 5 x 200 and 6 x 429", st.Calls[opUpdate])
	}
}

func TestWriteBudget(t *testing.T) {
	tests := []struct {
		name     string
		throttle bool
		status   int
		errName  string
	}{
		{"402 ServiceQuotaExceeded", false, http.StatusPaymentRequired, "ServiceQuotaExceededException"},
		{"429 with BudgetAsThrottle", true, http.StatusTooManyRequests, "ThrottlingException"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			srv := newTestServer(t, Options{
				WriteRPS: 1000, WriteBurst: 1000,
				WriteBudget: 3, BudgetWindow: time.Hour, BudgetAsThrottle: tt.throttle,
				Now: clock.Now,
			})
			c := newClient(t, srv, clock.Now)
			w := &writer{c: c, id: engID(41), last: addEngagement(t, srv.Sim, engID(41))}

			// Three writes spread over 20 minutes spend the budget.
			for i := range 3 {
				if res := w.write(t); res.status != http.StatusOK {
					t.Fatalf("write %d: got %s, want 200", i, res)
				}
				clock.Advance(10 * time.Minute)
			}
			wantError(t, w.write(t), tt.status, tt.errName)
			// Reads are not part of the write budget.
			if res := c.get("Sandbox", w.id); res.status != http.StatusOK {
				t.Errorf("read with the write budget spent: got %s, want 200", res)
			}
			// At 60 minutes the first write leaves the window: one more fits.
			clock.Advance(30 * time.Minute)
			if res := w.write(t); res.status != http.StatusOK {
				t.Fatalf("write after the first left the window: got %s, want 200", res)
			}
			wantError(t, w.write(t), tt.status, tt.errName)
			clock.Advance(20 * time.Minute) // the second and third leave it too
			if got := w.statuses(t, 3); got[200] != 2 {
				t.Errorf("after two more left the window: got %v, want 2 x 200", got)
			}
		})
	}
}

func TestUnlimitedHasNoQuotas(t *testing.T) {
	clock := newFakeClock()
	srv := newTestServer(t, Options{Unlimited: true, WriteBudget: 1, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	w := &writer{c: c, id: engID(42), last: addEngagement(t, srv.Sim, engID(42))}
	if got := w.statuses(t, 20); got[200] != 20 {
		t.Errorf("20 writes at one instant with Unlimited: got %v, want 20 x 200", got)
	}
}

func TestBudgetRing(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	b := &budget{limit: 2, window: time.Minute}
	steps := []struct {
		at   time.Duration
		want bool
	}{
		{0, true}, {10 * time.Second, true}, {59 * time.Second, false},
		{time.Minute, true}, // the first left the window
		{time.Minute + 5*time.Second, false},
		{70 * time.Second, true}, // the second left
		{71 * time.Second, false},
	}
	for _, s := range steps {
		if got := b.take(t0.Add(s.at)); got != s.want {
			t.Errorf("take at %v: got %v, want %v", s.at, got, s.want)
		}
	}
}

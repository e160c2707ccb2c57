package pcsim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestError5xxShareIsSeeded(t *testing.T) {
	const n = 300
	run := func() []int {
		srv := newTestServer(t, Options{Unlimited: true, Seed: 7, Faults: Faults{Error5xx: 0.3}})
		c := newClient(t, srv, nil)
		addEngagement(t, srv.Sim, engID(50))
		statuses := make([]int, n)
		for i := range statuses {
			statuses[i] = c.get("Sandbox", engID(50)).status
		}
		if got := srv.Stats().Calls[opGet]["500"]; got != count(statuses, 500) {
			t.Errorf("got %d counted 500s, want %d", got, count(statuses, 500))
		}
		return statuses
	}
	first, second := run(), run()
	if !slices.Equal(first, second) {
		t.Errorf("two runs with seed 7 differ:\n%v\n%v", first, second)
	}
	if got := count(first, 500); got < n*2/10 || got > n*4/10 {
		t.Errorf("got %d of %d calls answered 500, want about 30%%", got, n)
	}
	if got := count(first, 500) + count(first, 200); got != n {
		t.Errorf("got %d calls answered 200 or 500, want all %d", got, n)
	}
}

func count(xs []int, v int) int {
	n := 0
	for _, x := range xs {
		if x == v {
			n++
		}
	}
	return n
}

func TestFaultsOnWrites(t *testing.T) {
	tests := []struct {
		name        string
		faults      Faults
		wantErr     bool // a transport error instead of a response
		wantStatus  int
		wantApplied bool
		wantOutcome string
	}{
		{"5xx has no effect", Faults{Error5xx: 1}, false, http.StatusInternalServerError, false, "500"},
		{"drop has no effect", Faults{Drop: 1}, true, 0, false, "drop"},
		{"lost response after the write", Faults{LostResponse: 1}, true, 0, true, "lost"},
		{"access denied", Faults{DenyAccess: true, Drop: 1}, false, http.StatusForbidden, false, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, Options{Unlimited: true, Faults: tt.faults})
			c := newClient(t, srv, nil)
			id := engID(51)
			last := addEngagement(t, srv.Sim, id)
			res, err := c.do(t.Context(), opUpdate, updateReq(id, "1", last, "CustomerProject", customerProject("T")))
			switch {
			case tt.wantErr && err == nil:
				t.Fatalf("got %s, want a transport error", res)
			case !tt.wantErr && err != nil:
				t.Fatalf("got %v, want a %d response", err, tt.wantStatus)
			case !tt.wantErr && res.status != tt.wantStatus:
				t.Fatalf("got %s, want %d", res, tt.wantStatus)
			}
			st, _ := srv.Engagement(id)
			applied := st.Contexts[0].Writes == 1 && st.ModifiedAt != last
			if applied != tt.wantApplied {
				t.Errorf("got applied %v (state %+v), want %v", applied, st, tt.wantApplied)
			}
			if got := srv.Stats().Calls[opUpdate][tt.wantOutcome]; got != 1 {
				t.Errorf("got %d calls counted %q, want 1 (%v)", got, tt.wantOutcome, srv.Stats().Calls)
			}
			if tt.wantApplied {
				// The retry a client makes after a lost response conflicts:
				// the write is not idempotent.
				srv.SetFaults(Faults{})
				wantError(t, c.update(updateReq(id, "1", last, "CustomerProject", customerProject("T"))), http.StatusConflict, "ConflictException")
			}
		})
	}
}

func TestDenyAccessOnAndOff(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(52)
	addEngagement(t, srv.Sim, id)
	for i, deny := range []bool{false, true, false} {
		srv.SetFaults(Faults{DenyAccess: deny})
		res := c.get("Sandbox", id)
		if deny {
			wantError(t, res, http.StatusForbidden, "AccessDeniedException")
		} else if res.status != http.StatusOK {
			t.Errorf("step %d with DenyAccess off: got %s, want 200", i, res)
		}
	}
}

func TestLatency(t *testing.T) {
	t.Run("honoured", func(t *testing.T) {
		const latency = 40 * time.Millisecond
		srv := newTestServer(t, Options{Unlimited: true, Faults: Faults{Latency: latency, LatencyJitter: 10 * time.Millisecond}})
		c := newClient(t, srv, nil)
		addEngagement(t, srv.Sim, engID(53))
		start := time.Now()
		res := c.get("Sandbox", engID(53))
		if elapsed := time.Since(start); elapsed < latency {
			t.Errorf("got an answer after %v, want at least %v", elapsed, latency)
		}
		if res.status != http.StatusOK {
			t.Errorf("got %s, want 200", res)
		}
	})
	t.Run("cancellable", func(t *testing.T) {
		srv := newTestServer(t, Options{Unlimited: true, Faults: Faults{Latency: time.Hour}})
		c := newClient(t, srv, nil)
		id := engID(54)
		last := addEngagement(t, srv.Sim, id)
		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		_, err := c.do(ctx, opUpdate, updateReq(id, "1", last, "CustomerProject", customerProject("T")))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the client's deadline", err)
		}
		// The handler sees the connection go and stops waiting.
		waitFor(t, "the call counted as canceled", 5*time.Second, func() bool {
			return srv.Stats().Calls[opUpdate][outcomeCanceled] == 1
		})
		if st, _ := srv.Engagement(id); st.Contexts[0].Writes != 0 {
			t.Errorf("got %d writes, want none from a canceled call", st.Contexts[0].Writes)
		}
	})
}

func TestFaultsJSON(t *testing.T) {
	f := Faults{Error5xx: 0.1, Drop: 0.01, LostResponse: 0.02, Latency: 250 * time.Millisecond, LatencyJitter: time.Second, DenyAccess: true}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Error5xx":0.1,"Drop":0.01,"LostResponse":0.02,"Latency":"250ms","LatencyJitter":"1s","DenyAccess":true}`
	if string(b) != want {
		t.Errorf("got %s, want %s", b, want)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Errorf("got %+v, %v after a round trip, want %+v", back, err, f)
	}

	bad := []struct{ name, doc string }{
		{"bad duration", `{"Latency":"soon"}`},
		{"number duration", `{"Latency":250}`},
		{"unknown field", `{"Drops":0.5}`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if err := json.Unmarshal([]byte(tt.doc), &back); err == nil {
				t.Errorf("got no error for %s", tt.doc)
			}
		})
	}
	for _, f := range []Faults{{Error5xx: 1.5}, {Drop: -0.1}, {Latency: -time.Second}} {
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(%+v): got nil, want an error", f)
		}
	}
}

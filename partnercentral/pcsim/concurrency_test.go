package pcsim

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"
)

// TestConcurrentWriters runs many clients against their own engagements
// while an outside writer makes conflicts, as the daemon would: on a
// conflict, re-read ModifiedAt and retry. Run with -race.
func TestConcurrentWriters(t *testing.T) {
	const writers, writes = 16, 25
	srv := newTestServer(t, Options{Unlimited: true, OutsideWritesPerSec: 300, Seed: 3})
	c := newClient(t, srv, nil)
	for i := range writers {
		addEngagement(t, srv.Sim, engID(100+i))
	}

	var wg sync.WaitGroup
	errs := make(chan string, writers)
	for i := range writers {
		wg.Go(func() {
			id := engID(100 + i)
			st, _ := srv.Engagement(id)
			last := st.ModifiedAt
			for done := 0; done < writes; {
				res, err := c.do(t.Context(), opUpdate, updateReq(id, "1", last, "CustomerProject", customerProject("T")))
				switch {
				case err != nil:
					errs <- err.Error()
					return
				case res.status == http.StatusOK:
					done++
					var out struct{ EngagementLastModifiedAt string }
					if err := json.Unmarshal(res.body, &out); err != nil {
						errs <- err.Error()
						return
					}
					last = out.EngagementLastModifiedAt
				case res.status == http.StatusConflict:
					g, err := c.do(t.Context(), opGet, map[string]string{"Catalog": "Sandbox", "Identifier": id})
					var out struct{ ModifiedAt string }
					if err != nil || json.Unmarshal(g.body, &out) != nil {
						errs <- "re-read failed"
						return
					}
					last = out.ModifiedAt
				default:
					errs <- res.String()
					return
				}
			}
		})
	}
	wg.Go(func() { // readers of the Go API alongside
		for range 200 {
			_ = srv.Stats()
			_, _ = srv.Engagement(engID(100))
		}
	})
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("writer failed: %s", e)
	}

	total := 0
	for i := range writers {
		st, _ := srv.Engagement(engID(100 + i))
		total += st.Contexts[0].Writes
	}
	if total != writers*writes {
		t.Errorf("got %d writes applied, want %d", total, writers*writes)
	}
	if got := srv.Stats().Calls[opUpdate]["200"]; got != writers*writes {
		t.Errorf("got %d counted 200s, want %d", got, writers*writes)
	}
}

package pcsim

import (
	"net/http"
	"testing"
	"time"
)

func TestOutsideWriterMakesConflicts(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true, OutsideWritesPerSec: 200, Seed: 1})
	c := newClient(t, srv, nil)
	id := engID(60)
	last := addEngagement(t, srv.Sim, id)

	waitFor(t, "an outside write", 5*time.Second, func() bool {
		st, _ := srv.Engagement(id)
		return st.ModifiedAt != last
	})
	st, _ := srv.Engagement(id)
	if st.ModifiedBy != outsideAccount || st.Contexts[0].Payload != nil {
		t.Errorf("got ModifiedBy %s and payload %s, want %s and the contexts untouched", st.ModifiedBy, st.Contexts[0].Payload, outsideAccount)
	}
	wantError(t, c.update(updateReq(id, "1", last, "CustomerProject", customerProject("T"))), http.StatusConflict, "ConflictException")
	if srv.Stats().OutsideWrites == 0 {
		t.Errorf("got no outside writes counted")
	}
}

func TestSetOutsideWritesPerSec(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	id := engID(61)
	last := addEngagement(t, srv.Sim, id)
	if got := srv.Stats().OutsideWrites; got != 0 {
		t.Fatalf("got %d outside writes with the writer off, want 0", got)
	}
	srv.SetOutsideWritesPerSec(2000) // above 1000/s: several writes per tick
	waitFor(t, "outside writes once turned on", 5*time.Second, func() bool {
		st, _ := srv.Engagement(id)
		return st.ModifiedAt != last && srv.Stats().OutsideWrites >= 10
	})
	srv.SetOutsideWritesPerSec(0)
	srv.Close() // returns once the writer has stopped
	n := srv.Stats().OutsideWrites
	st, _ := srv.Engagement(id)
	if st.ModifiedAt == last || n == 0 {
		t.Errorf("got ModifiedAt %s and %d outside writes, want both moved", st.ModifiedAt, n)
	}
}

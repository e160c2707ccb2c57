package pcsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/pcsync/pcsync/partnercentral/types"
)

func TestGetEngagement(t *testing.T) {
	clock := newFakeClock()
	srv := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	id := engID(20)
	last := addEngagement(t, srv.Sim, id)
	res := c.update(updateReq(id, "1", last, "CustomerProject", customerProject("Migration")))
	if res.status != http.StatusOK {
		t.Fatalf("update: got %s", res)
	}

	res = c.get("Sandbox", id)
	if res.status != http.StatusOK {
		t.Fatalf("got %s, want 200", res)
	}
	var raw map[string]json.RawMessage
	res.decode(t, &raw)
	for _, k := range []string{"Id", "Arn", "Title", "Description", "CreatedAt", "CreatedBy", "MemberCount", "ModifiedAt", "ModifiedBy", "Contexts"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("got no %s in %s", k, res.body)
		}
	}
	var out struct {
		Id, Arn, CreatedAt, CreatedBy, ModifiedAt string
		Contexts                                  []types.EngagementContextDetails
	}
	res.decode(t, &out)
	st, _ := srv.Engagement(id)
	if out.Id != id || out.ModifiedAt != st.ModifiedAt || out.CreatedAt != "2026-11-26T06:13:08.123Z" || len(out.CreatedBy) != 12 {
		t.Errorf("got %+v, want id %s, ModifiedAt %s, CreatedAt 2026-11-26T06:13:08.123Z and a 12-digit CreatedBy", out, id, st.ModifiedAt)
	}
	if len(out.Contexts) != 2 {
		t.Fatalf("got %d contexts, want 2", len(out.Contexts))
	}
	cp, ok := out.Contexts[0].Payload.(*types.EngagementContextPayloadMemberCustomerProject)
	if !ok || *cp.Value.Project.Title != "Migration" || *cp.Value.Customer.CompanyName != "Acme" {
		t.Errorf("got context 1 payload %#v, want the customer project written", out.Contexts[0].Payload)
	}
	// A context with no payload yet has no Payload key at all.
	var ctxs struct{ Contexts []map[string]json.RawMessage }
	res.decode(t, &ctxs)
	if _, ok := ctxs.Contexts[1]["Payload"]; ok {
		t.Errorf("got a Payload key for a context never written: %s", res.body)
	}
}

func TestLeadInteractionsAppendedAndCapped(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(21)
	last := addEngagement(t, srv.Sim, id)

	tests := []struct {
		name        string
		status      string
		interaction map[string]any
		wantStatus  string
		wantSources []string
	}{
		{"status defaults to Unqualified", "", interaction("src-1"), "Unqualified", []string{"src-1"}},
		{"no interaction keeps the list", "Qualified", nil, "Qualified", []string{"src-1"}},
		{"appended", "Qualified", interaction("src-2"), "Qualified", []string{"src-1", "src-2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.update(updateReq(id, "2", last, "Lead", leadPayload(tt.status, tt.interaction)))
			if res.status != http.StatusOK {
				t.Fatalf("got %s, want 200", res)
			}
			var out struct{ EngagementLastModifiedAt string }
			res.decode(t, &out)
			last = out.EngagementLastModifiedAt
			gotStatus, gotSources := leadOf(t, c, id)
			if gotStatus != tt.wantStatus || fmt.Sprint(gotSources) != fmt.Sprint(tt.wantSources) {
				t.Errorf("got %s %v, want %s %v", gotStatus, gotSources, tt.wantStatus, tt.wantSources)
			}
		})
	}

	t.Run("capped at the last 10", func(t *testing.T) {
		for i := 3; i <= 13; i++ {
			res := c.update(updateReq(id, "2", last, "Lead", leadPayload("Qualified", interaction(fmt.Sprintf("src-%d", i)))))
			if res.status != http.StatusOK {
				t.Fatalf("write %d: got %s, want 200", i, res)
			}
			var out struct{ EngagementLastModifiedAt string }
			res.decode(t, &out)
			last = out.EngagementLastModifiedAt
		}
		_, got := leadOf(t, c, id)
		var want []string
		for i := 4; i <= 13; i++ {
			want = append(want, fmt.Sprintf("src-%d", i))
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("got interactions %v, want %v", got, want)
		}
		if st, _ := srv.Engagement(id); st.Contexts[1].Writes != 14 {
			t.Errorf("got %d writes, want 14", st.Contexts[1].Writes)
		}
	})
}

// leadOf reads context 2's lead with GetEngagement.
func leadOf(t *testing.T, c *client, id string) (string, []string) {
	t.Helper()
	res := c.get("Sandbox", id)
	if res.status != http.StatusOK {
		t.Fatalf("GetEngagement: got %s", res)
	}
	var out struct {
		Contexts []types.EngagementContextDetails
	}
	res.decode(t, &out)
	lead, ok := out.Contexts[1].Payload.(*types.EngagementContextPayloadMemberLead)
	if !ok {
		t.Fatalf("got context 2 payload %#v, want a Lead", out.Contexts[1].Payload)
	}
	var sources []string
	for _, in := range lead.Value.Interactions {
		sources = append(sources, *in.SourceId)
	}
	return *lead.Value.QualificationStatus, sources
}

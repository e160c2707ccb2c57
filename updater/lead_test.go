package updater

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// leadAPI is a Partner Central with one engagement whose context "2" is a
// Lead: writes set its status and customer and append their interaction,
// as the service does.
type leadAPI struct {
	mu       sync.Mutex
	modified int
	lead     types.LeadContext
	writes   int
}

func (f *leadAPI) ts() string { return fmt.Sprintf("2026-11-26T06:00:00.%06dZ", f.modified) }

func (f *leadAPI) UpdateEngagementContext(_ context.Context, in *partnercentral.UpdateEngagementContextInput, _ ...func(*partnercentral.Options)) (*partnercentral.UpdateEngagementContextOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if aws.ToString(in.EngagementLastModifiedAt) != f.ts() {
		return nil, apiError(409, &types.ConflictException{Message: aws.String("stale")})
	}
	l := in.Payload.(*types.UpdateEngagementContextPayloadMemberLead).Value
	f.lead.QualificationStatus, f.lead.Customer = l.QualificationStatus, l.Customer
	if f.lead.QualificationStatus == nil {
		f.lead.QualificationStatus = aws.String("Unqualified") // the model's default
	}
	if l.Interaction != nil {
		f.lead.Interactions = append(f.lead.Interactions, *l.Interaction)
	}
	f.writes++
	f.modified++
	return &partnercentral.UpdateEngagementContextOutput{EngagementLastModifiedAt: aws.String(f.ts())}, nil
}

func (f *leadAPI) GetEngagement(_ context.Context, in *partnercentral.GetEngagementInput, _ ...func(*partnercentral.Options)) (*partnercentral.GetEngagementOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	raw, _ := json.Marshal(map[string]any{"Id": "2", "Type": "Lead", "Payload": map[string]any{"Lead": f.lead}})
	var d types.EngagementContextDetails
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, err
	}
	return &partnercentral.GetEngagementOutput{Id: in.Identifier, ModifiedAt: aws.String(f.ts()), Contexts: []types.EngagementContextDetails{d}}, nil
}

// leadJob is a Lead job for context "2" by company, appending interaction
// form (none when ""), of version source.
func leadJob(t *testing.T, u *Updater, id, company, form string, source time.Time) Delivery {
	t.Helper()
	lead := map[string]any{"Customer": map[string]any{"CompanyName": company, "Address": map[string]any{"CountryCode": "US"}}}
	if form != "" {
		lead["Interaction"] = map[string]any{"SourceType": "Web", "SourceId": form, "SourceName": "Website", "CustomerAction": "Asked for a demo",
			"Contact": map[string]any{"BusinessTitle": "CTO", "Email": "cto@acme.example", "FirstName": "Ada", "LastName": "Byron"}}
	}
	body, _ := json.Marshal(map[string]any{"Catalog": "Sandbox", "EngagementIdentifier": "eng-abcdefghij1234", "ContextIdentifier": "2", "Type": "Lead",
		"SourceUpdatedAt": source.Format(time.RFC3339Nano), "Payload": map[string]any{"Lead": lead}})
	if _, err := u.dec.Decode(body); err != nil {
		t.Fatal(err)
	}
	return Delivery{ID: id, Body: string(body), ReceiveCount: 1}
}

func (f *leadAPI) forms() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, i := range f.lead.Interactions {
		out = append(out, aws.ToString(i.SourceId))
	}
	return out
}

// TestRepeatedInteractionAfterOwnWriteIsReadFirst: the same Lead job sent
// twice, as two messages, with no timestamp of its own. This worker's
// write of the first gave it a timestamp to write the second with, but
// only a read tells whether the interaction is already listed: the second
// must read, find it, and not append it again, however the read-first
// policy stands.
func TestRepeatedInteractionAfterOwnWriteIsReadFirst(t *testing.T) {
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	api := &leadAPI{modified: 1}
	u, _ := newTestUpdater(t, api)
	// A stream of real changes: reading first does not pay.
	for range 50 {
		u.reads.observe(false)
	}
	noTimestamp := func(d Delivery) Delivery {
		var m map[string]any
		_ = json.Unmarshal([]byte(d.Body), &m)
		delete(m, "SourceUpdatedAt")
		b, _ := json.Marshal(m)
		d.Body = string(b)
		return d
	}
	for i, id := range []string{"m1", "m2", "m3"} {
		outs := u.Apply(t.Context(), []Delivery{noTimestamp(leadJob(t, u, id, "Acme", "form-1", base))})
		if !acked(outs[0]) {
			t.Fatalf("copy %d: %v", i+1, outs[0])
		}
	}
	if got := api.forms(); fmt.Sprint(got) != "[form-1]" {
		t.Errorf("interactions: got %v, want form-1 once", got)
	}
}

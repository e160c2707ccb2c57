package updater

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/types"
)

func TestHoldsLead(t *testing.T) {
	customer := &types.LeadCustomer{Industry: "Other", CompanyName: aws.String("Acme"), WebsiteUrl: aws.String("acme.example")}
	call := func(date string) types.LeadInteraction {
		return types.LeadInteraction{SourceType: aws.String("Event"), SourceId: aws.String("ev-1"), SourceName: aws.String("Summit"),
			Usecase: aws.String("Migration"), InteractionDate: aws.String(date), CustomerAction: aws.String("Asked for a call")}
	}
	stored := func(status string, interactions ...types.LeadInteraction) *partnercentral.GetEngagementOutput {
		return &partnercentral.GetEngagementOutput{Contexts: []types.EngagementContextDetails{{
			Id: aws.String("lead-1"), Type: types.EngagementContextTypeLead,
			Payload: &types.EngagementContextPayloadMemberLead{Value: types.LeadContext{
				QualificationStatus: aws.String(status), Customer: customer, Interactions: interactions}},
		}}}
	}
	job := func(status string, interaction *types.LeadInteraction) *partnercentral.UpdateEngagementContextInput {
		lead := types.UpdateLeadContext{Customer: customer, Interaction: interaction}
		if status != "" {
			lead.QualificationStatus = aws.String(status)
		}
		return &partnercentral.UpdateEngagementContextInput{ContextIdentifier: aws.String("lead-1"), Type: types.EngagementContextTypeLead,
			Payload: &types.UpdateEngagementContextPayloadMemberLead{Value: lead}}
	}
	first, second, third := call("2026-11-01T10:00:00Z"), call("2026-11-02T10:00:00Z"), call("2026-11-03T10:00:00Z")
	otherCustomer := job("Qualified", nil)
	otherCustomer.Payload.(*types.UpdateEngagementContextPayloadMemberLead).Value.Customer = &types.LeadCustomer{Industry: "Other", CompanyName: aws.String("Other Corp")}

	for _, tt := range []struct {
		name string
		ge   *partnercentral.GetEngagementOutput
		in   *partnercentral.UpdateEngagementContextInput
		want bool
	}{
		{"interaction is the last one", stored("Qualified", first, second), job("Qualified", &second), true},
		{"interaction is an earlier one: appending it would repeat it", stored("Qualified", first, second), job("Qualified", &first), true},
		{"interaction absent", stored("Qualified", first, second), job("Qualified", &third), false},
		{"no interactions stored", stored("Qualified"), job("Qualified", &first), false},
		{"interaction differs in one field", stored("Qualified", first), job("Qualified", func() *types.LeadInteraction {
			i := first
			i.CustomerAction = aws.String("Asked for a demo")
			return &i
		}()), false},
		{"no interaction in the job: status and customer decide", stored("Qualified", first), job("Qualified", nil), true},
		{"status differs", stored("Qualified", first), job("Disqualified", &first), false},
		{"status left out: the model's default Unqualified", stored("Unqualified"), job("", nil), true},
		{"customer differs", stored("Qualified"), otherCustomer, false},
		{"context absent", &partnercentral.GetEngagementOutput{}, job("Qualified", nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Holds(tt.ge, tt.in); got != tt.want {
				t.Errorf("Holds: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHoldsCustomerProject(t *testing.T) {
	project := func(title string) types.CustomerProjectsContext {
		return types.CustomerProjectsContext{Project: &types.EngagementCustomerProjectDetails{Title: aws.String(title), BusinessProblem: aws.String("Needs to migrate 40 VMs to AWS")}}
	}
	ge := &partnercentral.GetEngagementOutput{Contexts: []types.EngagementContextDetails{{
		Id: aws.String("1"), Type: types.EngagementContextTypeCustomerProject,
		Payload: &types.EngagementContextPayloadMemberCustomerProject{Value: project("v1")},
	}}}
	in := func(id, title string) *partnercentral.UpdateEngagementContextInput {
		return &partnercentral.UpdateEngagementContextInput{ContextIdentifier: aws.String(id), Type: types.EngagementContextTypeCustomerProject,
			Payload: &types.UpdateEngagementContextPayloadMemberCustomerProject{Value: project(title)}}
	}
	if !Holds(ge, in("1", "v1")) {
		t.Error("same payload: got not held, want held")
	}
	if Holds(ge, in("1", "v2")) {
		t.Error("other title: got held, want not held")
	}
	if Holds(ge, in("2", "v1")) {
		t.Error("other context: got held, want not held")
	}
}

func TestWithoutRepeatedInteraction(t *testing.T) {
	interaction := func(id string) *types.LeadInteraction {
		return &types.LeadInteraction{SourceType: aws.String("Event"), SourceId: aws.String(id), InteractionDate: aws.String("2026-11-02T10:00:00Z")}
	}
	ge := &partnercentral.GetEngagementOutput{Contexts: []types.EngagementContextDetails{{
		Id: aws.String("lead-1"), Type: types.EngagementContextTypeLead,
		Payload: &types.EngagementContextPayloadMemberLead{Value: types.LeadContext{QualificationStatus: aws.String("Unqualified"),
			Interactions: []types.LeadInteraction{*interaction("ev-1")}}},
	}}}
	in := func(i *types.LeadInteraction) partnercentral.UpdateEngagementContextInput {
		return partnercentral.UpdateEngagementContextInput{ContextIdentifier: aws.String("lead-1"), Type: types.EngagementContextTypeLead,
			Payload: &types.UpdateEngagementContextPayloadMemberLead{Value: types.UpdateLeadContext{QualificationStatus: aws.String("Qualified"), Interaction: i}}}
	}
	repeated := in(interaction("ev-1"))
	got := withoutRepeatedInteraction(ge, repeated)
	if lead := got.Payload.(*types.UpdateEngagementContextPayloadMemberLead).Value; lead.Interaction != nil || aws.ToString(lead.QualificationStatus) != "Qualified" {
		t.Errorf("repeated interaction: got %+v, want the status without the interaction", lead)
	}
	if repeated.Payload.(*types.UpdateEngagementContextPayloadMemberLead).Value.Interaction == nil {
		t.Error("the job's own input was changed; want a copy")
	}
	fresh := withoutRepeatedInteraction(ge, in(interaction("ev-2")))
	if fresh.Payload.(*types.UpdateEngagementContextPayloadMemberLead).Value.Interaction == nil {
		t.Error("new interaction: got it dropped, want it sent")
	}
}

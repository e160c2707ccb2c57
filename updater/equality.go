package updater

import (
	"encoding/json"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// Holds says whether the engagement's context already holds what the job
// would write, compared as the service stores it: a CustomerProject payload
// as a whole; for a Lead its QualificationStatus and Customer, and the
// job's Interaction only when an identical one is already among the lead's
// interactions (the service appends interactions, so writing a repeated
// one would add it twice).
func Holds(ge *partnercentral.GetEngagementOutput, in *partnercentral.UpdateEngagementContextInput) bool {
	cur, found := contextPayload(ge, aws.ToString(in.ContextIdentifier))
	if !found {
		return false
	}
	switch want := in.Payload.(type) {
	case *types.UpdateEngagementContextPayloadMemberCustomerProject:
		got, ok := cur.(*types.EngagementContextPayloadMemberCustomerProject)
		return ok && sameJSON(got.Value, want.Value)
	case *types.UpdateEngagementContextPayloadMemberLead:
		got, ok := cur.(*types.EngagementContextPayloadMemberLead)
		if !ok {
			return false
		}
		status := aws.ToString(want.Value.QualificationStatus)
		if status == "" {
			status = "Unqualified" // the model's default
		}
		return aws.ToString(got.Value.QualificationStatus) == status && sameJSON(got.Value.Customer, want.Value.Customer) &&
			(want.Value.Interaction == nil || hasInteraction(got.Value, *want.Value.Interaction))
	}
	return false
}

// withoutRepeatedInteraction returns in without its Lead Interaction when
// the engagement's lead already holds an identical one: the service appends
// the interaction of every write, so sending it again would list it twice.
// Other inputs are returned as they are.
func withoutRepeatedInteraction(ge *partnercentral.GetEngagementOutput, in partnercentral.UpdateEngagementContextInput) partnercentral.UpdateEngagementContextInput {
	want, ok := in.Payload.(*types.UpdateEngagementContextPayloadMemberLead)
	if !ok || want.Value.Interaction == nil {
		return in
	}
	cur, _ := contextPayload(ge, aws.ToString(in.ContextIdentifier))
	if got, ok := cur.(*types.EngagementContextPayloadMemberLead); ok && hasInteraction(got.Value, *want.Value.Interaction) {
		lead := want.Value
		lead.Interaction = nil
		in.Payload = &types.UpdateEngagementContextPayloadMemberLead{Value: lead}
	}
	return in
}

// interactionOf is the Lead Interaction job would append, or nil: the one
// part of a write that is not idempotent.
func interactionOf(job *Job) *types.LeadInteraction {
	lead, ok := job.Input.Payload.(*types.UpdateEngagementContextPayloadMemberLead)
	if !ok {
		return nil
	}
	return lead.Value.Interaction
}

// contextPayload is what the engagement's context id holds, and whether the
// engagement has that context with a payload.
func contextPayload(ge *partnercentral.GetEngagementOutput, id string) (types.EngagementContextPayload, bool) {
	if c := findContext(ge, id); c != nil {
		return c.Payload, c.Payload != nil
	}
	return nil, false
}

// findContext is the engagement's context id, or nil.
func findContext(ge *partnercentral.GetEngagementOutput, id string) *types.EngagementContextDetails {
	for i := range ge.Contexts {
		if aws.ToString(ge.Contexts[i].Id) == id {
			return &ge.Contexts[i]
		}
	}
	return nil
}

// hasInteraction says whether the lead already lists an interaction
// identical to i.
func hasInteraction(lead types.LeadContext, i types.LeadInteraction) bool {
	return slices.ContainsFunc(lead.Interactions, func(have types.LeadInteraction) bool { return sameJSON(have, i) })
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

package updater

import (
	"encoding/json"

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
	var cur types.EngagementContextPayload
	found := false
	for _, c := range ge.Contexts {
		if aws.ToString(c.Id) == aws.ToString(in.ContextIdentifier) {
			cur, found = c.Payload, true
			break
		}
	}
	if !found || cur == nil {
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
		if aws.ToString(got.Value.QualificationStatus) != status || !sameJSON(got.Value.Customer, want.Value.Customer) {
			return false
		}
		if want.Value.Interaction == nil {
			return true
		}
		for _, have := range got.Value.Interactions {
			if sameJSON(have, *want.Value.Interaction) {
				return true
			}
		}
		return false
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
	for _, c := range ge.Contexts {
		if aws.ToString(c.Id) != aws.ToString(in.ContextIdentifier) {
			continue
		}
		got, ok := c.Payload.(*types.EngagementContextPayloadMemberLead)
		if !ok {
			return in
		}
		for _, have := range got.Value.Interactions {
			if sameJSON(have, *want.Value.Interaction) {
				lead := want.Value
				lead.Interaction = nil
				in.Payload = &types.UpdateEngagementContextPayloadMemberLead{Value: lead}
				return in
			}
		}
	}
	return in
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

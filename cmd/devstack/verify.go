package main

// This file checks the end state of a demo run: what the simulator holds
// and what the dead-letter queue holds, against what the batch planted.

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

// engagements is the simulator's state, as verify reads it.
type engagements interface {
	Engagement(id string) (pcsim.EngagementState, bool)
}

// verify checks the end state: every context a valid job updates holds its
// newest version, and every other job is in the dead-letter queue, with
// the class it should have and a reason, and nothing else is.
func verify(b *batch, sim engagements, dlq []queue.DLQMessage) []string {
	var problems []string
	dec := updater.NewDecoder(schema.New())
	newest := b.newest()
	keys := make([]string, 0, len(newest))
	for k := range newest {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	wrong := 0
	for _, k := range keys {
		j := newest[k]
		if why := holdsNewest(sim, dec, j); why != "" {
			wrong++
			if wrong <= 5 {
				problems = append(problems, fmt.Sprintf("context %s: %s", k, why))
			}
		}
	}
	if wrong > 5 {
		problems = append(problems, fmt.Sprintf("... %d contexts in all do not hold their newest version", wrong))
	}

	byBody := map[string]queue.DLQMessage{}
	for _, e := range dlq {
		byBody[e.Body] = e
	}
	expected := map[string]bool{}
	for _, j := range b.jobs {
		if j.fate == fateApply {
			continue
		}
		expected[j.body] = true
		e, ok := byBody[j.body]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("job with %s (%s/%s) is not in the dead-letter queue", j.what, j.eng, j.ctx))
		case e.Reason == "":
			problems = append(problems, fmt.Sprintf("job with %s is in the dead-letter queue without a reason", j.what))
		case e.Class != j.class:
			problems = append(problems, fmt.Sprintf("job with %s is in the dead-letter queue as %s, want %s", j.what, e.Class, j.class))
		}
	}
	for _, e := range dlq {
		if !expected[e.Body] {
			eng, ctx := bodyContext(e.Body)
			problems = append(problems, fmt.Sprintf("valid job for %s/%s is in the dead-letter queue: %s: %s", eng, ctx, e.Class, e.Reason))
		}
	}
	return problems
}

// holdsNewest says what is wrong with the context job j updates, or ""
// when it holds j's payload as the last write left it: for a customer
// project the whole payload; for a lead its status, its customer and, last
// of its interactions, j's. The comparison is updater.Holds, the one the
// worker acts on. Holds accepts a lead whose interactions include j's
// anywhere (it asks whether a write would change anything), while the
// demo's promise is that the newest version is the one written last, so
// Holds is shown the lead with its last interaction only.
func holdsNewest(sim engagements, dec *updater.Decoder, j *sampleJob) string {
	st, ok := sim.Engagement(j.eng)
	if !ok {
		return "the engagement is gone"
	}
	ge, err := asGetEngagement(st)
	if err != nil {
		return "its payload cannot be read: " + err.Error()
	}
	i := slices.IndexFunc(ge.Contexts, func(c types.EngagementContextDetails) bool { return aws.ToString(c.Id) == j.ctx })
	switch {
	case i < 0:
		return "the engagement has no such context"
	case ge.Contexts[i].Payload == nil:
		return "it has no payload"
	}
	if l, ok := ge.Contexts[i].Payload.(*types.EngagementContextPayloadMemberLead); ok && len(l.Value.Interactions) > 1 {
		last := *l
		last.Value.Interactions = l.Value.Interactions[len(l.Value.Interactions)-1:]
		ge.Contexts[i].Payload = &last
	}
	job, err := dec.Decode([]byte(j.body))
	if err != nil {
		// TestSampleBatch rules this out.
		return "the job that should have updated it is not valid: " + err.Error()
	}
	if updater.Holds(ge, &job.Input) {
		return ""
	}
	lead, ok := job.Input.Payload.(*types.UpdateEngagementContextPayloadMemberLead)
	if !ok {
		return "does not hold the newest version"
	}
	// Holds does not say which part of a lead differs; asked again without
	// the interaction, it does.
	without := job.Input
	v := lead.Value
	v.Interaction = nil
	without.Payload = &types.UpdateEngagementContextPayloadMemberLead{Value: v}
	if updater.Holds(ge, &without) {
		return "its last interaction is not the newest version's"
	}
	return "does not hold the newest version of the lead"
}

// asGetEngagement is the simulator's snapshot of an engagement as the
// partnercentral client reads GetEngagement's answer: each context's
// payload, stored in GetEngagement's form, decoded into the generated
// union. The check reads the snapshot rather than calling GetEngagement so
// that its reads stay out of the figures the summary prints, and clear of
// the simulated faults and read quota.
func asGetEngagement(st pcsim.EngagementState) (*partnercentral.GetEngagementOutput, error) {
	ge := &partnercentral.GetEngagementOutput{Id: &st.Id, ModifiedAt: &st.ModifiedAt}
	for _, c := range st.Contexts {
		wire, err := json.Marshal(c)
		if err != nil {
			return nil, fmt.Errorf("context %s: %w", c.Id, err)
		}
		var d types.EngagementContextDetails
		if err := json.Unmarshal(wire, &d); err != nil {
			return nil, fmt.Errorf("context %s: %w", c.Id, err)
		}
		ge.Contexts = append(ge.Contexts, d)
	}
	return ge, nil
}

// bodyContext reads the engagement and context a job body names, or
// "(not JSON)".
func bodyContext(body string) (eng, ctx string) {
	var j struct{ EngagementIdentifier, ContextIdentifier string }
	if err := json.Unmarshal([]byte(body), &j); err != nil {
		return "(not JSON)", ""
	}
	return j.EngagementIdentifier, j.ContextIdentifier
}

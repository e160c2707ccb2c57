package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// nightlyFull is a full nightly export: every context of every engagement
// sent again, one job per context, a tenth of them with a real change, none
// carrying a timestamp (a CRM does not know Partner Central's ModifiedAt).
// Engagements hold a CustomerProject (context 1) and a Lead with an
// interaction (context 2), as a previous sync left them.
func nightlyFull(ctx context.Context, e *env) result {
	const target = "writes <= 1.02 x changed contexts, reads <= 1.05 x engagements, every context right"
	engagements := e.n(1000, 20)
	s, err := devstack.Start(ctx, devstack.Options{Queue: e.names.next("nightly"), Sim: fastSim(0)})
	if err != nil {
		return failed(target, err)
	}
	defer s.Close()

	type want struct {
		eng, ctx, text string // the context must contain text
		changed        bool
	}
	var (
		jobs    []job
		wants   []want
		changed int
	)
	for i := range engagements {
		eng := devstack.EngagementID(i + 1)
		project, lead := nightlyProject(i, 1), nightlyLead(i, "Unqualified")
		if err := s.Sim.AddEngagement(pcsim.NewEngagement{Id: eng, Catalog: "Sandbox", Contexts: []pcsim.NewContext{
			{Id: "1", Type: types.EngagementContextTypeCustomerProject, Payload: unionMember("CustomerProject", project)},
			{Id: "2", Type: types.EngagementContextTypeLead, Payload: unionMember("Lead", lead)},
		}}); err != nil {
			return failed(target, err)
		}
		// Every fifth engagement has one change: its project (odd) or its
		// lead's status (even); a tenth of the jobs.
		projectChanged, leadChanged := i%5 == 0 && i%10 != 0, i%10 == 0
		if projectChanged {
			project = nightlyProject(i, 2)
			changed++
		}
		if leadChanged {
			lead = nightlyLead(i, "Qualified")
			changed++
		}
		jobs = append(jobs,
			job{eng: eng, ctx: "1", body: nightlyBody(eng, "1", "CustomerProject", project)},
			job{eng: eng, ctx: "2", body: nightlyBody(eng, "2", "Lead", lead)})
		wants = append(wants,
			want{eng: eng, ctx: "1", text: project["Project"].(map[string]any)["Title"].(string), changed: projectChanged},
			want{eng: eng, ctx: "2", text: `"QualificationStatus":"` + lead["QualificationStatus"].(string) + `"`, changed: leadChanged})
	}
	if err := enqueue(ctx, s, jobs); err != nil {
		return failed(target, err)
	}
	res, err := runWorker(ctx, s, fastWorker, len(jobs), 3*time.Minute)
	if err != nil {
		return failed(target, err)
	}
	writes, reads := calls(res.sim, "UpdateEngagementContext"), calls(res.sim, "GetEngagement")
	m := gather(res.reg)
	unchanged := m.counter("pcsync_jobs_total", map[string]string{"outcome": "unchanged"})

	// Every context right: the changed ones at their new version, the
	// others as they were, and no lead with its interaction twice.
	wrong := 0
	for _, w := range wants {
		st, _ := s.Sim.Engagement(w.eng)
		ok := false
		for _, c := range st.Contexts {
			if c.Id == w.ctx {
				ok = strings.Contains(string(c.Payload), w.text) && strings.Count(string(c.Payload), `"InteractionDate"`) <= 1
			}
		}
		if !ok {
			wrong++
		}
	}
	perChange := float64(writes) / float64(changed)
	perEngagement := float64(reads) / float64(engagements)
	// At the account's real quotas (1 write/s, 10 reads/s), calls paced
	// by the slower of the two; against writing every job.
	atQuota := time.Duration(max(float64(writes), float64(reads)/10) * float64(time.Second))
	writeAll := time.Duration(len(jobs)) * time.Second
	return result{Target: target,
		Figures: []figure{fig("writes_per_change", perChange, "calls"), fig("reads_per_engagement", perEngagement, "calls"),
			fig("writes", float64(writes), "calls"), fig("reads", float64(reads), "calls"), fig("changed_contexts", float64(changed), ""),
			fig("unchanged", unchanged, "jobs"), fig("jobs", float64(len(jobs)), "jobs"), fig("contexts_wrong", float64(wrong), ""),
			fig("hours_at_quota", atQuota.Hours(), "h"), fig("hours_writing_every_job", writeAll.Hours(), "h")},
		Summary: fmt.Sprintf("%.3f writes/change, %.3f reads/engagement; %d writes, %d reads for %d jobs (%d changes, %.0f unchanged); %d contexts wrong",
			perChange, perEngagement, writes, reads, len(jobs), changed, unchanged, wrong),
		Pass: perChange <= 1.02 && perEngagement <= 1.05 && wrong == 0,
		Notes: fmt.Sprintf("%d engagements x 2 contexts holding their payloads, full export without timestamps, 10%% changed; at the real quotas "+
			"(1 write/s, 10 reads/s) the batch needs %v, writing every job would need %v", engagements, atQuota.Round(time.Second), writeAll.Round(time.Second)),
	}
}

func unionMember(member string, v map[string]any) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{member: v})
	return raw
}

func nightlyBody(eng, ctxID, typ string, payload map[string]any) string {
	raw, _ := json.Marshal(map[string]any{
		"Catalog": "Sandbox", "EngagementIdentifier": eng, "ContextIdentifier": ctxID, "Type": typ,
		"Payload": map[string]any{typ: payload},
	})
	return string(raw)
}

func nightlyProject(i, version int) map[string]any {
	return map[string]any{
		"Customer": map[string]any{"Industry": "Software and Internet", "CompanyName": fmt.Sprintf("Company %d", i),
			"WebsiteUrl": fmt.Sprintf("https://company%d.example", i), "CountryCode": "US"},
		"Project": map[string]any{"Title": fmt.Sprintf("Data center exit %d v%d", i, version),
			"BusinessProblem":      "Moves 40 VMs and two databases to AWS before the lease ends",
			"TargetCompletionDate": "2027-03-31"},
	}
}

func nightlyLead(i int, status string) map[string]any {
	return map[string]any{
		"QualificationStatus": status,
		"Customer": map[string]any{"CompanyName": fmt.Sprintf("Company %d", i), "Industry": "Software and Internet",
			"WebsiteUrl": fmt.Sprintf("https://company%d.example", i),
			"Address":    map[string]any{"City": "Austin", "PostalCode": "78701", "StateOrRegion": "Texas", "CountryCode": "US"}},
		"Interaction": map[string]any{
			"SourceType": "Event", "SourceId": fmt.Sprintf("ev-%d", i), "SourceName": "Summit",
			"Usecase": "Migration", "InteractionDate": "2026-11-02T10:00:00Z", "CustomerAction": "Asked for a call",
			"BusinessProblem": "Moves 40 VMs to AWS before the lease ends",
			"Contact":         map[string]any{"BusinessTitle": "CTO", "FirstName": "Ana", "LastName": "Silva", "Email": "ana@example.com"},
		},
	}
}

package main

// This file makes the demo's batch of sample jobs: the engagements as a
// partner's CRM would have them in Partner Central, and the nightly batch
// of jobs its export would put on the queue, with the mistakes real
// exports make.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/updater"
)

// fate is what must become of a sample job for the demo to pass.
type fate int

const (
	fateApply    fate = iota // valid: applied, or superseded by a newer version of its context
	fateInvalid              // breaks the API model: dead-lettered before any call
	fateRejected             // valid as far as pcsync can tell, refused by the service
)

// sampleJob is one job of the batch.
type sampleJob struct {
	fate  fate
	class string // the dead-letter class expected, for fateInvalid and fateRejected
	what  string // what is wrong with it, for fateInvalid and fateRejected
	eng   string
	ctx   string
	typ   types.EngagementContextType
	// source is SourceUpdatedAt: when the CRM record changed. Zero: none.
	source time.Time
	// payload is the value of the payload union's member (the object
	// under "CustomerProject" or "Lead").
	payload map[string]any
	// breakIt, when set, spoils the body just before it is encoded.
	breakIt func(body map[string]any)
	// raw, when set, is the body as it is (one that is not JSON).
	raw string
	// body is the message body, set by encode.
	body string
}

// batch is the sample data of one demo run.
type batch struct {
	engagements []pcsim.NewEngagement
	jobs        []*sampleJob // in the order they are sent
	contexts    int          // contexts the valid jobs update
	multi       int          // of which changed more than once during the day
}

// Kinds of invalid job, most instructive first: a small batch gets the
// first ones. Each breaks a different rule of the API model.
var invalidKinds = []struct {
	what string
	typ  types.EngagementContextType
	// spoil breaks the job: its payload member, or the whole body.
	spoil func(payload, body map[string]any)
}{
	{`CountryCode "USA" instead of "US"`, types.EngagementContextTypeCustomerProject, func(p, _ map[string]any) {
		p["Customer"].(map[string]any)["CountryCode"] = "USA"
	}},
	{"Project.Title missing", types.EngagementContextTypeCustomerProject, func(p, _ map[string]any) {
		delete(p["Project"].(map[string]any), "Title")
	}},
	{"a CSV line, not JSON", types.EngagementContextTypeCustomerProject, nil},
	{"Type Lead with a CustomerProject payload", types.EngagementContextTypeCustomerProject, func(_, b map[string]any) {
		b["Type"] = "Lead"
	}},
	{"contact e-mail in capitals", types.EngagementContextTypeLead, func(p, _ map[string]any) {
		contact := p["Interaction"].(map[string]any)["Contact"].(map[string]any)
		contact["Email"] = contact["FirstName"].(string) + "." + contact["LastName"].(string) + "@Example.com"
	}},
	{"phone number not in E.164 form", types.EngagementContextTypeLead, func(p, _ map[string]any) {
		p["Interaction"].(map[string]any)["Contact"].(map[string]any)["Phone"] = "(555) 010-4477"
	}},
	{"TargetCompletionDate on 30 February", types.EngagementContextTypeCustomerProject, func(p, _ map[string]any) {
		project := p["Project"].(map[string]any)
		project["TargetCompletionDate"] = project["TargetCompletionDate"].(string)[:4] + "-02-30"
	}},
	{"BusinessProblem under 20 characters", types.EngagementContextTypeCustomerProject, func(p, _ map[string]any) {
		p["Project"].(map[string]any)["BusinessProblem"] = "Move to AWS"
	}},
	{`Industry "IT" is not in the model`, types.EngagementContextTypeCustomerProject, func(p, _ map[string]any) {
		p["Customer"].(map[string]any)["Industry"] = "IT"
	}},
}

// planBatch makes the sample data for a batch of n jobs (n >= 20). The same
// seed and n give the same engagements and jobs; now only moves the dates.
func planBatch(seed int64, n int, now time.Time) *batch {
	g := &generator{rng: rand.New(rand.NewPCG(uint64(seed), 0x5eed)), ids: map[string]bool{}, now: now.UTC()}
	b := &batch{}
	nInvalid := min(len(invalidKinds), max(1, n/8))
	nRejected := max(3, n/50)
	nValid := n - nInvalid - nRejected

	// A context gets one job, or, when it changed several times during
	// the day, one job per version.
	var versions []int
	for left := nValid; left > 0; {
		k := 1
		if g.rng.IntN(100) < 12 {
			k = 2 + g.rng.IntN(3)
		}
		k = min(k, left)
		versions = append(versions, k)
		left -= k
	}
	b.contexts = len(versions)

	// About three in four contexts change in the night; every engagement
	// has a customer project (context 1) and a lead (context 2).
	companies := make([]*company, (2*len(versions)+2)/3+1)
	for i := range companies {
		c := g.company()
		companies[i] = c
		b.engagements = append(b.engagements, pcsim.NewEngagement{
			Id: c.eng, Catalog: "Sandbox", Title: c.title(),
			Contexts: []pcsim.NewContext{
				{Id: "1", Type: types.EngagementContextTypeCustomerProject, Payload: member("CustomerProject", g.project(c, 0))},
				{Id: "2", Type: types.EngagementContextTypeLead, Payload: member("Lead", g.lead(c, 0, c.seededAt))},
			},
		})
	}
	type slot struct {
		c   *company
		ctx string
	}
	// The first engagement's lead gets no valid job: the job that names
	// it with the wrong type must not meet one in a batch.
	pool := []slot{{companies[0], "1"}}
	for _, c := range companies[1:] {
		pool = append(pool, slot{c, "1"}, slot{c, "2"})
	}
	g.rng.Shuffle(len(pool), func(i, j int) { pool[i], pool[j] = pool[j], pool[i] })

	var groups [][]*sampleJob
	for i, k := range versions {
		s := pool[i]
		if k > 1 {
			b.multi++
		}
		times := g.changeTimes(k)
		var group []*sampleJob
		for v, at := range times {
			j := &sampleJob{fate: fateApply, eng: s.c.eng, ctx: s.ctx, source: at}
			if s.ctx == "1" {
				j.typ, j.payload = types.EngagementContextTypeCustomerProject, g.project(s.c, v+1)
			} else {
				j.typ, j.payload = types.EngagementContextTypeLead, g.lead(s.c, v+1, at)
			}
			group = append(group, j)
		}
		// Versions of one record sit close together in an export, in no
		// particular order: most meet in one receive and are coalesced.
		g.rng.Shuffle(len(group), func(i, j int) { group[i], group[j] = group[j], group[i] })
		groups = append(groups, group)
	}

	for i := range nInvalid {
		groups = append(groups, []*sampleJob{g.invalid(i, companies[g.rng.IntN(len(companies))])})
	}
	for i := range nRejected {
		groups = append(groups, []*sampleJob{g.rejected(i, companies[0])})
	}
	g.rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	for _, grp := range groups {
		b.jobs = append(b.jobs, grp...)
	}
	return b
}

// invalid makes the i-th kind of invalid job, for one of c's contexts.
func (g *generator) invalid(i int, c *company) *sampleJob {
	kind := invalidKinds[i]
	at := g.changeTimes(1)[0]
	j := &sampleJob{fate: fateInvalid, class: updater.ClassInvalidJob, what: kind.what, eng: c.eng, typ: kind.typ, source: at}
	if kind.typ == types.EngagementContextTypeCustomerProject {
		j.ctx, j.payload = "1", g.project(c, 1)
	} else {
		j.ctx, j.payload = "2", g.lead(c, 1, at)
	}
	if kind.spoil == nil {
		// An export written with the wrong format: a CSV line.
		j.raw = fmt.Sprintf("Sandbox;%s;%s;%s;%s;%s", c.eng, j.ctx, j.typ, c.industry, c.country)
		return j
	}
	j.breakIt = func(body map[string]any) {
		kind.spoil(body["Payload"].(map[string]any)[string(kind.typ)].(map[string]any), body)
	}
	return j
}

// rejected makes a job pcsync finds valid and the service refuses: for an
// engagement it does not have, for a context it does not have, or of the
// wrong type for its context. reserved is the engagement whose lead
// context no valid job updates.
func (g *generator) rejected(i int, reserved *company) *sampleJob {
	at := g.changeTimes(1)[0]
	switch i {
	case 1:
		return &sampleJob{fate: fateRejected, class: updater.ClassRejected, what: "a customer project sent to a Lead context",
			eng: reserved.eng, ctx: "2", typ: types.EngagementContextTypeCustomerProject, payload: g.project(reserved, 1)}
	case 2:
		return &sampleJob{fate: fateRejected, class: updater.ClassNotFound, what: "context 3, which the engagement does not have",
			eng: reserved.eng, ctx: "3", typ: types.EngagementContextTypeCustomerProject, payload: g.project(reserved, 1), source: at}
	}
	// A record still linked to an engagement that is gone (or in another
	// catalog): its id is unknown to the service.
	c := g.company()
	return &sampleJob{fate: fateRejected, class: updater.ClassNotFound, what: "an engagement Partner Central does not have",
		eng: c.eng, ctx: "1", typ: types.EngagementContextTypeCustomerProject, payload: g.project(c, 1), source: at}
}

// encode writes every job's body. modifiedAt gives an engagement's
// ModifiedAt as the CRM stored it at the last sync, "" when it has none.
func (b *batch) encode(modifiedAt func(eng string) string) error {
	for _, j := range b.jobs {
		if j.raw != "" {
			j.body = j.raw
			continue
		}
		body := map[string]any{
			"Catalog":              "Sandbox",
			"EngagementIdentifier": j.eng,
			"ContextIdentifier":    j.ctx,
			"Type":                 string(j.typ),
			"Payload":              map[string]any{string(j.typ): j.payload},
		}
		if ts := modifiedAt(j.eng); ts != "" {
			body["EngagementLastModifiedAt"] = ts
		}
		if !j.source.IsZero() {
			body["SourceUpdatedAt"] = j.source.Format(time.RFC3339)
		}
		if j.breakIt != nil {
			j.breakIt(body)
		}
		raw, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode the job for %s/%s: %w", j.eng, j.ctx, err)
		}
		j.body = string(raw)
	}
	return nil
}

// newest returns, for each context the valid jobs update, the job with its
// newest version, by "engagement/context".
func (b *batch) newest() map[string]*sampleJob {
	out := map[string]*sampleJob{}
	for _, j := range b.jobs {
		if j.fate != fateApply {
			continue
		}
		k := j.eng + "/" + j.ctx
		if cur, ok := out[k]; !ok || j.source.After(cur.source) {
			out[k] = j
		}
	}
	return out
}

// count returns how many jobs have fate f.
func (b *batch) count(f fate) int {
	n := 0
	for _, j := range b.jobs {
		if j.fate == f {
			n++
		}
	}
	return n
}

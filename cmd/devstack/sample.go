package main

// This file makes the demo's sample data: engagements as a partner's CRM
// would have them in Partner Central, and the nightly batch of jobs its
// export would put on the queue, with the mistakes real exports make.

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
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

func member(name string, v map[string]any) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{name: v})
	return raw
}

// generator draws the sample data from one seeded source.
type generator struct {
	rng *rand.Rand
	ids map[string]bool
	now time.Time
}

// company is one customer, with the engagement the partner has for it.
type company struct {
	eng      string
	name     string
	short    string // for the engagement title
	slug     string
	industry string
	idea     projectIdea
	country  string
	city     place
	segment  string
	contact  person
	phone    string
	seededAt time.Time
}

func (c *company) title() string {
	t := c.short + ": " + c.idea.short
	if r := []rune(t); len(r) > 40 {
		t = strings.TrimSpace(string(r[:40]))
	}
	return t
}

type projectIdea struct {
	short, title, problem, usecase string
}

type place struct {
	city, postal, state string
}

type person struct {
	first, last, title string
}

type industryProfile struct {
	industry string
	suffixes []string
	ideas    []projectIdea
}

// The industries are the model's own enum values.
var industries = []industryProfile{
	{string(types.IndustrySoftwareInternet), []string{"Labs", "Software", "Cloud"}, []projectIdea{
		{"SaaS on EKS", "Multi-tenant SaaS platform on Amazon EKS", "Runs its SaaS product on self-managed Kubernetes in a colocation facility and spends two engineers on upgrades alone.", "Modernization"},
		{"Serverless APIs", "Public API rebuilt on AWS Lambda", "Its public API falls over at every product launch; traffic is ten times the daily average for a few hours.", "Application development"},
	}},
	{string(types.IndustryHealthcare), []string{"Health", "Clinics", "Care"}, []projectIdea{
		{"Patient data lake", "HIPAA-eligible patient data lake", "Patient records sit in four EHR systems; analysts wait weeks for a combined extract.", "Analytics"},
		{"Imaging archive", "Medical imaging archive on Amazon S3", "The on-premises PACS archive is full and the storage contract ends next year.", "Storage"},
	}},
	{string(types.IndustryFinancialServices), []string{"Capital", "Bank", "Finance"}, []projectIdea{
		{"Core banking", "Core banking modernization", "Batch jobs of the mainframe core run past the morning cut-off twice a month.", "Modernization"},
		{"Fraud detection", "Real-time card fraud detection", "Fraud is found a day after the transaction, when the nightly rules engine runs.", "Machine learning"},
	}},
	{string(types.IndustryRetail), []string{"Outfitters", "Markets", "Stores"}, []projectIdea{
		{"Peak-ready shop", "E-commerce platform ready for peak season", "The web shop slowed to a crawl during last year's holiday sale and lost an estimated 8% of orders.", "Migration"},
		{"Demand forecast", "Store demand forecasting", "Stores order stock from spreadsheets; overstock and stock-outs both cost margin.", "Machine learning"},
	}},
	{string(types.IndustryManufacturing), []string{"Industries", "Works", "Components"}, []projectIdea{
		{"Predictive upkeep", "IoT predictive maintenance for the assembly lines", "Unplanned stops of the press lines cost several hours of output each month.", "IoT"},
		{"SAP on AWS", "SAP S/4HANA migration", "The SAP landscape runs on hardware that leaves support at the end of the year.", "Migration"},
	}},
	{string(types.IndustryMediaEntertainment), []string{"Studios", "Media", "Pictures"}, []projectIdea{
		{"Video pipeline", "Elastic video transcoding pipeline", "Transcoding new releases takes days on a fixed render farm that sits idle between releases.", "Media"},
	}},
	{string(types.IndustryTransportationLogistics), []string{"Logistics", "Freight", "Transport"}, []projectIdea{
		{"Route planning", "Route optimization with machine learning", "Dispatchers plan routes by hand every morning; trucks run a fifth of their miles empty.", "Machine learning"},
	}},
	{string(types.IndustryEducation), []string{"Learning", "Academy", "University"}, []projectIdea{
		{"LMS migration", "Learning platform migration", "The learning platform runs on two aging servers that failed during the last exam week.", "Migration"},
	}},
	{string(types.IndustryEnergyPowerUtilities), []string{"Energy", "Power", "Utilities"}, []projectIdea{
		{"Smart meters", "Smart meter data analytics", "Readings from 2 million smart meters arrive every 15 minutes and the warehouse cannot keep up.", "Analytics"},
	}},
	{string(types.IndustryTravel), []string{"Travel", "Journeys", "Tours"}, []projectIdea{
		{"Booking engine", "Booking engine modernization", "The booking engine is a monolith that only two people still dare to deploy.", "Modernization"},
	}},
	{string(types.IndustryGaming), []string{"Games", "Interactive", "Play"}, []projectIdea{
		{"Game backend", "Game backend on Amazon GameLift", "Matchmaking servers are sized for launch day and cost a fortune the rest of the year.", "Gaming"},
	}},
	{string(types.IndustryLifeSciences), []string{"Biosciences", "Therapeutics", "Genomics"}, []projectIdea{
		{"Genomics pipeline", "Genomics pipeline on AWS Batch", "Sequencing runs wait a week in the queue of the shared on-premises cluster.", "HPC"},
	}},
	{string(types.IndustryAgriculture), []string{"Farms", "AgriTech", "Growers"}, []projectIdea{
		{"Yield forecast", "Crop yield forecasting", "Harvest estimates come from field visits and miss by as much as 30%.", "Machine learning"},
	}},
	{string(types.IndustryTelecommunications), []string{"Telecom", "Networks", "Connect"}, []projectIdea{
		{"Network analytics", "Network telemetry analytics", "Outages are found by customer calls before the network team sees them.", "Analytics"},
	}},
}

type country struct {
	code    string
	weight  int
	legal   []string
	stems   []string
	places  []place
	people  []person
	segment []string
}

// Stems are invented; websites are under the reserved .example domain and
// e-mail addresses under example.com, so nothing here is anyone's.
var countries = []country{
	{"US", 40, []string{"Inc.", "LLC", "Corp."},
		[]string{"Bluefin", "Kestrel", "Harborview", "Ironbark", "Larkspur", "Meridian", "Oakridge", "Pinecrest", "Redwood", "Riverstone", "Tidewater", "Westbrook"},
		[]place{{"Seattle", "98101", "Washington"}, {"Austin", "78701", "Texas"}, {"Denver", "80202", "Colorado"}, {"Boston", "02110", "Massachusetts"}, {"Chicago", "60601", "Illinois"}, {"Atlanta", "30303", "Georgia"}},
		[]person{{"Jordan", "Lee", "Head of IT"}, {"Maria", "Garcia", "VP Engineering"}, {"Sam", "Patel", "Cloud Architect"}, {"Avery", "Johnson", "CTO"}, {"Chris", "Nguyen", "Director of Operations"}},
		[]string{"Enterprise", "Large", "Medium"}},
	{"DE", 12, []string{"GmbH", "AG"},
		[]string{"Nordlicht", "Rheintal", "Elbtal", "Bergquell", "Waldhof", "Sonnenfeld"},
		[]place{{"Berlin", "10115", ""}, {"Munich", "80331", ""}, {"Hamburg", "20095", ""}, {"Stuttgart", "70173", ""}},
		[]person{{"Lena", "Fischer", "Leiterin IT"}, {"Jonas", "Weber", "CIO"}, {"Anna", "Schneider", "Cloud-Architektin"}},
		[]string{"Enterprise", "Large", "Medium"}},
	{"JP", 12, []string{"K.K.", "Co., Ltd."},
		[]string{"Sakura", "Fujimi", "Hoshino", "Midori", "Kawase", "Aozora"},
		[]place{{"Tokyo", "100-0005", ""}, {"Osaka", "530-0001", ""}, {"Nagoya", "450-0002", ""}},
		[]person{{"Yuki", "Tanaka", "General Manager, IT"}, {"Kenji", "Sato", "CTO"}, {"Haruka", "Suzuki", "Infrastructure Lead"}},
		[]string{"Enterprise", "Large"}},
	{"GB", 10, []string{"Ltd", "plc"},
		[]string{"Thamesgate", "Ashdown", "Kingsmere", "Fenwick"},
		[]place{{"London", "EC2A 4NE", ""}, {"Manchester", "M1 1AE", ""}, {"Edinburgh", "EH1 1YZ", ""}},
		[]person{{"Oliver", "Bennett", "Head of Platform"}, {"Amelia", "Clarke", "IT Director"}},
		[]string{"Large", "Medium", "Small"}},
	{"FR", 6, []string{"SAS", "SA"},
		[]string{"Belvent", "Clairmont", "Rivesaltes"},
		[]place{{"Paris", "75002", ""}, {"Lyon", "69002", ""}},
		[]person{{"Camille", "Martin", "DSI"}, {"Louis", "Bernard", "Architecte cloud"}},
		[]string{"Large", "Medium"}},
	{"CA", 5, []string{"Inc.", "Ltd."},
		[]string{"Maplecrest", "Northshore", "Cedarbrook"},
		[]place{{"Toronto", "M5H 2N2", ""}, {"Vancouver", "V6B 1A1", ""}},
		[]person{{"Emma", "Tremblay", "VP Technology"}, {"Liam", "Roy", "Cloud Lead"}},
		[]string{"Medium", "Small"}},
	{"AU", 5, []string{"Pty Ltd"},
		[]string{"Wattle", "Southern Cross", "Coral Bay"},
		[]place{{"Sydney", "2000", ""}, {"Melbourne", "3000", ""}},
		[]person{{"Charlotte", "Wilson", "Head of Technology"}, {"Jack", "Taylor", "Solutions Architect"}},
		[]string{"Medium", "Small"}},
	{"IN", 5, []string{"Pvt Ltd"},
		[]string{"Sahyadri", "Kaveri", "Nilgiri"},
		[]place{{"Bengaluru", "560001", ""}, {"Pune", "411001", ""}},
		[]person{{"Priya", "Sharma", "VP Engineering"}, {"Arjun", "Iyer", "Head of Cloud"}},
		[]string{"Large", "Medium"}},
	{"BR", 5, []string{"Ltda."},
		[]string{"Ipanema", "Serra Azul", "Vale Verde"},
		[]place{{"Sao Paulo", "01310-100", ""}, {"Curitiba", "80010-000", ""}},
		[]person{{"Lucas", "Oliveira", "Diretor de TI"}, {"Beatriz", "Santos", "Arquiteta de nuvem"}},
		[]string{"Large", "Medium", "Micro"}},
}

func (g *generator) pick(n int) int { return g.rng.IntN(n) }

func (g *generator) engagementID() string {
	const chars = "0123456789abcdefghijklmnopqrstuvwxyz"
	for {
		b := make([]byte, 14)
		for i := range b {
			b[i] = chars[g.pick(len(chars))]
		}
		id := "eng-" + string(b)
		if !g.ids[id] {
			g.ids[id] = true
			return id
		}
	}
}

func (g *generator) company() *company {
	total := 0
	for _, c := range countries {
		total += c.weight
	}
	r := g.pick(total)
	var ct country
	for _, c := range countries {
		if r < c.weight {
			ct = c
			break
		}
		r -= c.weight
	}
	ind := industries[g.pick(len(industries))]
	stem := ct.stems[g.pick(len(ct.stems))]
	suffix := ind.suffixes[g.pick(len(ind.suffixes))]
	short := stem + " " + suffix
	c := &company{
		eng:      g.engagementID(),
		name:     short + " " + ct.legal[g.pick(len(ct.legal))],
		short:    short,
		slug:     strings.ToLower(strings.ReplaceAll(short, " ", "-")),
		industry: ind.industry,
		idea:     ind.ideas[g.pick(len(ind.ideas))],
		country:  ct.code,
		city:     ct.places[g.pick(len(ct.places))],
		segment:  ct.segment[g.pick(len(ct.segment))],
		contact:  ct.people[g.pick(len(ct.people))],
		// Obviously fictional: the +1 555 range is reserved for fiction.
		phone:    fmt.Sprintf("+1555%07d", g.pick(10_000_000)),
		seededAt: g.now.Add(-time.Duration(30+g.pick(60)) * 24 * time.Hour),
	}
	return c
}

// Notes a sales rep adds to the business problem as a deal moves on.
var progressNotes = []string{
	"Budget approved for next quarter.",
	"Security review passed.",
	"Pilot signed off by the CTO.",
	"Proof of concept scheduled with the AWS account team.",
}

// project is version v of c's customer project: each version moves the
// target date a month and adds a note; version 0 is what Partner Central
// holds before the night.
func (g *generator) project(c *company, v int) map[string]any {
	problem := c.idea.problem
	if v > 0 {
		problem += " " + progressNotes[(v-1)%len(progressNotes)]
	}
	// The last day of a month a few months ahead.
	y, m, _ := g.now.Date()
	target := time.Date(y, m+time.Month(4+v+1), 0, 0, 0, 0, 0, time.UTC)
	return map[string]any{
		"Customer": map[string]any{
			"Industry":    c.industry,
			"CompanyName": c.name,
			"WebsiteUrl":  "https://www." + c.slug + ".example",
			"CountryCode": c.country,
		},
		"Project": map[string]any{
			"Title":                c.idea.title,
			"BusinessProblem":      problem,
			"TargetCompletionDate": target.Format(time.DateOnly),
		},
	}
}

var leadSources = []struct{ typ, id, name, action string }{
	{"Event", "evt-summit-2026", "AWS Summit", "Visited the booth and asked for a follow-up"},
	{"Website", "form-cloud-assessment", "Cloud readiness assessment form", "Requested a callback"},
	{"Campaign", "cmp-modernize-q3", "Modernization webinar series", "Downloaded the migration guide"},
	{"Referral", "ref-aws-am", "Referral from the AWS account manager", "Booked an architecture review"},
}

// lead is version v of c's lead, with an interaction at the given time;
// from version 2 on the lead is qualified.
func (g *generator) lead(c *company, v int, at time.Time) map[string]any {
	status := "Unqualified"
	if v >= 2 {
		status = "Qualified"
	}
	addr := map[string]any{"City": c.city.city, "PostalCode": c.city.postal, "CountryCode": c.country}
	if c.city.state != "" {
		addr["StateOrRegion"] = c.city.state
	}
	src := leadSources[g.pick(len(leadSources))]
	return map[string]any{
		"QualificationStatus": status,
		"Customer": map[string]any{
			"CompanyName":   c.name,
			"Industry":      c.industry,
			"WebsiteUrl":    "https://www." + c.slug + ".example",
			"Address":       addr,
			"MarketSegment": c.segment,
		},
		"Interaction": map[string]any{
			"SourceType":      src.typ,
			"SourceId":        src.id,
			"SourceName":      src.name,
			"Usecase":         c.idea.usecase,
			"InteractionDate": at.Format(time.RFC3339),
			"CustomerAction":  src.action,
			"BusinessProblem": c.idea.problem,
			"Contact": map[string]any{
				"BusinessTitle": c.contact.title,
				"Email":         strings.ToLower(c.contact.first + "." + c.contact.last + "@example.com"),
				"FirstName":     c.contact.first,
				"LastName":      c.contact.last,
				"Phone":         c.phone,
			},
		},
	}
}

// changeTimes draws k times at which a CRM record changed yesterday, in
// order, a minute or more apart.
func (g *generator) changeTimes(k int) []time.Time {
	day := g.now.Truncate(24 * time.Hour).Add(-24 * time.Hour)
	var out []time.Time
	for len(out) < k {
		t := day.Add(7*time.Hour + time.Duration(g.pick(16*60))*time.Minute)
		if !slices.ContainsFunc(out, func(u time.Time) bool { return u.Equal(t) }) {
			out = append(out, t)
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return out
}

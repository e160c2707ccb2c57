package main

// This file builds the payloads of the sample contexts: a company's
// customer project and lead, version by version.

import (
	"encoding/json"
	"strings"
	"time"
)

func member(name string, v map[string]any) json.RawMessage {
	raw, _ := json.Marshal(map[string]any{name: v})
	return raw
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

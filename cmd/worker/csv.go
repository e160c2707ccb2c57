package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// csvColumn is one column of the CSV job format: where its value goes in a
// CustomerProject job and in a Lead job ("" where it does not apply).
type csvColumn struct {
	name, project, lead, help string
}

// csvColumns is the documented CSV format, one row per job, headers in any
// order; an empty cell leaves the field out. Paths are the job's JSON
// fields, so the validation messages name them as for JSON Lines.
func csvColumns() []csvColumn {
	return []csvColumn{
		{"catalog", "Catalog", "Catalog", "AWS or Sandbox"},
		{"engagement_id", "EngagementIdentifier", "EngagementIdentifier", "eng-… id or ARN"},
		{"context_id", "ContextIdentifier", "ContextIdentifier", "the context to update"},
		{"type", "Type", "Type", "CustomerProject or Lead"},
		{"engagement_last_modified_at", "EngagementLastModifiedAt", "EngagementLastModifiedAt", "optional, RFC 3339"},
		{"source_updated_at", "SourceUpdatedAt", "SourceUpdatedAt", "optional, RFC 3339: when the CRM record changed"},
		{"industry", "Payload.CustomerProject.Customer.Industry", "Payload.Lead.Customer.Industry", "one of the model's industries"},
		{"company_name", "Payload.CustomerProject.Customer.CompanyName", "Payload.Lead.Customer.CompanyName", ""},
		{"website_url", "Payload.CustomerProject.Customer.WebsiteUrl", "Payload.Lead.Customer.WebsiteUrl", ""},
		{"country_code", "Payload.CustomerProject.Customer.CountryCode", "Payload.Lead.Customer.Address.CountryCode", "ISO 3166 alpha-2"},
		{"project_title", "Payload.CustomerProject.Project.Title", "", ""},
		{"business_problem", "Payload.CustomerProject.Project.BusinessProblem", "Payload.Lead.Interaction.BusinessProblem", "20 to 2000 characters"},
		{"target_completion_date", "Payload.CustomerProject.Project.TargetCompletionDate", "", "YYYY-MM-DD"},
		{"qualification_status", "", "Payload.Lead.QualificationStatus", ""},
		{"city", "", "Payload.Lead.Customer.Address.City", ""},
		{"postal_code", "", "Payload.Lead.Customer.Address.PostalCode", ""},
		{"state_or_region", "", "Payload.Lead.Customer.Address.StateOrRegion", "e.g. California"},
		{"aws_maturity", "", "Payload.Lead.Customer.AwsMaturity", ""},
		{"market_segment", "", "Payload.Lead.Customer.MarketSegment", "Enterprise, Large, Medium, Small, Micro"},
		{"source_type", "", "Payload.Lead.Interaction.SourceType", ""},
		{"source_id", "", "Payload.Lead.Interaction.SourceId", ""},
		{"source_name", "", "Payload.Lead.Interaction.SourceName", ""},
		{"use_case", "", "Payload.Lead.Interaction.Usecase", ""},
		{"interaction_date", "", "Payload.Lead.Interaction.InteractionDate", "RFC 3339"},
		{"customer_action", "", "Payload.Lead.Interaction.CustomerAction", ""},
		{"contact_title", "", "Payload.Lead.Interaction.Contact.BusinessTitle", ""},
		{"contact_email", "", "Payload.Lead.Interaction.Contact.Email", "lower case"},
		{"contact_first_name", "", "Payload.Lead.Interaction.Contact.FirstName", ""},
		{"contact_last_name", "", "Payload.Lead.Interaction.Contact.LastName", ""},
		{"contact_phone", "", "Payload.Lead.Interaction.Contact.Phone", "E.164, e.g. +15125550100"},
	}
}

// csvRows reads a CSV job file and calls fn with each row as a JSON job
// body (or the row's error) and the row's line number. The header names the
// columns; an unknown column is an error for the whole file, since its data
// would silently be left out.
func csvRows(r io.Reader, fn func(line int, body []byte, err error)) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("read the CSV header: %w", err)
	}
	byName := map[string]csvColumn{}
	for _, c := range csvColumns() {
		byName[c.name] = c
	}
	cols := make([]csvColumn, len(header))
	var unknown []string
	for i, h := range header {
		name := strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
		c, ok := byName[name]
		if !ok {
			unknown = append(unknown, fmt.Sprintf("%q", h))
		}
		cols[i] = c
	}
	if len(unknown) > 0 {
		names := make([]string, 0, len(byName))
		for n := range byName {
			names = append(names, n)
		}
		sort.Strings(names)
		return fmt.Errorf("unknown CSV column %s; the columns are: %s", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		var perr *csv.ParseError
		if errors.As(err, &perr) {
			fn(perr.StartLine, nil, fmt.Errorf("CSV: %v", perr.Err))
			continue
		}
		if err != nil {
			return err
		}
		body, err := csvJob(cols, rec)
		fn(line, body, err)
	}
}

// csvJob builds the JSON body of one row.
func csvJob(cols []csvColumn, rec []string) ([]byte, error) {
	typ := ""
	for i, c := range cols {
		if c.name == "type" {
			typ = strings.TrimSpace(rec[i])
		}
	}
	job := map[string]any{}
	for i, c := range cols {
		v := strings.TrimSpace(rec[i])
		if v == "" {
			continue
		}
		path := c.project
		if typ == "Lead" {
			path = c.lead
		}
		if path == "" {
			return nil, fmt.Errorf("column %s does not apply to a %s job", c.name, typ)
		}
		set(job, strings.Split(path, "."), v)
	}
	if typ != "Lead" && typ != "CustomerProject" {
		// Leave the type as given; validation names the problem. A row
		// with no payload column still needs its union to report on.
		if _, ok := job["Payload"]; !ok {
			job["Payload"] = map[string]any{}
		}
	}
	return json.Marshal(job)
}

func set(m map[string]any, path []string, v string) {
	for _, k := range path[:len(path)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[path[len(path)-1]] = v
}

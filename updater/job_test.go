package updater

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

const goodProject = `{"Catalog":"Sandbox","EngagementIdentifier":"eng-abcdefghij1234","ContextIdentifier":"1",
 "EngagementLastModifiedAt":"2026-11-26T06:13:08.123Z","Type":"CustomerProject",
 "SourceUpdatedAt":"2026-11-25T22:00:00+01:00",
 "Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme",
   "WebsiteUrl":"https://acme.example","CountryCode":"US"},
   "Project":{"Title":"Migration","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}`

const goodLead = `{"Catalog":"AWS","EngagementIdentifier":"arn:aws:partnercentral:us-east-1::catalog/AWS/engagement/eng-0123456789abcd","ContextIdentifier":"2",
 "Type":"Lead",
 "Payload":{"Lead":{"QualificationStatus":"Qualified",
   "Customer":{"Industry":"Healthcare","CompanyName":"Clinique Saint-Éloi","WebsiteUrl":"www.clinique.example",
     "Address":{"City":"Zürich","PostalCode":"8001","StateOrRegion":"California","CountryCode":"CH"},
     "AwsMaturity":"Advanced","MarketSegment":"Large"},
   "Interaction":{"SourceType":"Event","SourceId":"evt-42","SourceName":"re:Invent booth","Usecase":"Data lake",
     "InteractionDate":"2026-11-20T10:00:00Z","CustomerAction":"Asked for a demo",
     "BusinessProblem":"Patient records are spread over 12 systems",
     "Contact":{"BusinessTitle":"CTO","Email":"m.muller@clinique.example","FirstName":"Møller","LastName":"Ødegård","Phone":"+41441234567"}}}}}`

func newTestDecoder() *Decoder { return NewDecoder(schema.New()) }

// mutate returns base with the value at path (dot-separated) replaced by
// val, or deleted when val is the deleteMark.
func mutate(t *testing.T, base, path string, val any) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(base), &doc); err != nil {
		t.Fatal(err)
	}
	keys := strings.Split(path, ".")
	m := doc
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			t.Fatalf("path %s: %s is not an object", path, k)
		}
		m = next
	}
	last := keys[len(keys)-1]
	if val == deleteMark {
		delete(m, last)
	} else {
		m[last] = val
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type deleteMarker struct{}

var deleteMark = deleteMarker{}

func TestDecodeGoodJobs(t *testing.T) {
	d := newTestDecoder()
	tests := []struct {
		name string
		body string
	}{
		{"customer project", goodProject},
		{"lead with ARN and Unicode names", goodLead},
		{"no EngagementLastModifiedAt", mutate(t, goodProject, "EngagementLastModifiedAt", deleteMark)},
		{"no SourceUpdatedAt", mutate(t, goodProject, "SourceUpdatedAt", deleteMark)},
		{"lead without optional parts", mutate(t, mutate(t, goodLead, "Payload.Lead.Interaction", deleteMark), "Payload.Lead.QualificationStatus", deleteMark)},
		{"null optional member", mutate(t, goodLead, "Payload.Lead.Customer.WebsiteUrl", nil)},
		{"maximum lengths", mutate(t, mutate(t, mutate(t, goodProject,
			"Payload.CustomerProject.Customer.CompanyName", strings.Repeat("é", 120)),
			"Payload.CustomerProject.Project.Title", strings.Repeat("T", 255)),
			"Payload.CustomerProject.Project.BusinessProblem", strings.Repeat("漢", 2000))},
		{"minimum lengths", mutate(t, mutate(t, goodProject,
			"Payload.CustomerProject.Customer.CompanyName", "A"),
			"Payload.CustomerProject.Project.BusinessProblem", strings.Repeat("b", 20))},
		{"three-character context id", mutate(t, goodProject, "ContextIdentifier", "abc")},
		{"empty optional address parts", mutate(t, goodLead, "Payload.Lead.Customer.Address.City", "")},
		{"leap day", mutate(t, goodProject, "Payload.CustomerProject.Project.TargetCompletionDate", "2028-02-29")},
		{"state with punctuation", mutate(t, goodLead, "Payload.Lead.Customer.Address.StateOrRegion", "FPO, AP")},
		{"interaction date with offset", mutate(t, goodLead, "Payload.Lead.Interaction.InteractionDate", "2026-11-20T10:00:00.123456+05:30")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job, err := d.Decode([]byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: got error %v, want none", err)
			}
			if job.Input.EngagementIdentifier == nil || job.Input.Payload == nil {
				t.Fatalf("Decode: got %+v, want identifier and payload set", job.Input)
			}
		})
	}
}

func TestDecodeKeepsFields(t *testing.T) {
	job, err := newTestDecoder().Decode([]byte(goodProject))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := *job.Input.EngagementLastModifiedAt, "2026-11-26T06:13:08.123Z"; got != want {
		t.Errorf("EngagementLastModifiedAt: got %q, want %q (exact string)", got, want)
	}
	if want := time.Date(2026, 11, 25, 21, 0, 0, 0, time.UTC); !job.SourceUpdatedAt.Equal(want) {
		t.Errorf("SourceUpdatedAt: got %v, want %v", job.SourceUpdatedAt, want)
	}
	cp, ok := job.Input.Payload.(*types.UpdateEngagementContextPayloadMemberCustomerProject)
	if !ok {
		t.Fatalf("Payload: got %T, want CustomerProject member", job.Input.Payload)
	}
	if got := cp.Value.Customer.CountryCode; got != types.CountryCodeUs {
		t.Errorf("CountryCode: got %q, want US", got)
	}
	lead, err := newTestDecoder().Decode([]byte(goodLead))
	if err != nil {
		t.Fatal(err)
	}
	lp := lead.Input.Payload.(*types.UpdateEngagementContextPayloadMemberLead)
	if got, want := *lp.Value.Interaction.Contact.LastName, "Ødegård"; got != want {
		t.Errorf("LastName: got %q, want %q", got, want)
	}
}

func TestDecodeBadJobs(t *testing.T) {
	d := newTestDecoder()
	cp := "Payload.CustomerProject."
	ld := "Payload.Lead."
	tests := []struct {
		name  string
		body  string
		field string // the violation's field
		rule  string // a substring of its rule
		code  types.ValidationExceptionErrorCode
	}{
		{"not JSON", `{"Catalog":`, "", "not valid JSON", "INVALID_VALUE"},
		{"empty body", ` `, "", "body is empty", "INVALID_VALUE"},
		{"wrong JSON token", `{"Catalog" 1}`, "", "not valid JSON", "INVALID_VALUE"},
		{"trailing data", goodProject + ` {}`, "", "after the JSON document", "INVALID_VALUE"},
		{"invalid UTF-8", strings.Replace(goodProject, "Acme", "Ac\xffme", 1), "", "UTF-8", "INVALID_VALUE"},
		{"duplicate key", strings.Replace(goodProject, `"Type":"CustomerProject"`, `"Type":"CustomerProject","Type":"Lead"`, 1), "", `duplicate key "Type"`, "INVALID_VALUE"},
		{"deep nesting", `{"Catalog":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`, "", "deeper than", "INVALID_VALUE"},
		{"top level array", `[1,2]`, "", "must be an object, got an array", "INVALID_VALUE"},
		{"too large", `{"Catalog":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, "", "at most 1048576 bytes", "INVALID_VALUE"},
		{"unknown top-level field", mutate(t, goodProject, "Priority", "high"), "Priority", "unknown field", "INVALID_VALUE"},
		{"unknown nested field", mutate(t, goodProject, cp+"Customer.Revenue", 5), cp + "Customer.Revenue", "unknown field", "INVALID_VALUE"},
		{"missing Catalog", mutate(t, goodProject, "Catalog", deleteMark), "Catalog", "is required", "REQUIRED_FIELD_MISSING"},
		{"Catalog not letters", mutate(t, goodProject, "Catalog", "Sand-box"), "Catalog", "is not AWS or Sandbox", "INVALID_ENUM_VALUE"},
		{"Catalog wrong case", mutate(t, goodProject, "Catalog", "sandbox"), "Catalog", `did you mean "Sandbox"`, "INVALID_ENUM_VALUE"},
		{"Catalog a number", mutate(t, goodProject, "Catalog", 7), "Catalog", "must be a string, got a number", "INVALID_VALUE"},
		{"missing EngagementIdentifier", mutate(t, goodProject, "EngagementIdentifier", deleteMark), "EngagementIdentifier", "is required", "REQUIRED_FIELD_MISSING"},
		{"EngagementIdentifier short", mutate(t, goodProject, "EngagementIdentifier", "eng-abc"), "EngagementIdentifier", "is not an engagement id", "INVALID_STRING_FORMAT"},
		{"EngagementIdentifier upper case", mutate(t, goodProject, "EngagementIdentifier", "eng-ABCDEFGHIJ1234"), "EngagementIdentifier", "is not an engagement id", "INVALID_STRING_FORMAT"},
		{"ContextIdentifier empty", mutate(t, goodProject, "ContextIdentifier", ""), "ContextIdentifier", "must not be empty", "INVALID_VALUE"},
		{"ContextIdentifier too long", mutate(t, goodProject, "ContextIdentifier", "1234"), "ContextIdentifier", "at most 3 characters, got 4", "INVALID_VALUE"},
		{"EngagementLastModifiedAt not a time", mutate(t, goodProject, "EngagementLastModifiedAt", "yesterday"), "EngagementLastModifiedAt", "not an RFC 3339 date-time", "INVALID_STRING_FORMAT"},
		{"EngagementLastModifiedAt epoch number", mutate(t, goodProject, "EngagementLastModifiedAt", 1764137588), "EngagementLastModifiedAt", "must be an RFC 3339 date-time string, got a number", "INVALID_VALUE"},
		{"SourceUpdatedAt not a time", mutate(t, goodProject, "SourceUpdatedAt", "2026-11-25"), "SourceUpdatedAt", "not an RFC 3339 date-time", "INVALID_STRING_FORMAT"},
		{"missing Type", mutate(t, goodProject, "Type", deleteMark), "Type", "is required", "REQUIRED_FIELD_MISSING"},
		{"unknown Type", mutate(t, goodProject, "Type", "Opportunity"), "Type", `"Opportunity" is not one of CustomerProject, Lead`, "INVALID_ENUM_VALUE"},
		{"Payload does not match Type", mutate(t, goodProject, "Type", "Lead"), "Payload.CustomerProject", `does not match Type "Lead"`, "INVALID_VALUE"},
		{"missing Payload", mutate(t, goodProject, "Payload", deleteMark), "Payload", "is required", "REQUIRED_FIELD_MISSING"},
		{"empty Payload", mutate(t, goodProject, "Payload", map[string]any{}), "Payload", "must set exactly one of Lead, CustomerProject", "NOT_ENOUGH_VALUES"},
		{"both union members", mutate(t, goodProject, "Payload.Lead", map[string]any{"Customer": map[string]any{"CompanyName": "X", "Address": map[string]any{}}}), "Payload", "sets Lead and CustomerProject", "TOO_MANY_VALUES"},
		{"Payload a string", mutate(t, goodProject, "Payload", "CustomerProject"), "Payload", "must be an object, got a string", "INVALID_VALUE"},
		{"unknown Industry", mutate(t, goodProject, cp+"Customer.Industry", "Software"), cp + "Customer.Industry", `"Software" is not one of the model's 28 industries`, "INVALID_ENUM_VALUE"},
		{"missing Industry", mutate(t, goodProject, cp+"Customer.Industry", deleteMark), cp + "Customer.Industry", "is required", "REQUIRED_FIELD_MISSING"},
		{"CountryCode alpha-3", mutate(t, goodProject, cp+"Customer.CountryCode", "USA"), cp + "Customer.CountryCode", `"USA" is not an ISO 3166 alpha-2 code`, "INVALID_ENUM_VALUE"},
		{"CountryCode lower case", mutate(t, goodProject, cp+"Customer.CountryCode", "us"), cp + "Customer.CountryCode", `did you mean "US"`, "INVALID_ENUM_VALUE"},
		{"CompanyName empty", mutate(t, goodProject, cp+"Customer.CompanyName", ""), cp + "Customer.CompanyName", "must not be empty", "INVALID_VALUE"},
		{"CompanyName too long", mutate(t, goodProject, cp+"Customer.CompanyName", strings.Repeat("é", 121)), cp + "Customer.CompanyName", "at most 120 characters, got 121", "INVALID_VALUE"},
		{"WebsiteUrl not a URL", mutate(t, goodProject, cp+"Customer.WebsiteUrl", "not a url"), cp + "Customer.WebsiteUrl", "is not a website URL", "INVALID_STRING_FORMAT"},
		{"WebsiteUrl too short", mutate(t, goodProject, cp+"Customer.WebsiteUrl", "a.b"), cp + "Customer.WebsiteUrl", "at least 4 characters", "INVALID_VALUE"},
		{"WebsiteUrl required for projects", mutate(t, goodProject, cp+"Customer.WebsiteUrl", deleteMark), cp + "Customer.WebsiteUrl", "is required", "REQUIRED_FIELD_MISSING"},
		{"Customer an array", mutate(t, goodProject, cp+"Customer", []any{}), cp + "Customer", "must be an object, got an array", "INVALID_VALUE"},
		{"Title too long", mutate(t, goodProject, cp+"Project.Title", strings.Repeat("t", 256)), cp + "Project.Title", "at most 255 characters", "INVALID_VALUE"},
		{"BusinessProblem too short", mutate(t, goodProject, cp+"Project.BusinessProblem", "Too short"), cp + "Project.BusinessProblem", "at least 20 characters, got 9", "INVALID_VALUE"},
		{"BusinessProblem too long", mutate(t, goodProject, cp+"Project.BusinessProblem", strings.Repeat("x", 2001)), cp + "Project.BusinessProblem", "at most 2000 characters", "INVALID_VALUE"},
		{"date wrong format", mutate(t, goodProject, cp+"Project.TargetCompletionDate", "31/12/2026"), cp + "Project.TargetCompletionDate", "is not a date YYYY-MM-DD", "INVALID_STRING_FORMAT"},
		{"date not on the calendar", mutate(t, goodProject, cp+"Project.TargetCompletionDate", "2026-02-30"), cp + "Project.TargetCompletionDate", "is not a calendar date", "INVALID_STRING_FORMAT"},
		{"missing Project title", mutate(t, goodProject, cp+"Project.Title", deleteMark), cp + "Project.Title", "is required", "REQUIRED_FIELD_MISSING"},
		{"lead missing Customer", mutate(t, goodLead, ld+"Customer", deleteMark), ld + "Customer", "is required", "REQUIRED_FIELD_MISSING"},
		{"lead missing Address", mutate(t, goodLead, ld+"Customer.Address", deleteMark), ld + "Customer.Address", "is required", "REQUIRED_FIELD_MISSING"},
		{"QualificationStatus empty", mutate(t, goodLead, ld+"QualificationStatus", ""), ld + "QualificationStatus", "must not be empty", "INVALID_VALUE"},
		{"PostalCode too long", mutate(t, goodLead, ld+"Customer.Address.PostalCode", strings.Repeat("9", 21)), ld + "Customer.Address.PostalCode", "at most 20 characters", "INVALID_VALUE"},
		{"City too long", mutate(t, goodLead, ld+"Customer.Address.City", strings.Repeat("c", 256)), ld + "Customer.Address.City", "at most 255 characters", "INVALID_VALUE"},
		{"unknown state", mutate(t, goodLead, ld+"Customer.Address.StateOrRegion", "Bavaria"), ld + "Customer.Address.StateOrRegion", "is not a state or region of the model's list", "INVALID_ENUM_VALUE"},
		{"unknown MarketSegment", mutate(t, goodLead, ld+"Customer.MarketSegment", "Huge"), ld + "Customer.MarketSegment", `"Huge" is not one of Enterprise, Large, Medium, Small, Micro`, "INVALID_ENUM_VALUE"},
		{"AwsMaturity too long", mutate(t, goodLead, ld+"Customer.AwsMaturity", strings.Repeat("m", 21)), ld + "Customer.AwsMaturity", "at most 20 characters", "INVALID_VALUE"},
		{"interaction missing SourceId", mutate(t, goodLead, ld+"Interaction.SourceId", deleteMark), ld + "Interaction.SourceId", "is required", "REQUIRED_FIELD_MISSING"},
		{"interaction missing Contact", mutate(t, goodLead, ld+"Interaction.Contact", deleteMark), ld + "Interaction.Contact", "is required", "REQUIRED_FIELD_MISSING"},
		{"CustomerAction empty", mutate(t, goodLead, ld+"Interaction.CustomerAction", ""), ld + "Interaction.CustomerAction", "must not be empty", "INVALID_VALUE"},
		{"InteractionDate not a time", mutate(t, goodLead, ld+"Interaction.InteractionDate", "last week"), ld + "Interaction.InteractionDate", "not an RFC 3339 date-time", "INVALID_STRING_FORMAT"},
		{"email upper case", mutate(t, goodLead, ld+"Interaction.Contact.Email", "M.Muller@Clinique.example"), ld + "Interaction.Contact.Email", "the value is not a lower-case e-mail address", "INVALID_STRING_FORMAT"},
		{"email without domain", mutate(t, goodLead, ld+"Interaction.Contact.Email", "m.muller@"), ld + "Interaction.Contact.Email", "is not a lower-case e-mail address", "INVALID_STRING_FORMAT"},
		{"email too long", mutate(t, goodLead, ld+"Interaction.Contact.Email", strings.Repeat("a", 75)+"@x.example"), ld + "Interaction.Contact.Email", "at most 80 characters", "INVALID_VALUE"},
		{"phone not E.164", mutate(t, goodLead, ld+"Interaction.Contact.Phone", "044 123 45 67"), ld + "Interaction.Contact.Phone", "is not an E.164 phone number", "INVALID_STRING_FORMAT"},
		{"phone too many digits", mutate(t, goodLead, ld+"Interaction.Contact.Phone", "+1234567890123456"), ld + "Interaction.Contact.Phone", "is not an E.164 phone number", "INVALID_STRING_FORMAT"},
		{"FirstName too long", mutate(t, goodLead, ld+"Interaction.Contact.FirstName", strings.Repeat("n", 81)), ld + "Interaction.Contact.FirstName", "at most 80 characters", "INVALID_VALUE"},
		{"BusinessTitle missing", mutate(t, goodLead, ld+"Interaction.Contact.BusinessTitle", deleteMark), ld + "Interaction.Contact.BusinessTitle", "is required", "REQUIRED_FIELD_MISSING"},
		{"boolean for a string", mutate(t, goodLead, ld+"Interaction.Usecase", true), ld + "Interaction.Usecase", "must be a string, got a boolean", "INVALID_VALUE"},
	}
	if len(tests) < 40 {
		t.Fatalf("the table has %d bad jobs, want at least 40", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := d.Decode([]byte(tt.body))
			var inv *InvalidJobError
			if !errors.As(err, &inv) {
				t.Fatalf("Decode: got error %v, want *InvalidJobError", err)
			}
			if len(inv.Violations) != 1 {
				t.Fatalf("got %d violations %v, want exactly 1", len(inv.Violations), inv.Violations)
			}
			v := inv.Violations[0]
			if v.Field != tt.field || !strings.Contains(v.Rule, tt.rule) || v.Code != tt.code {
				t.Errorf("got %s [%s], want field %q, rule containing %q, code %s", v, v.Code, tt.field, tt.rule, tt.code)
			}
		})
	}
}

func TestDecodeReportsEveryViolation(t *testing.T) {
	body := mutate(t, mutate(t, mutate(t, goodProject,
		"Catalog", deleteMark),
		"Payload.CustomerProject.Customer.CountryCode", "USA"),
		"Payload.CustomerProject.Project.TargetCompletionDate", "next year")
	_, err := newTestDecoder().Decode([]byte(body))
	var inv *InvalidJobError
	if !errors.As(err, &inv) {
		t.Fatalf("got %v, want *InvalidJobError", err)
	}
	want := []string{
		"Catalog: is required",
		`Payload.CustomerProject.Customer.CountryCode: "USA" is not an ISO 3166 alpha-2 code`,
		`Payload.CustomerProject.Project.TargetCompletionDate: "next year" is not a date YYYY-MM-DD`,
	}
	if len(inv.Violations) != len(want) {
		t.Fatalf("got %d violations %v, want %d", len(inv.Violations), inv.Violations, len(want))
	}
	for i, w := range want {
		if got := inv.Violations[i].String(); got != w {
			t.Errorf("violation %d: got %q, want %q", i, got, w)
		}
	}
}

func TestViolationsNeverQuotePersonalData(t *testing.T) {
	secret := "Jane.Doe@Example.com"
	body := mutate(t, mutate(t, goodLead, "Payload.Lead.Interaction.Contact.Email", secret),
		"Payload.Lead.Interaction.Contact.Phone", "555-0100")
	_, err := newTestDecoder().Decode([]byte(body))
	if err == nil {
		t.Fatal("got no error, want violations")
	}
	for _, leak := range []string{secret, "555-0100"} {
		if strings.Contains(err.Error(), leak) {
			t.Errorf("error %q repeats the personal value %q", err, leak)
		}
	}
}

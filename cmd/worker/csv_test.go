package main

import (
	"os"
	"strings"
	"testing"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/updater"
)

func TestCSVExampleIsValid(t *testing.T) {
	f, err := os.Open("../../examples/nightly.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := updater.NewDecoder(schema.New())
	rows := 0
	err = csvRows(f, func(line int, body []byte, rowErr error) {
		rows++
		if rowErr != nil {
			t.Errorf("line %d: %v", line, rowErr)
			return
		}
		if _, err := dec.Decode(body); err != nil {
			t.Errorf("line %d: %v", line, err)
		}
	})
	if err != nil || rows != 3 {
		t.Fatalf("got %d rows, %v; want 3 valid rows", rows, err)
	}
}

func TestCSVRows(t *testing.T) {
	head := "catalog,engagement_id,context_id,type,industry,company_name,website_url,country_code,project_title,business_problem,target_completion_date,city\n"
	tests := []struct {
		name, csv string
		want      []string // per row: a substring of the error or of the body
		fileErr   string
	}{
		{"project row", head + "Sandbox,eng-abcdefghij1234,1,CustomerProject,Other,Acme,acme.example,US,T,Needs to migrate 40 VMs to AWS,2026-12-31,\n",
			[]string{`"Project":{"BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31","Title":"T"}`}, ""},
		{"lead column on a project row", head + "Sandbox,eng-abcdefghij1234,1,CustomerProject,Other,Acme,acme.example,US,T,Needs to migrate 40 VMs to AWS,2026-12-31,Austin\n",
			[]string{"column city does not apply to a CustomerProject job"}, ""},
		{"lead row", head + "Sandbox,eng-abcdefghij1234,2,Lead,Other,Acme,,US,,,,Austin\n",
			[]string{`"Address":{"City":"Austin","CountryCode":"US"}`}, ""},
		{"project column on a lead row", head + "Sandbox,eng-abcdefghij1234,2,Lead,Other,Acme,,US,Title,,,\n",
			[]string{"column project_title does not apply to a Lead job"}, ""},
		{"wrong field count", head + "Sandbox,eng-abcdefghij1234\n", []string{"wrong number of fields"}, ""},
		{"unknown column", "catalog,engagement_id,Revenue\nSandbox,eng-abcdefghij1234,5\n", nil, `unknown CSV column "Revenue"`},
		{"header with BOM and capitals", "\ufeffCatalog,Engagement_ID,context_id,type\nSandbox,eng-abcdefghij1234,1,Lead\n", []string{`"Catalog":"Sandbox"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := csvRows(strings.NewReader(tt.csv), func(line int, body []byte, rowErr error) {
				if rowErr != nil {
					got = append(got, rowErr.Error())
				} else {
					got = append(got, string(body))
				}
			})
			if tt.fileErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.fileErr) {
					t.Fatalf("got %v, want a file error containing %q", err, tt.fileErr)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("got rows %q, err %v; want %d rows", got, err, len(tt.want))
			}
			for i := range got {
				if !strings.Contains(got[i], tt.want[i]) {
					t.Errorf("row %d: got %s, want it to contain %s", i, got[i], tt.want[i])
				}
			}
		})
	}
}

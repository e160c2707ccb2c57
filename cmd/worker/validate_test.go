package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const validJob = `{"Catalog":"Sandbox","EngagementIdentifier":"eng-abcdefghij1234","ContextIdentifier":"1","Type":"CustomerProject","Payload":{"CustomerProject":{"Customer":{"Industry":"Software and Internet","CompanyName":"Acme","WebsiteUrl":"https://acme.example","CountryCode":"US"},"Project":{"Title":"Migration","BusinessProblem":"Needs to migrate 40 VMs to AWS","TargetCompletionDate":"2026-12-31"}}}}`

func runWorker(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut)
	return exitCode(err, &errOut), out.String(), errOut.String()
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "jobs.jsonl")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestValidateAllValid(t *testing.T) {
	p := writeFile(t, validJob+"\n"+validJob+"\r\n"+validJob)
	code, out, errOut := runWorker(t, "", "validate", p)
	if code != 0 || out != "" {
		t.Errorf("got exit %d, stdout %q; want 0 and nothing", code, out)
	}
	if want := "3 jobs, 3 valid, 0 invalid\n"; errOut != want {
		t.Errorf("stderr: got %q, want %q", errOut, want)
	}
}

func TestValidateReportsEachViolation(t *testing.T) {
	bad := strings.Replace(validJob, `"US"`, `"USA"`, 1)
	bad = strings.Replace(bad, `"Catalog":"Sandbox",`, ``, 1)
	long := `{"Catalog":"` + strings.Repeat("x", 1<<20) + `"}`
	content := strings.Join([]string{validJob, bad, "not json", "", long, validJob}, "\n") + "\n"
	p := writeFile(t, content)
	code, out, errOut := runWorker(t, "", "validate", p)
	if code != 1 {
		t.Errorf("exit: got %d, want 1", code)
	}
	want := []string{
		p + ":2: Catalog: is required",
		p + `:2: Payload.CustomerProject.Customer.CountryCode: "USA" is not an ISO 3166 alpha-2 code`,
		p + ":3: body is not valid JSON: invalid character 'o' in literal null (expecting 'u')",
		p + ":4: line is empty; each line must hold one job",
		p + ":5: line is 1048590 bytes; a job is at most 1048576 bytes (1 MiB)",
	}
	if got := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stdout:\ngot  %q\nwant %q", got, want)
	}
	if want := "6 jobs, 2 valid, 4 invalid\n"; errOut != want {
		t.Errorf("stderr: got %q, want %q", errOut, want)
	}
}

func TestValidateStdinAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		stdin    string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"stdin valid", validJob + "\n", []string{"validate", "-"}, 0, "1 jobs, 1 valid, 0 invalid"},
		{"stdin invalid", "{}\n", []string{"validate", "-"}, 1, "1 jobs, 0 valid, 1 invalid"},
		{"empty input", "", []string{"validate", "-"}, 0, "0 jobs, 0 valid, 0 invalid"},
		{"no file named", "", []string{"validate"}, 2, "name at least one FILE"},
		{"missing file", "", []string{"validate", filepath.Join(t.TempDir(), "nope.jsonl")}, 2, "no such file"},
		{"bad flag", "", []string{"validate", "-nope"}, 2, "flag provided but not defined"},
		{"help", "", []string{"validate", "-h"}, 0, "Exit status: 0 all jobs valid"},
		{"unknown command", "", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runWorker(t, tt.stdin, tt.args...)
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want exit %d, stderr containing %q", code, errOut, tt.wantCode, tt.wantErr)
			}
		})
	}
}

func TestEachLine(t *testing.T) {
	type line struct {
		text string
		size int
	}
	tests := []struct {
		in   string
		max  int
		want []line
	}{
		{"a\nbb\r\n\nccc", 10, []line{{"a", 1}, {"bb", 2}, {"", 0}, {"ccc", 3}}},
		{"a\n", 10, []line{{"a", 1}}},
		{"", 10, nil},
		{"short\n" + strings.Repeat("z", 200000) + "\nend", 100, []line{{"short", 5}, {"", 200000}, {"end", 3}}},
	}
	for _, tt := range tests {
		var got []line
		err := eachLine(strings.NewReader(tt.in), tt.max, func(n int, l []byte, size int) {
			if n != len(got)+1 {
				t.Errorf("line number: got %d, want %d", n, len(got)+1)
			}
			got = append(got, line{string(l), size})
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(tt.want) {
			t.Fatalf("%q: got %d lines %v, want %v", tt.in[:min(len(tt.in), 20)], len(got), got, tt.want)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("line %d: got %+v, want %+v", i+1, got[i], tt.want[i])
			}
		}
	}
}

package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/updater"
)

// TestDemo runs "devstack demo" end to end, small: the local stack, the
// sample batch and the real worker, and reads what a user would read.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	// kumo's queues are shared by every server in the test binary.
	q := fmt.Sprintf("demo-test-%d", time.Now().UnixNano())
	const jobs = 60
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"demo", "-jobs", fmt.Sprint(jobs), "-quota", "50", "-queue", q, "-duration", "60s"}, &stdout, &stderr)
	out := stdout.String()
	if err != nil {
		t.Fatalf("demo: got %v, want success\nstdout:\n%s\nstderr:\n%s", err, out, stderr.String())
	}
	t.Logf("took %v", time.Since(start).Round(time.Millisecond))

	for _, want := range []string{
		"Jobs by outcome", "applied", "already applied", "coalesced", "stale", "dead-lettered",
		"Partner Central API calls", "UpdateEngagementContext", "OK (200)",
		"API calls per job", "throttled", "quota use",
		"Dead-letter queue:", "Where to look", "/metrics",
		"Result: OK",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output: no %q in\n%s", want, out)
		}
	}

	// Every job that cannot apply is listed in the DLQ section with the
	// fault planted in it, its engagement and its class.
	_, dlqSection, ok := strings.Cut(out, "Dead-letter queue:")
	if !ok {
		t.Fatalf("output: no dead-letter queue section in\n%s", out)
	}
	dlqSection, _, _ = strings.Cut(dlqSection, "Where to look")
	b := planBatch(1, jobs, time.Now())
	dead := 0
	for _, j := range b.jobs {
		if j.fate == fateApply {
			continue
		}
		dead++
		line := ""
		for l := range strings.Lines(dlqSection) {
			if strings.Contains(l, j.what) && (j.raw != "" || strings.Contains(l, j.eng)) {
				line = l
				break
			}
		}
		switch {
		case line == "":
			t.Errorf("DLQ section: no entry for the job with %s (%s/%s) in\n%s", j.what, j.eng, j.ctx, dlqSection)
		case !strings.Contains(line, j.class):
			t.Errorf("DLQ section: got %q for the job with %s, want class %s", strings.TrimSpace(line), j.what, j.class)
		}
	}
	if want := fmt.Sprintf("Dead-letter queue: %d messages", dead); !strings.Contains(out, want) {
		t.Errorf("output: no %q in\n%s", want, out)
	}
}

func TestDemoFlags(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"too few jobs", []string{"-jobs", "5"}, "-jobs must be between 20 and 100000"},
		{"no quota", []string{"-quota", "0"}, "-quota must be between 1 and 10000"},
		{"no time", []string{"-duration", "0s"}, "-duration must be above 0"},
		{"fifo queue", []string{"-queue", "jobs.fifo"}, "-queue must be a standard queue name"},
		{"unknown flag", []string{"-jobz", "5"}, "flag provided but not defined: -jobz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"demo"}, tc.args...), &stdout, &stderr)
			if !errors.Is(err, errUsage) {
				t.Errorf("got %v, want errUsage", err)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr: got %q, want it to say %q", stderr.String(), tc.want)
			}
		})
	}
}

// TestSampleBatch checks the sample data against the rules the worker and
// the simulator enforce: a valid job that broke one would fail the demo,
// an invalid one that broke none would not show what it should.
func TestSampleBatch(t *testing.T) {
	dec := updater.NewDecoder(schema.New())
	for _, n := range []int{20, 60, 300, 1000} {
		for seed := int64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("n=%d/seed=%d", n, seed), func(t *testing.T) {
				b := planBatch(seed, n, time.Now())
				if len(b.jobs) != n {
					t.Fatalf("jobs: got %d, want %d", len(b.jobs), n)
				}
				sim := pcsim.New(pcsim.Options{Seed: 1})
				defer sim.Close()
				for _, e := range b.engagements {
					if err := sim.AddEngagement(e); err != nil {
						t.Fatalf("engagement %s: %v", e.Id, err)
					}
				}
				if err := b.encode(func(id string) string {
					st, _ := sim.Engagement(id)
					return st.ModifiedAt
				}); err != nil {
					t.Fatal(err)
				}
				whats := map[string]bool{}
				for i, j := range b.jobs {
					_, err := dec.Decode([]byte(j.body))
					var invalid *updater.InvalidJobError
					switch {
					case j.fate == fateInvalid && !errors.As(err, &invalid):
						t.Errorf("job %d (%s): got %v, want an invalid job", i, j.what, err)
					case j.fate == fateInvalid && len(invalid.Violations) != 1:
						t.Errorf("job %d (%s): got %d violations (%v), want exactly one", i, j.what, len(invalid.Violations), err)
					case j.fate != fateInvalid && err != nil:
						t.Errorf("job %d for %s/%s: got %v, want a valid job", i, j.eng, j.ctx, err)
					}
					if j.fate != fateApply {
						whats[j.what] = true
					}
				}
				if n >= 300 && len(whats) < len(invalidKinds)+3 {
					t.Errorf("kinds of failing job: got %d, want every invalid kind and 3 kinds of refusal", len(whats))
				}
				if got := len(b.newest()); got != b.contexts {
					t.Errorf("contexts updated: got %d, want %d", got, b.contexts)
				}
			})
		}
	}
}

// TestVerifyFindsWhatIsWrong checks that the demo's verdict is not
// vacuous: with nothing applied and the DLQ empty or wrong, it complains.
func TestVerifyFindsWhatIsWrong(t *testing.T) {
	b := planBatch(3, 40, time.Now())
	sim := pcsim.New(pcsim.Options{Seed: 1})
	defer sim.Close()
	for _, e := range b.engagements {
		if err := sim.AddEngagement(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.encode(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	var valid *sampleJob
	for _, j := range b.jobs {
		if j.fate == fateApply {
			valid = j
			break
		}
	}
	problems := strings.Join(verify(b, sim, []queue.DLQMessage{{Body: valid.body, Class: updater.ClassAPIError, Reason: "boom"}}), "\n")
	for _, want := range []string{
		"do not hold their newest version",
		"is not in the dead-letter queue",
		fmt.Sprintf("valid job for %s/%s is in the dead-letter queue", valid.eng, valid.ctx),
	} {
		if !strings.Contains(problems, want) {
			t.Errorf("problems: got\n%s\nwant one saying %q", problems, want)
		}
	}
}

// TestVerifyEndState checks the verdict on a simulator whose contexts were
// created holding the newest versions: nothing wrong, until one context
// is spoilt, and then the message names the context and what is wrong.
func TestVerifyEndState(t *testing.T) {
	b := planBatch(2, 60, time.Now())
	if err := b.encode(func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	newest := b.newest()
	sim := pcsim.New(pcsim.Options{Seed: 1})
	defer sim.Close()
	for _, e := range b.engagements {
		e.Contexts = slices.Clone(e.Contexts)
		for i, c := range e.Contexts {
			if j, ok := newest[e.Id+"/"+c.Id]; ok {
				e.Contexts[i].Payload = member(string(j.typ), j.payload)
			}
		}
		if err := sim.AddEngagement(e); err != nil {
			t.Fatalf("engagement %s: %v", e.Id, err)
		}
	}
	var dlq []queue.DLQMessage
	for _, j := range b.jobs {
		if j.fate != fateApply {
			dlq = append(dlq, queue.DLQMessage{Body: j.body, Class: j.class, Reason: "planted"})
		}
	}
	var project, lead string // a context of each type that a job updates
	for _, k := range slices.Sorted(maps.Keys(newest)) {
		switch newest[k].typ {
		case types.EngagementContextTypeCustomerProject:
			project = cmp.Or(project, k)
		case types.EngagementContextTypeLead:
			lead = cmp.Or(lead, k)
		}
	}
	if project == "" || lead == "" {
		t.Fatalf("the batch updates no customer project or no lead: %q, %q", project, lead)
	}
	// lastInteraction is a lead's last interaction, in GetEngagement's form.
	lastInteraction := func(p map[string]any) map[string]any {
		is := p["Interactions"].([]any)
		return is[len(is)-1].(map[string]any)
	}

	for _, tc := range []struct {
		name  string
		key   string                       // the context to spoil
		spoil func(payload map[string]any) // its payload member, as GetEngagement returns it
		want  string
	}{
		{"every context holds its newest version", "", nil, ""},
		{"a customer project differs", project, func(p map[string]any) {
			p["Project"].(map[string]any)["Title"] = "Another project altogether"
		}, "context " + project + ": does not hold the newest version"},
		{"a lead's status differs", lead, func(p map[string]any) {
			if p["QualificationStatus"] == "Qualified" {
				p["QualificationStatus"] = "Unqualified"
			} else {
				p["QualificationStatus"] = "Qualified"
			}
		}, "context " + lead + ": does not hold the newest version of the lead"},
		{"a lead's last interaction differs", lead, func(p map[string]any) {
			lastInteraction(p)["BusinessProblem"] = "A business problem of another interaction"
		}, "context " + lead + ": its last interaction is not the newest version's"},
		{"an older interaction was written after the newest", lead, func(p map[string]any) {
			older := maps.Clone(lastInteraction(p))
			older["BusinessProblem"] = "A business problem of an older interaction"
			p["Interactions"] = append(p["Interactions"].([]any), older)
		}, "context " + lead + ": its last interaction is not the newest version's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(verify(b, spoilt{sim, t, tc.key, tc.spoil}, dlq), "\n")
			if got != tc.want {
				t.Errorf("problems: got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
}

// spoilt is the simulator's state with one context's payload changed, as
// a bug in the worker would have left it.
type spoilt struct {
	engagements
	t     *testing.T
	key   string // "engagement/context"
	spoil func(payload map[string]any)
}

func (s spoilt) Engagement(id string) (pcsim.EngagementState, bool) {
	st, ok := s.engagements.Engagement(id)
	for i, c := range st.Contexts {
		if id+"/"+c.Id != s.key {
			continue
		}
		var union map[string]map[string]any
		if err := json.Unmarshal(c.Payload, &union); err != nil {
			s.t.Fatalf("context %s: %v", s.key, err)
		}
		s.spoil(union[string(c.Type)])
		raw, err := json.Marshal(union)
		if err != nil {
			s.t.Fatalf("context %s: %v", s.key, err)
		}
		st.Contexts = slices.Clone(st.Contexts)
		st.Contexts[i].Payload = raw
	}
	return st, ok
}

// TestOutcomeNotes checks that the summary explains every outcome the
// worker counts.
func TestOutcomeNotes(t *testing.T) {
	for _, o := range updater.Outcomes() {
		if n, ok := outcomeNotes[o]; !ok || n.name == "" || n.note == "" {
			t.Errorf("outcome %q: got note %+v, want a name and a note", o, n)
		}
	}
}

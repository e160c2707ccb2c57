package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// hostileBodies are malformed or hostile job bodies, each breaking the
// format in its own way. good is a valid CustomerProject job to mutate.
func hostileBodies(t *testing.T, good string) map[string]string {
	t.Helper()
	mut := func(f func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(good), &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return string(b)
	}
	payload := func(m map[string]any) map[string]any {
		return m["Payload"].(map[string]any)["CustomerProject"].(map[string]any)
	}
	customer := func(m map[string]any) map[string]any { return payload(m)["Customer"].(map[string]any) }
	project := func(m map[string]any) map[string]any { return payload(m)["Project"].(map[string]any) }
	lead := `{"Catalog":"Sandbox","EngagementIdentifier":"eng-zzzzzzzzzzzzz1","ContextIdentifier":"1","Type":"Lead","Payload":{"Lead":{"Customer":{"CompanyName":"X","Address":{"CountryCode":"US"}},"Interaction":{"SourceType":"a","SourceId":"b","SourceName":"c","CustomerAction":"d","Contact":{"BusinessTitle":"t","Email":"a@b.example","FirstName":"f","LastName":"l"}}}}}`
	return map[string]string{
		"not json":                "garbage",
		"blank":                   " ",
		"null":                    "null",
		"array":                   "[]",
		"string":                  `"job"`,
		"number":                  "123",
		"boolean":                 "true",
		"truncated":               `{"Catalog":"Sandbox"`,
		"two documents":           "{} {}",
		"byte order mark":         "\ufeff" + good,
		"lone surrogate in id":    strings.Replace(good, `"eng-`, `"eng-\ud800`, 1),
		"control character in id": strings.Replace(good, `"eng-`, `"eng-\u0001`, 1),
		"deep nesting":            `{"Catalog":` + strings.Repeat(`{"a":`, 200) + "1" + strings.Repeat("}", 200) + "}",
		"duplicate key":           strings.Replace(good, `"Catalog":"Sandbox"`, `"Catalog":"Sandbox","Catalog":"AWS"`, 1),
		"both union members":      mut(func(m map[string]any) { m["Payload"].(map[string]any)["Lead"] = map[string]any{} }),
		"unknown top-level field": mut(func(m map[string]any) { m["Priority"] = "urgent" }),
		"unknown nested field":    mut(func(m map[string]any) { customer(m)["Revenue"] = 1e9 }),
		"catalog a number":        mut(func(m map[string]any) { m["Catalog"] = 7 }),
		"payload an array":        mut(func(m map[string]any) { m["Payload"] = []any{1} }),
		"customer a string":       mut(func(m map[string]any) { payload(m)["Customer"] = "Acme" }),
		"huge string":             mut(func(m map[string]any) { customer(m)["CompanyName"] = strings.Repeat("A", 200_000) }),
		"near 1 MiB body":         mut(func(m map[string]any) { m["Padding"] = strings.Repeat("p", 1_000_000) }),
		"huge number":             strings.Replace(good, `"Catalog":"Sandbox"`, `"Catalog":1e999`, 1),
		"object for Type":         mut(func(m map[string]any) { m["Type"] = map[string]any{"$ne": nil} }),
		"null required field":     mut(func(m map[string]any) { m["ContextIdentifier"] = nil }),
		"missing payload":         mut(func(m map[string]any) { delete(m, "Payload") }),
		"type does not match":     mut(func(m map[string]any) { m["Type"] = "Lead" }),
		"industry not in model":   mut(func(m map[string]any) { customer(m)["Industry"] = "Crypto" }),
		"country lower case":      mut(func(m map[string]any) { customer(m)["CountryCode"] = "us" }),
		"business problem short":  mut(func(m map[string]any) { project(m)["BusinessProblem"] = "short" }),
		"date not on calendar":    mut(func(m map[string]any) { project(m)["TargetCompletionDate"] = "2027-02-30" }),
		"date wrong format":       mut(func(m map[string]any) { project(m)["TargetCompletionDate"] = "12/31/2026" }),
		"injection in id":         mut(func(m map[string]any) { m["EngagementIdentifier"] = "eng-'; DROP TABLE x;--" }),
		"context id too long":     mut(func(m map[string]any) { m["ContextIdentifier"] = "1234" }),
		"timestamp not a time":    mut(func(m map[string]any) { m["EngagementLastModifiedAt"] = "now" }),
		"source time in future":   mut(func(m map[string]any) { m["SourceUpdatedAt"] = time.Now().Add(48 * time.Hour).Format(time.RFC3339) }),
		"source time not a time":  mut(func(m map[string]any) { m["SourceUpdatedAt"] = 1764137588 }),
		"catalog lower case":      mut(func(m map[string]any) { m["Catalog"] = "sandbox" }),
		"script as website":       mut(func(m map[string]any) { customer(m)["WebsiteUrl"] = "javascript:alert(1)" }),
		"null payload member":     mut(func(m map[string]any) { m["Payload"] = map[string]any{"CustomerProject": nil} }),
		"lead without address":    strings.Replace(lead, `,"Address":{"CountryCode":"US"}`, ``, 1),
		"lead without contact":    strings.Replace(lead, `,"Contact":{"BusinessTitle":"t","Email":"a@b.example","FirstName":"f","LastName":"l"}`, ``, 1),
		"lead email upper case":   strings.Replace(lead, `a@b.example`, `Boss@Corp.example`, 1),
		"lead state not in model": strings.Replace(lead, `"CountryCode":"US"}`, `"CountryCode":"US","StateOrRegion":"Atlantis"}`, 1),
		"lead phone not E.164":    strings.Replace(lead, `"LastName":"l"`, `"LastName":"l","Phone":"555-0100"`, 1),
	}
}

func TestReliabilityHostileInputGoesToDLQ(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 200, WriteBurst: 200, ReadRPS: 200, ReadBurst: 200})
	ids := e.addEngagements("l", 60, 1)
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, e.body(job{eng: id, ctx: "1", title: "good"}))
	}
	hostile := hostileBodies(t, e.body(job{eng: ids[0], ctx: "1", title: "hostile"}))
	if len(hostile) < 40 {
		t.Fatalf("the suite has %d hostile bodies, want at least 40", len(hostile))
	}
	byBody := map[string]string{}
	for name, b := range hostile {
		bodies = append(bodies, b)
		byBody[b] = name
	}
	// Mixed into good traffic.
	for i := range bodies {
		j := (i * 7919) % len(bodies)
		bodies[i], bodies[j] = bodies[j], bodies[i]
	}
	e.enqueue(bodies...)
	if err, logs := e.runWorker(context.Background(), "-write-rps", "200", "-read-rps", "200"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	for _, id := range ids {
		if got, _ := e.title(id, "1"); got != "good" {
			t.Errorf("%s: got %q, want the good job applied", id, got)
		}
	}
	dl := e.drain(e.stack.DLQURL)
	seen := map[string]bool{}
	for _, m := range dl {
		name, ok := byBody[aws.ToString(m.Body)]
		if !ok {
			t.Errorf("DLQ holds a body that is not one of the hostile ones (or was altered): %.60q", aws.ToString(m.Body))
			continue
		}
		seen[name] = true
		class := aws.ToString(m.MessageAttributes["ErrorClass"].StringValue)
		reason := aws.ToString(m.MessageAttributes["ErrorReason"].StringValue)
		if class == "" || reason == "" {
			t.Errorf("%s: DLQ copy without class or reason (%q, %q)", name, class, reason)
		}
	}
	for name := range hostile {
		if !seen[name] {
			t.Errorf("%s: not in the DLQ", name)
		}
	}
	t.Logf("%d hostile bodies mixed into %d good jobs: %d in the DLQ with a class and a reason, every good job applied", len(hostile), len(ids), len(dl))
}

func TestReliabilityNoPersonalDataInLogsOrMetrics(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 200, WriteBurst: 200, ReadRPS: 200, ReadBurst: 200, Faults: pcsim.Faults{Error5xx: 0.2, LostResponse: 0.2}})
	secrets := []string{}
	var bodies []string
	for i := range 20 {
		id := fmt.Sprintf("eng-p%013d", i)
		if err := e.stack.Sim.AddEngagement(pcsim.NewEngagement{Id: id, Catalog: "Sandbox", Contexts: []pcsim.NewContext{{Id: "1", Type: types.EngagementContextTypeLead}}}); err != nil {
			t.Fatal(err)
		}
		first, last := fmt.Sprintf("Zelphine%d", i), fmt.Sprintf("Quorvath%d", i)
		email := fmt.Sprintf("zelphine.quorvath%d@privacy.example", i)
		phone := fmt.Sprintf("+1555010%04d", i)
		company := fmt.Sprintf("Xyloquent Holdings %d", i)
		if i%4 == 3 {
			email = strings.ToUpper(email) // invalid: goes to the DLQ, its reason must not repeat it
		}
		secrets = append(secrets, first, last, strings.ToLower(email), strings.ToUpper(email), phone, company)
		bodies = append(bodies, fmt.Sprintf(`{"Catalog":"Sandbox","EngagementIdentifier":%q,"ContextIdentifier":"1","Type":"Lead","Payload":{"Lead":{"Customer":{"CompanyName":%q,"Address":{"City":"Springfield","CountryCode":"US"}},"Interaction":{"SourceType":"Web","SourceId":"w1","SourceName":"Website","CustomerAction":"Filled a form","Contact":{"BusinessTitle":"CFO","Email":%q,"FirstName":%q,"LastName":%q,"Phone":%q}}}}}`,
			id, company, email, first, last, phone))
	}
	e.enqueue(bodies...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"run", "-metrics-addr", "127.0.0.1:0", "-log-format", "json", "-log-level", "info", "-write-rps", "200", "-read-rps", "200"},
			func(k string) string { return e.env[k] }, strings.NewReader(""), &logs, &logs)
	}()
	addr := waitFor(t, 10*time.Second, func() (string, bool) {
		m := regexp.MustCompile(`"msg":"serving health and metrics","addr":"([^"]+)"`).FindStringSubmatch(logs.String())
		if m == nil {
			return "", false
		}
		return m[1], true
	})
	metrics := waitFor(t, 60*time.Second, func() (string, bool) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), regexp.MustCompile(`pcsync_jobs_total\{outcome="dead_lettered",queue="[^"]+"\} 5\b`).Match(b) &&
			regexp.MustCompile(`pcsync_messages_acked_total 20\b`).Match(b)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v", err)
	}
	all := logs.String() + metrics
	for _, dl := range e.drain(e.stack.DLQURL) {
		all += aws.ToString(dl.MessageAttributes["ErrorReason"].StringValue)
	}
	for _, s := range secrets {
		if strings.Contains(all, s) {
			t.Errorf("personal data %q appears in the logs, the metrics or a DLQ reason", s)
		}
	}
	t.Logf("scanned %d bytes of info-level logs, metrics and DLQ reasons for %d names, e-mails, phones and companies: none found", len(all), len(secrets))
}

func TestReliabilityFaults(t *testing.T) {
	faults := pcsim.Faults{Error5xx: 0.10, Drop: 0.05, LostResponse: 0.05}
	e := newE2E(t, pcsim.Options{WriteRPS: 200, WriteBurst: 200, ReadRPS: 400, ReadBurst: 400, Faults: faults})
	e.setVisibility(4)
	ids := e.addEngagements("n", 120, 5)
	bodies := e.jobsFor(ids, 5, "v1")
	e.enqueue(bodies...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs string
	go func() {
		// Outlast the emulator's 20-second long poll, which a message
		// becoming visible again after the restart does not wake.
		err, l := e.runWorker(ctx, "-write-rps", "200", "-read-rps", "400", "-exit-when-idle", "25s")
		logs = l
		done <- err
	}()
	applied := func() int { return e.stack.Sim.Stats().Calls["UpdateEngagementContext"]["200"] }
	waitFor(t, 60*time.Second, func() (struct{}, bool) { return struct{}{}, applied() >= 100 })
	// A latency spike: every call takes 2 s for a while.
	spike := faults
	spike.Latency = 2 * time.Second
	e.stack.Sim.SetFaults(spike)
	n := applied()
	waitFor(t, 60*time.Second, func() (struct{}, bool) { return struct{}{}, applied() >= n+20 })
	e.stack.Sim.SetFaults(faults)
	waitFor(t, 60*time.Second, func() (struct{}, bool) { return struct{}{}, applied() >= 250 })
	// The SQS emulator restarts under the running worker.
	e.stack.RestartSQS()
	t.Log("SQS emulator restarted")
	if err := <-done; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	e.wantTitles(ids, 5, "v1")
	if dl := e.drain(e.stack.DLQURL); len(dl) != 0 {
		t.Errorf("DLQ: got %d messages, want none (every fault here is transient)", len(dl))
	}
	_, w := e.calls("UpdateEngagementContext")
	t.Logf("%d jobs through 10 %% 5xx, 5 %% dropped connections, 5 %% lost responses, a 2 s latency spike and an SQS restart: all applied; write calls by status %v", len(bodies), w)
}

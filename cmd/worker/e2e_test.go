package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/queue"
)

// e2e is one end-to-end run: the local stack (kumo and the simulator over
// HTTP) and the real run function of the worker.
type e2e struct {
	t     *testing.T
	stack *devstack.Stack
	env   map[string]string
	// modifiedAt is each engagement's ModifiedAt when the test made it:
	// what an upstream system that knows it would put in its jobs.
	modifiedAt map[string]string
}

var queueNameChars = regexp.MustCompile(`[^a-zA-Z0-9_-]+`)

func newE2E(t *testing.T, sim pcsim.Options) *e2e {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end run; skipped with -short")
	}
	name := queueNameChars.ReplaceAllString(t.Name(), "-")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	if sim.Seed == 0 {
		sim.Seed = 7
	}
	s, err := devstack.Start(context.Background(), devstack.Options{Queue: name, Sim: sim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	e := &e2e{t: t, stack: s, env: map[string]string{}, modifiedAt: map[string]string{}}
	// The AWS SDK reads its settings from the process environment.
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "PCSYNC_") {
			e.env[k] = v
		} else {
			t.Setenv(k, v)
		}
	}
	// The worker keeps its state in the default place, which these point
	// into the test's own directory: never the real home.
	e.env["HOME"] = filepath.Join(dir, "home")
	e.env["XDG_STATE_HOME"] = filepath.Join(dir, "state")
	return e
}

// addEngagements creates n engagements with contexts "1".."c" of type
// CustomerProject and returns their ids.
func (e *e2e) addEngagements(prefix string, n, c int) []string {
	var ids []string
	for i := range n {
		id := fmt.Sprintf("eng-%s%0*d", prefix, 14-len(prefix), i)
		var ctxs []pcsim.NewContext
		for k := 1; k <= c; k++ {
			ctxs = append(ctxs, pcsim.NewContext{Id: fmt.Sprint(k), Type: types.EngagementContextTypeCustomerProject})
		}
		if err := e.stack.Sim.AddEngagement(pcsim.NewEngagement{Id: id, Catalog: "Sandbox", Contexts: ctxs}); err != nil {
			e.t.Fatal(err)
		}
		st, _ := e.stack.Sim.Engagement(id)
		e.modifiedAt[id] = st.ModifiedAt
		ids = append(ids, id)
	}
	return ids
}

// job is one version of a context's payload; title tells versions apart.
type job struct {
	eng, ctx, title string
	source          time.Time // SourceUpdatedAt; zero: none
	withTimestamp   bool      // carry the engagement's ModifiedAt as the test made it
}

func (e *e2e) body(j job) string {
	m := map[string]any{
		"Catalog": "Sandbox", "EngagementIdentifier": j.eng, "ContextIdentifier": j.ctx, "Type": "CustomerProject",
		"Payload": map[string]any{"CustomerProject": map[string]any{
			"Customer": map[string]any{"Industry": "Software and Internet", "CompanyName": "Acme " + j.eng, "WebsiteUrl": "https://acme.example", "CountryCode": "US"},
			"Project":  map[string]any{"Title": j.title, "BusinessProblem": "Needs to migrate 40 VMs to AWS", "TargetCompletionDate": "2026-12-31"},
		}},
	}
	if !j.source.IsZero() {
		m["SourceUpdatedAt"] = j.source.Format(time.RFC3339Nano)
	}
	if j.withTimestamp {
		m["EngagementLastModifiedAt"] = e.modifiedAt[j.eng]
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// jobsFor is one job per context ("1".."contexts") of every engagement,
// carrying the engagement's timestamp as an upstream that knows it would.
func (e *e2e) jobsFor(ids []string, contexts int, title string) []string {
	var bodies []string
	for _, id := range ids {
		for c := 1; c <= contexts; c++ {
			bodies = append(bodies, e.body(job{eng: id, ctx: fmt.Sprint(c), title: title, withTimestamp: true}))
		}
	}
	return bodies
}

// versionsFor is versions jobs per context of every engagement, titled
// v1..vN with SourceUpdatedAt a minute apart, shuffled by seed.
func (e *e2e) versionsFor(ids []string, contexts, versions int, seed uint64) []string {
	base := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	var bodies []string
	for _, id := range ids {
		for c := 1; c <= contexts; c++ {
			for v := 1; v <= versions; v++ {
				bodies = append(bodies, e.body(job{eng: id, ctx: fmt.Sprint(c), title: fmt.Sprintf("v%d", v), source: base.Add(time.Duration(v) * time.Minute)}))
			}
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed+1))
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	return bodies
}

// wantTitles fails the test for every context not holding want.
func (e *e2e) wantTitles(ids []string, contexts int, want string) {
	e.t.Helper()
	for _, id := range ids {
		for c := 1; c <= contexts; c++ {
			if got, _ := e.title(id, fmt.Sprint(c)); got != want {
				e.t.Errorf("%s/%d: got %q, want %q", id, c, got, want)
			}
		}
	}
}

// setVisibility shortens the queue's visibility timeout, so that what a
// killed or cut-off worker held comes back within a test.
func (e *e2e) setVisibility(seconds int) {
	e.t.Helper()
	if _, err := e.stack.SQS.SetQueueAttributes(context.Background(), &sqs.SetQueueAttributesInput{
		QueueUrl: aws.String(e.stack.QueueURL), Attributes: map[string]string{"VisibilityTimeout": fmt.Sprint(seconds)}}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *e2e) enqueue(bodies ...string) {
	e.t.Helper()
	p := queue.NewProducer(e.stack.SQS, e.stack.QueueURL, queue.ProducerConfig{})
	for len(bodies) > 0 {
		n := min(len(bodies), 100)
		entries := make([]queue.Entry, n)
		for i, b := range bodies[:n] {
			entries[i] = queue.Entry{Body: b}
		}
		if _, err := p.Send(context.Background(), entries); err != nil {
			e.t.Fatalf("enqueue: %v", err)
		}
		bodies = bodies[n:]
	}
}

// runWorker runs "worker run" until it exits (idle, or ctx), and returns
// its error and its log.
func (e *e2e) runWorker(ctx context.Context, args ...string) (error, string) {
	e.t.Helper()
	var logs syncBuffer
	base := []string{"run", "-metrics-addr", "127.0.0.1:0", "-exit-when-idle", "3s", "-log-level", "info", "-log-format", "text"}
	err := run(ctx, append(base, args...), func(k string) string { return e.env[k] }, strings.NewReader(""), &logs, &logs)
	return err, logs.String()
}

// title returns the Project.Title a context holds in the simulator.
func (e *e2e) title(eng, ctxID string) (string, int) {
	st, ok := e.stack.Sim.Engagement(eng)
	if !ok {
		e.t.Fatalf("engagement %s not found", eng)
	}
	for _, c := range st.Contexts {
		if c.Id != ctxID {
			continue
		}
		var p struct {
			CustomerProject struct{ Project struct{ Title string } }
		}
		if len(c.Payload) > 0 {
			if err := json.Unmarshal(c.Payload, &p); err != nil {
				e.t.Fatal(err)
			}
		}
		return p.CustomerProject.Project.Title, c.Writes
	}
	e.t.Fatalf("context %s/%s not found", eng, ctxID)
	return "", 0
}

func (e *e2e) calls(op string) (total int, byStatus map[string]int) {
	byStatus = e.stack.Sim.Stats().Calls[op]
	for _, n := range byStatus {
		total += n
	}
	return total, byStatus
}

// drain receives every message of a queue (they stay invisible afterwards).
func (e *e2e) drain(url string) []sqstypes.Message {
	var out []sqstypes.Message
	for {
		r, err := e.stack.SQS.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{
			QueueUrl: aws.String(url), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300,
			MessageAttributeNames: []string{"All"},
		})
		if err != nil {
			e.t.Fatal(err)
		}
		if len(r.Messages) == 0 {
			return out
		}
		out = append(out, r.Messages...)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestE2EAppliesEveryJob(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 50, WriteBurst: 50, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("a", 200, 5)
	var bodies []string
	for _, id := range ids {
		for c := 1; c <= 5; c++ {
			bodies = append(bodies, e.body(job{eng: id, ctx: fmt.Sprint(c), title: "v1 " + id, withTimestamp: true}))
		}
	}
	e.enqueue(bodies...)
	start := time.Now()
	if err, logs := e.runWorker(context.Background(), "-write-rps", "50", "-read-rps", "100", "-workers", "32"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	took := time.Since(start)
	for _, id := range ids {
		for c := 1; c <= 5; c++ {
			if got, writes := e.title(id, fmt.Sprint(c)); got != "v1 "+id || writes != 1 {
				t.Fatalf("%s/%d: got title %q after %d writes, want %q after 1", id, c, got, writes, "v1 "+id)
			}
		}
	}
	writes, _ := e.calls("UpdateEngagementContext")
	reads, _ := e.calls("GetEngagement")
	perJob := float64(writes+reads) / float64(len(bodies))
	t.Logf("%d jobs over %d engagements: %d writes + %d reads = %.3f API calls per job; %.1f jobs/s against a 50/s quota",
		len(bodies), len(ids), writes, reads, perJob, float64(len(bodies))/took.Seconds())
	if perJob > 1.02 {
		t.Errorf("API calls per job: got %.3f, want <= 1.02", perJob)
	}
	if dl := e.drain(e.stack.DLQURL); len(dl) != 0 {
		t.Errorf("DLQ: got %d messages, want none", len(dl))
	}
}

func TestE2EHealsConflictsFromOutsideWrites(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 50, WriteBurst: 50, ReadRPS: 100, ReadBurst: 100, OutsideWritesPerSec: 12})
	ids := e.addEngagements("b", 100, 5)
	var bodies []string
	for _, id := range ids {
		for c := 1; c <= 5; c++ {
			bodies = append(bodies, e.body(job{eng: id, ctx: fmt.Sprint(c), title: "v1 " + id, withTimestamp: true}))
		}
	}
	e.enqueue(bodies...)
	if err, logs := e.runWorker(context.Background(), "-write-rps", "50", "-read-rps", "100"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	e.stack.Sim.SetOutsideWritesPerSec(0)
	for _, id := range ids {
		for c := 1; c <= 5; c++ {
			if got, _ := e.title(id, fmt.Sprint(c)); got != "v1 "+id {
				t.Fatalf("%s/%d: got title %q, want %q", id, c, got, "v1 "+id)
			}
		}
	}
	writes, w := e.calls("UpdateEngagementContext")
	reads, _ := e.calls("GetEngagement")
	perJob := float64(writes+reads) / float64(len(bodies))
	conflictShare := float64(w["409"]) / float64(len(bodies))
	t.Logf("%d jobs, %d outside writes: %d conflicts (%.1f %% of jobs), %d writes + %d reads = %.3f API calls per job",
		len(bodies), e.stack.Sim.Stats().OutsideWrites, w["409"], 100*conflictShare, writes, reads, perJob)
	if conflictShare < 0.03 {
		t.Errorf("conflicts: got %.1f %% of jobs, want a real share (the test needs outside writes to bite)", 100*conflictShare)
	}
	if perJob > 1.3 {
		t.Errorf("API calls per job: got %.3f, want <= 1.3", perJob)
	}
}

func TestE2EFindsQuotaBelowConfiguredRate(t *testing.T) {
	const quota = 40
	e := newE2E(t, pcsim.Options{WriteRPS: quota, WriteBurst: quota, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("c", 200, 5)
	bodies := e.jobsFor(ids, 5, "v1")
	e.enqueue(bodies...)
	// Sample the simulator's accepted writes once a second.
	ctx, stop := context.WithCancel(context.Background())
	samples := make(chan []int, 1)
	go func() {
		var s []int
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				samples <- s
				return
			case <-tick.C:
				s = append(s, e.stack.Sim.Stats().Calls["UpdateEngagementContext"]["200"])
			}
		}
	}()
	err, logs := e.runWorker(context.Background(), "-write-rps", fmt.Sprint(3*quota), "-read-rps", "100", "-workers", "32")
	stop()
	s := <-samples
	if err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	writes, w := e.calls("UpdateEngagementContext")
	throttled := float64(w["429"]) / float64(writes)
	// Settled: from the 5th second to the last full second with work left.
	var settled float64
	n := 0
	for i := 5; i < len(s) && s[i] < len(bodies); i++ {
		settled += float64(s[i] - s[i-1])
		n++
	}
	if n > 0 {
		settled /= float64(n) * quota
	}
	t.Logf("rate ceiling %d/s against a %d/s quota: %d writes, %d throttled (%.2f %%), settled throughput %.3f of the quota over %d s",
		3*quota, quota, writes, w["429"], 100*throttled, settled, n)
	e.wantTitles(ids, 5, "v1")
	if throttled > 0.05 {
		t.Errorf("throttled share of writes: got %.2f %%, want <= 5 %%", 100*throttled)
	}
	if n < 5 || settled < 0.85 {
		t.Errorf("settled throughput: got %.3f of the quota over %d s, want >= 0.85 over at least 5 s", settled, n)
	}
}

func TestE2ENewestVersionWinsOutOfOrder(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("d", 25, 2)
	bodies := e.versionsFor(ids, 2, 4, 1)
	// Spread over many receive batches: a few at a time, with the worker
	// already running.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs string
	go func() {
		err, l := e.runWorker(ctx, "-write-rps", "100", "-read-rps", "100", "-workers", "4")
		logs = l
		done <- err
	}()
	for len(bodies) > 0 {
		n := min(len(bodies), 7)
		e.enqueue(bodies[:n]...)
		bodies = bodies[n:]
	}
	if err := <-done; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	e.wantTitles(ids, 2, "v4")
	writes, _ := e.calls("UpdateEngagementContext")
	t.Logf("200 versions of 50 contexts, shuffled: %d writes (%.2f per message)", writes, float64(writes)/200)
}

func TestE2ELostResponsesAreNotWrittenTwice(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100, Faults: pcsim.Faults{LostResponse: 0.3}})
	ids := e.addEngagements("e", 50, 2)
	bodies := e.jobsFor(ids, 2, "v1")
	e.enqueue(bodies...)
	if err, logs := e.runWorker(context.Background(), "-write-rps", "100", "-read-rps", "100"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	for _, id := range ids {
		for c := 1; c <= 2; c++ {
			if got, writes := e.title(id, fmt.Sprint(c)); got != "v1" || writes != 1 {
				t.Errorf("%s/%d: got %q after %d writes, want v1 written once", id, c, got, writes)
			}
		}
	}
	_, w := e.calls("UpdateEngagementContext")
	t.Logf("%d writes applied with the response lost; every context written exactly once; write calls by status %v", w["lost"], w)
	if w["lost"] == 0 {
		t.Error("no response was lost: the test did not exercise the path")
	}
	if w["409"] != 0 {
		t.Errorf("conflicting rewrites: got %d, want 0 (a lost response is settled by a read)", w["409"])
	}
}

func TestE2EDeadLettersWithReasons(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("f", 20, 1)
	if err := e.stack.Sim.AddEngagement(pcsim.NewEngagement{Id: "eng-flead000000000", Catalog: "Sandbox",
		Contexts: []pcsim.NewContext{{Id: "1", Type: types.EngagementContextTypeLead}}}); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, e.body(job{eng: id, ctx: "1", title: "good"}))
	}
	bad := map[string]string{
		"not json":         `{"Catalog":`,
		"country":          strings.Replace(e.body(job{eng: ids[0], ctx: "1", title: "bad"}), `"US"`, `"USA"`, 1),
		"unknown engament": e.body(job{eng: "eng-zzzzzzzzzzzzzz", ctx: "1", title: "x"}),
		"unknown context":  e.body(job{eng: ids[1], ctx: "9", title: "x"}),
		"type mismatch":    e.body(job{eng: "eng-flead000000000", ctx: "1", title: "x"}),
	}
	for _, b := range bad {
		bodies = append(bodies, b)
	}
	e.enqueue(bodies...)
	if err, logs := e.runWorker(context.Background(), "-write-rps", "100", "-read-rps", "100"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	for _, id := range ids {
		if got, _ := e.title(id, "1"); got != "good" {
			t.Errorf("%s: got %q, want the good job applied", id, got)
		}
	}
	dl := e.drain(e.stack.DLQURL)
	if len(dl) != len(bad) {
		t.Fatalf("DLQ: got %d messages, want %d", len(dl), len(bad))
	}
	wantClass := map[string]string{
		bad["not json"]:         "invalid_job",
		bad["country"]:          "invalid_job",
		bad["unknown engament"]: "not_found",
		bad["unknown context"]:  "not_found",
		bad["type mismatch"]:    "api_validation",
	}
	for _, m := range dl {
		body := aws.ToString(m.Body)
		want, ok := wantClass[body]
		if !ok {
			t.Errorf("DLQ holds an unexpected or altered body %q", body)
			continue
		}
		attrs := map[string]string{}
		for k, v := range m.MessageAttributes {
			attrs[k] = aws.ToString(v.StringValue)
		}
		t.Logf("DLQ: %v", attrs)
		var class, reason string
		for k, v := range attrs {
			lk := strings.ToLower(k)
			if strings.Contains(lk, "class") {
				class = v
			}
			if strings.Contains(lk, "reason") {
				reason = v
			}
		}
		if class != want || reason == "" {
			t.Errorf("DLQ message %q: got class %q, reason %q; want class %q with a reason", body[:min(40, len(body))], class, reason, want)
		}
	}
}

func TestE2EAccessDeniedOpensCircuitAndResumes(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100, Faults: pcsim.Faults{DenyAccess: true}})
	ids := e.addEngagements("g", 30, 1)
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, e.body(job{eng: id, ctx: "1", title: "v1", withTimestamp: true}))
	}
	e.enqueue(bodies...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs string
	go func() { err, l := e.runWorker(ctx, "-write-rps", "100", "-read-rps", "100"); logs = l; done <- err }()
	// Wait for the service to refuse, then give access back.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, w := e.calls("UpdateEngagementContext"); w["403"] > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no call reached the simulator within 30 s")
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case err := <-done:
			t.Fatalf("worker exited early: %v\n%s", err, logs)
		}
	}
	_, w := e.calls("UpdateEngagementContext")
	e.stack.Sim.SetFaults(pcsim.Faults{})
	if err := <-done; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	for _, id := range ids {
		if got, _ := e.title(id, "1"); got != "v1" {
			t.Errorf("%s: got %q, want v1 applied after access returned", id, got)
		}
	}
	if dl := e.drain(e.stack.DLQURL); len(dl) != 0 {
		t.Errorf("DLQ: got %d messages, want none (access denied is not the job's fault)", len(dl))
	}
	if !strings.Contains(logs, "circuit open") || !strings.Contains(logs, "circuit closed") {
		t.Errorf("logs: want the circuit opening and closing\n%s", logs)
	}
	t.Logf("403s while denied: %d (the circuit stopped the rest)", w["403"])
	if w["403"] > 5 {
		t.Errorf("calls refused while access was denied: got %d, want a handful (the circuit should stop them)", w["403"])
	}
}

func TestE2ESigtermDrainsWithoutLossOrDoubleWrite(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 20, WriteBurst: 20, ReadRPS: 100, ReadBurst: 100, Faults: pcsim.Faults{Latency: 50 * time.Millisecond}})
	ids := e.addEngagements("h", 60, 5)
	bodies := e.jobsFor(ids, 5, "v1")
	e.enqueue(bodies...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs string
	go func() {
		err, l := e.runWorker(ctx, "-write-rps", "20", "-read-rps", "100", "-drain-timeout", "15s", "-exit-when-idle", "0s")
		logs = l
		done <- err
	}()
	for {
		if _, w := e.calls("UpdateEngagementContext"); w["200"] >= 50 {
			break
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case err := <-done:
			t.Fatalf("worker exited early: %v\n%s", err, logs)
		}
	}
	stopAt := time.Now()
	cancel() // what SIGTERM does through signal.NotifyContext
	if err := <-done; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}
	if took := time.Since(stopAt); took > 15*time.Second+3*time.Second {
		t.Errorf("shutdown took %v, want within the 15 s drain timeout and the final flush", took)
	}
	applied := e.stack.Sim.Stats().Calls["UpdateEngagementContext"]["200"]
	t.Logf("stopped after %d of %d jobs in %v", applied, len(bodies), time.Since(stopAt))
	// Everything not applied must be back on the queue, visible now: a
	// second run picks it all up at once.
	if err, l := e.runWorker(context.Background(), "-write-rps", "20", "-read-rps", "100"); err != nil {
		t.Fatalf("second worker: %v\n%s", err, l)
	}
	for _, id := range ids {
		for c := 1; c <= 5; c++ {
			if got, writes := e.title(id, fmt.Sprint(c)); got != "v1" || writes != 1 {
				t.Errorf("%s/%d: got %q after %d writes, want v1 written exactly once", id, c, got, writes)
			}
		}
	}
}

func TestE2EEnqueueThenRunWithMetrics(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("i", 10, 1)
	var lines []string
	for _, id := range ids {
		lines = append(lines, e.body(job{eng: id, ctx: "1", title: "from file"}))
	}
	lines = append(lines, `{"Catalog":"Sandbox"}`, "not json")
	file := filepath.Join(t.TempDir(), "jobs.jsonl")
	writeFileT(t, file, strings.Join(lines, "\n")+"\n")

	var out, errOut syncBuffer
	err := run(context.Background(), []string{"enqueue", file}, func(k string) string { return e.env[k] }, strings.NewReader(""), &out, &errOut)
	if code := exitCode(err, &errOut); code != 1 {
		t.Errorf("enqueue exit: got %d, want 1 (two lines invalid)", code)
	}
	if want := "12 jobs, 10 sent, 2 invalid, 0 failed"; !strings.Contains(errOut.String(), want) {
		t.Errorf("enqueue summary: got %q, want %q", errOut.String(), want)
	}
	if !strings.Contains(out.String(), file+":11: EngagementIdentifier: is required") {
		t.Errorf("enqueue report: got %q, want the invalid line named", out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"run", "-metrics-addr", "127.0.0.1:0", "-log-format", "text", "-write-rps", "100"},
			func(k string) string { return e.env[k] }, strings.NewReader(""), &logs, &logs)
	}()
	addr := waitFor(t, 10*time.Second, func() (string, bool) {
		m := regexp.MustCompile(`serving health and metrics" addr=(\S+)`).FindStringSubmatch(logs.String())
		if m == nil {
			return "", false
		}
		return m[1], true
	})
	metricsText := waitFor(t, 30*time.Second, func() (string, bool) {
		body, status := httpGet(t, "http://"+addr+"/metrics")
		return body, status == 200 && regexp.MustCompile(`pcsync_jobs_total\{outcome="applied",queue="[^"]+"\} 10\b`).MatchString(body)
	})
	for _, want := range []string{
		`pcsync_messages_received_total 10`,
		`pcsync_api_requests_total{code="OK",operation="UpdateEngagementContext"} 10`,
		`pcsync_rate_ceiling_per_second{class="write"} 100`,
		`pcsync_circuit_state{state="closed"} 1`,
		`pcsync_write_budget_remaining 9990`,
		`go_goroutines`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics: no line %q", want)
		}
	}
	if body, status := httpGet(t, "http://"+addr+"/readyz"); status != 200 {
		t.Errorf("/readyz: got %d %q, want 200", status, body)
	}
	if _, status := httpGet(t, "http://"+addr+"/healthz"); status != 200 {
		t.Errorf("/healthz: got %d, want 200", status)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("worker: %v\n%s", err, logs.String())
	}
	for _, id := range ids {
		if got, _ := e.title(id, "1"); got != "from file" {
			t.Errorf("%s: got %q, want the job from the file", id, got)
		}
	}
	// No personal data in the logs: the jobs' company names are "Acme <id>".
	if strings.Contains(logs.String(), "Acme") {
		t.Errorf("logs carry a company name from a job:\n%s", logs.String())
	}
}

func writeFileT(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond every 20 ms until it holds or the deadline passes.
func waitFor[T any](t *testing.T, limit time.Duration, cond func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(limit)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if v, ok := cond(); ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		<-tick.C
	}
}

func httpGet(t *testing.T, url string) (string, int) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return err.Error(), 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b), resp.StatusCode
}

func TestE2EDeadLetterListAndRedrive(t *testing.T) {
	e := newE2E(t, pcsim.Options{WriteRPS: 100, WriteBurst: 100, ReadRPS: 100, ReadBurst: 100})
	ids := e.addEngagements("j", 5, 1)
	var bodies []string
	for _, id := range ids {
		bodies = append(bodies, e.body(job{eng: id, ctx: "1", title: "v1"}))
	}
	missing := []string{"eng-jmissing000001", "eng-jmissing000002", "eng-jmissing000003"}
	for _, id := range missing {
		bodies = append(bodies, e.body(job{eng: id, ctx: "1", title: "late"}))
	}
	bodies = append(bodies, `{"Catalog":"Sandbox"}`, "not json")
	e.enqueue(bodies...)
	if err, logs := e.runWorker(context.Background(), "-write-rps", "100", "-read-rps", "100"); err != nil {
		t.Fatalf("worker: %v\n%s", err, logs)
	}

	cmd := func(args ...string) (int, string, string) {
		var out, errOut syncBuffer
		err := run(context.Background(), args, func(k string) string { return e.env[k] }, strings.NewReader(""), &out, &errOut)
		return exitCode(err, &errOut), out.String(), errOut.String()
	}
	// The list shows every dead letter with its class and reason, and
	// consumes nothing: a second listing sees the same.
	for range 2 {
		code, out, errOut := cmd("dlq", "-format", "json")
		if code != 0 {
			t.Fatalf("dlq: exit %d: %s", code, errOut)
		}
		classes := map[string]int{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r dlqJSON
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("dlq json line %q: %v", line, err)
			}
			if r.Reason == "" {
				t.Errorf("dead letter %s has no reason", r.MessageID)
			}
			classes[r.Class]++
		}
		if classes["not_found"] != 3 || classes["invalid_job"] != 2 {
			t.Errorf("dlq classes: got %v, want 3 not_found and 2 invalid_job", classes)
		}
		if !strings.Contains(errOut, "5 messages in") {
			t.Errorf("dlq summary: got %q", errOut)
		}
	}
	if code, out, _ := cmd("dlq"); code != 0 || !strings.Contains(out, "not_found") || !strings.Contains(out, "eng-jmissing000001") {
		t.Errorf("dlq table: exit %d, got\n%s", code, out)
	}

	// The engagements now exist: move only the not_found jobs back.
	for _, id := range missing {
		if err := e.stack.Sim.AddEngagement(pcsim.NewEngagement{Id: id, Catalog: "Sandbox", Contexts: []pcsim.NewContext{{Id: "1", Type: types.EngagementContextTypeCustomerProject}}}); err != nil {
			t.Fatal(err)
		}
	}
	if code, _, errOut := cmd("redrive", "-class", "not_found", "-dry-run"); code != 0 || !strings.Contains(errOut, "5 dead letters scanned, 3 matched, 3 would move, 0 failed") {
		t.Errorf("dry run: exit %d, %q", code, errOut)
	}
	if code, _, errOut := cmd("redrive", "-class", "not_found", "-rate", "50"); code != 0 || !strings.Contains(errOut, "3 matched, 3 moved, 0 failed") {
		t.Errorf("redrive: exit %d, %q", code, errOut)
	}
	if code, out, _ := cmd("dlq", "-format", "json"); code != 0 || strings.Count(out, "\n") != 2 || strings.Contains(out, "not_found") {
		t.Errorf("after the redrive the DLQ should hold the 2 invalid jobs only; got\n%s", out)
	}
	if err, logs := e.runWorker(context.Background(), "-write-rps", "100", "-read-rps", "100"); err != nil {
		t.Fatalf("second worker: %v\n%s", err, logs)
	}
	for _, id := range missing {
		if got, _ := e.title(id, "1"); got != "late" {
			t.Errorf("%s: got %q, want the redriven job applied", id, got)
		}
	}
}

func TestE2EEnqueueCSVResumes(t *testing.T) {
	e := newE2E(t, pcsim.Options{})
	var rows []string
	rows = append(rows, "catalog,engagement_id,context_id,type,industry,company_name,website_url,country_code,project_title,business_problem,target_completion_date")
	for i := range 25 {
		rows = append(rows, fmt.Sprintf("Sandbox,eng-k%013d,1,CustomerProject,Retail,Shop %d,https://shop%d.example,FR,Storefront,Needs a storefront that scales for sales,2027-01-31", i, i, i))
	}
	file := filepath.Join(t.TempDir(), "nightly.csv")
	writeFileT(t, file, strings.Join(rows, "\n")+"\n")
	cp := filepath.Join(t.TempDir(), "nightly.checkpoint")
	cmd := func(args ...string) (int, string) {
		var out, errOut syncBuffer
		err := run(context.Background(), args, func(k string) string { return e.env[k] }, strings.NewReader(""), &out, &errOut)
		return exitCode(err, &errOut), errOut.String()
	}
	if code, errOut := cmd("enqueue", "-checkpoint", cp, file); code != 0 || !strings.Contains(errOut, "25 jobs, 25 sent, 0 invalid, 0 failed") {
		t.Fatalf("first run: exit %d, %q", code, errOut)
	}
	if b, _ := os.ReadFile(cp); strings.TrimSpace(string(b)) != "25" {
		t.Errorf("checkpoint: got %q, want 25", b)
	}
	// Run again: everything is behind the checkpoint.
	if code, errOut := cmd("enqueue", "-checkpoint", cp, file); code != 0 || !strings.Contains(errOut, "0 jobs, 0 sent, 0 invalid, 0 failed (25 skipped)") {
		t.Errorf("resumed run: exit %d, %q", code, errOut)
	}
	if code, errOut := cmd("enqueue", "-skip", "20", file); code != 0 || !strings.Contains(errOut, "5 jobs, 5 sent, 0 invalid, 0 failed (20 skipped)") {
		t.Errorf("-skip 20: exit %d, %q", code, errOut)
	}
	if n := len(e.drain(e.stack.QueueURL)); n != 30 {
		t.Errorf("queue: got %d messages, want 30", n)
	}
}

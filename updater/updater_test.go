package updater

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/retry"
)

// fakeAPI is a small in-memory Partner Central for unit tests: one
// engagement, a ModifiedAt counter, and scripted errors.
type fakeAPI struct {
	mu       sync.Mutex
	modified int
	contexts map[string]json.RawMessage // context id -> GetEngagement payload
	writes   []string                   // titles written, in order
	reads    int
	script   []error // errors returned by the next UpdateEngagementContext calls
	// applyThenFail applies the next write, then fails it (a lost response).
	applyThenFail bool
	// denied contexts answer AccessDeniedException to every write.
	denied map[string]bool
}

func newFakeAPI() *fakeAPI { return &fakeAPI{modified: 1, contexts: map[string]json.RawMessage{}} }

func (f *fakeAPI) ts() string { return fmt.Sprintf("2026-11-26T06:00:00.%06dZ", f.modified) }

func (f *fakeAPI) UpdateEngagementContext(_ context.Context, in *partnercentral.UpdateEngagementContextInput, _ ...func(*partnercentral.Options)) (*partnercentral.UpdateEngagementContextOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.script) > 0 {
		err := f.script[0]
		f.script = f.script[1:]
		if err != nil {
			return nil, err
		}
	}
	if f.denied[aws.ToString(in.ContextIdentifier)] {
		return nil, apiError(403, &types.AccessDeniedException{Message: aws.String("not allowed")})
	}
	if aws.ToString(in.EngagementLastModifiedAt) != f.ts() {
		return nil, apiError(409, &types.ConflictException{Message: aws.String("stale")})
	}
	cp := in.Payload.(*types.UpdateEngagementContextPayloadMemberCustomerProject)
	b, _ := json.Marshal(map[string]any{"CustomerProject": cp.Value})
	f.contexts[aws.ToString(in.ContextIdentifier)] = b
	f.writes = append(f.writes, aws.ToString(cp.Value.Project.Title))
	f.modified++
	if f.applyThenFail {
		f.applyThenFail = false
		return nil, &smithy.OperationError{Err: &smithyhttp.RequestSendError{Err: io.ErrUnexpectedEOF}}
	}
	return &partnercentral.UpdateEngagementContextOutput{EngagementLastModifiedAt: aws.String(f.ts())}, nil
}

func (f *fakeAPI) GetEngagement(_ context.Context, in *partnercentral.GetEngagementInput, _ ...func(*partnercentral.Options)) (*partnercentral.GetEngagementOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	out := &partnercentral.GetEngagementOutput{Id: in.Identifier, ModifiedAt: aws.String(f.ts())}
	for id, p := range f.contexts {
		var d types.EngagementContextDetails
		raw, _ := json.Marshal(map[string]any{"Id": id, "Type": "CustomerProject", "Payload": p})
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, err
		}
		out.Contexts = append(out.Contexts, d)
	}
	return out, nil
}

// bump is an outside write.
func (f *fakeAPI) bump() { f.mu.Lock(); f.modified++; f.mu.Unlock() }

func apiError(status int, err error) error {
	resp := &http.Response{StatusCode: status, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(""))}
	return &smithy.OperationError{Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err}}}
}

type recorder struct {
	NopObserver
	mu       sync.Mutex
	outcomes map[string]int
	sentBack map[string]int // by "queue reason"
}

func (r *recorder) SentBack(queue, reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sentBack == nil {
		r.sentBack = map[string]int{}
	}
	r.sentBack[queue+" "+reason]++
}

func (r *recorder) JobDone(_, outcome string, _, _ time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outcomes == nil {
		r.outcomes = map[string]int{}
	}
	r.outcomes[outcome]++
}

// newTestUpdater makes an updater with fast retries on api; change, if
// given, adjusts its Config first.
func newTestUpdater(t *testing.T, api API, change ...func(*Config)) (*Updater, *recorder) {
	t.Helper()
	rec := &recorder{}
	p := retry.DefaultPolicy()
	p.InitialBackoff = time.Millisecond
	p.MaxBackoff = 5 * time.Millisecond
	p.AttemptBudget = time.Second
	cfg := Config{
		Policy:   p,
		Writes:   retry.NewLimiter(retry.LimiterConfig{Ceiling: 10000}),
		Reads:    retry.NewLimiter(retry.LimiterConfig{Ceiling: 10000}),
		Circuit:  retry.NewCircuit(retry.CircuitConfig{MinCooldown: time.Millisecond}),
		Observer: rec,
	}
	for _, fn := range change {
		fn(&cfg)
	}
	u, err := New(api, NewDecoder(schema.New()), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return u, rec
}

func jobMessage(t *testing.T, u *Updater, id, ctxID, title string, source time.Time, ts string) Delivery {
	t.Helper()
	body := map[string]any{
		"Catalog": "Sandbox", "EngagementIdentifier": "eng-abcdefghij1234", "ContextIdentifier": ctxID, "Type": "CustomerProject",
		"Payload": map[string]any{"CustomerProject": map[string]any{
			"Customer": map[string]any{"Industry": "Other", "CompanyName": "Acme", "WebsiteUrl": "acme.example", "CountryCode": "US"},
			"Project":  map[string]any{"Title": title, "BusinessProblem": "Needs to migrate 40 VMs to AWS", "TargetCompletionDate": "2026-12-31"},
		}},
	}
	if !source.IsZero() {
		body["SourceUpdatedAt"] = source.Format(time.RFC3339)
	}
	if ts != "" {
		body["EngagementLastModifiedAt"] = ts
	}
	b, _ := json.Marshal(body)
	m := Delivery{ID: id, Body: string(b), ReceiveCount: 1, SentAt: time.Now(), Queue: "pcsync-bulk"}
	if key := LaneKey(m.Body); key != "Sandbox/eng-abcdefghij1234" {
		t.Fatalf("Key: got %q, want Sandbox/eng-abcdefghij1234", key)
	}
	return m
}

func TestCoalescesToNewestPerContext(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	batch := []Delivery{
		jobMessage(t, u, "m1", "1", "v2", base.Add(2*time.Minute), ""),
		jobMessage(t, u, "m2", "1", "v3", base.Add(3*time.Minute), ""),
		jobMessage(t, u, "m3", "2", "w1", base.Add(time.Minute), ""),
		jobMessage(t, u, "m4", "1", "v1", base.Add(time.Minute), ""),
	}
	outs := u.Apply(context.Background(), batch)
	for i, o := range outs {
		if !acked(o) {
			t.Errorf("message %d: got %v, want ack", i+1, o)
		}
	}
	if got := strings.Join(api.writes, ","); got != "v3,w1" {
		t.Errorf("writes: got %s, want v3,w1 (only the newest of context 1)", got)
	}
	if rec.outcomes[OutcomeCoalesced] != 2 || rec.outcomes[OutcomeApplied] != 2 {
		t.Errorf("outcomes: got %v, want 2 applied and 2 coalesced", rec.outcomes)
	}
	// One read to learn the timestamp, then the cached one for the second write.
	if api.reads != 1 {
		t.Errorf("reads: got %d, want 1", api.reads)
	}
}

func TestStaleJobIsNeverWritten(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "new", "1", "v2", base.Add(2*time.Minute), "")})
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "old", "1", "v1", base.Add(time.Minute), "")})
	if !acked(outs[0]) || rec.outcomes[OutcomeStale] != 1 {
		t.Errorf("older job after a newer one: got %v with outcomes %v, want ack as stale", outs[0], rec.outcomes)
	}
	if got := strings.Join(api.writes, ","); got != "v2" {
		t.Errorf("writes: got %s, want only v2", got)
	}
	// A job without SourceUpdatedAt cannot be judged stale: it is applied.
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "undated", "1", "v0", time.Time{}, "")})
	if got := strings.Join(api.writes, ","); got != "v2,v0" {
		t.Errorf("writes: got %s, want v2,v0", got)
	}
}

func TestConflictIsHealedWithFreshTimestamp(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	stale := api.ts()
	api.bump() // someone else wrote since the job's timestamp
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, stale)})
	if !acked(outs[0]) || rec.outcomes[OutcomeApplied] != 1 {
		t.Fatalf("got %v, %v; want applied", outs[0], rec.outcomes)
	}
	if api.reads != 1 || len(api.writes) != 1 {
		t.Errorf("calls: got %d reads and %d writes, want 1 and 1 (a 409, a read, the write)", api.reads, len(api.writes))
	}
}

func TestConflictRetriesAreBounded(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	conflict := apiError(409, &types.ConflictException{})
	for range 20 {
		api.script = append(api.script, conflict)
	}
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, api.ts())})
	if outs[0].Outcome != OutcomeRetried || rec.outcomes[OutcomeRetried] != 1 {
		t.Errorf("an engagement that never settles: got %v, %v; want retry later", outs[0], rec.outcomes)
	}
	if want := map[string]int{"pcsync-bulk " + SendBackConflicts: 1}; !maps.Equal(rec.sentBack, want) {
		t.Errorf("sent back: got %v, want %v", rec.sentBack, want)
	}
	if d := outs[0].Delay; d < 20*time.Second || d > 40*time.Second {
		t.Errorf("retry delay: got %v, want about 30 s on a first delivery", d)
	}
}

func TestLostResponseSettledByRead(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	api.applyThenFail = true
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, api.ts())})
	if !acked(outs[0]) || rec.outcomes[OutcomeAlreadyApplied] != 1 {
		t.Fatalf("got %v, %v; want ack as already applied", outs[0], rec.outcomes)
	}
	if len(api.writes) != 1 {
		t.Errorf("writes: got %d, want 1 (no second write)", len(api.writes))
	}
}

func TestErrorFates(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantKind  string
		wantClass string
	}{
		{"validation", apiError(400, &types.ValidationException{Message: aws.String("bad"), ErrorList: []types.ValidationExceptionError{{FieldName: aws.String("Type"), Message: aws.String("mismatch")}}}), OutcomeDeadLettered, ClassRejected},
		{"not found", apiError(404, &types.ResourceNotFoundException{Message: aws.String("gone")}), OutcomeDeadLettered, ClassNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := newFakeAPI()
			u, _ := newTestUpdater(t, api)
			api.script = []error{tt.err}
			outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, api.ts())})
			if outs[0].Outcome != tt.wantKind || outs[0].Class != tt.wantClass || outs[0].Reason == "" {
				t.Errorf("got %v (class %q, reason %q), want %v of class %q with a reason", outs[0], outs[0].Class, outs[0].Reason, tt.wantKind, tt.wantClass)
			}
		})
	}
}

func TestTransientErrorsRetryThenRequeue(t *testing.T) {
	api := newFakeAPI()
	u, _ := newTestUpdater(t, api)
	internal := apiError(500, &types.InternalServerException{})
	api.script = []error{internal, internal}
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, api.ts())})
	if !acked(outs[0]) || len(api.writes) != 1 {
		t.Fatalf("two 500s then success: got %v after %d writes, want applied", outs[0], len(api.writes))
	}
	api2 := newFakeAPI()
	u2, rec := newTestUpdater(t, api2)
	for range 1000 {
		api2.script = append(api2.script, internal)
	}
	outs = u2.Apply(context.Background(), []Delivery{jobMessage(t, u2, "m", "1", "v1", time.Time{}, api2.ts())})
	if outs[0].Outcome != OutcomeRetried || outs[0].Class != SendBackFailing {
		t.Errorf("500s for the whole budget: got %v (class %q), want retry later, class %q", outs[0], outs[0].Class, SendBackFailing)
	}
	if want := map[string]int{"pcsync-bulk " + SendBackFailing: 1}; !maps.Equal(rec.sentBack, want) {
		t.Errorf("sent back: got %v, want %v", rec.sentBack, want)
	}
}

func TestInvalidJobIsDeadLettered(t *testing.T) {
	u, _ := newTestUpdater(t, newFakeAPI())
	m := Delivery{ID: "bad", Body: `{"Catalog":"Sandbox"}`}
	if key := LaneKey(m.Body); key != "" {
		t.Errorf("Key of an invalid job: got %q, want a lane of its own", key)
	}
	outs := u.Apply(context.Background(), []Delivery{m})
	if outs[0].Outcome != OutcomeDeadLettered || outs[0].Class != ClassInvalidJob || !strings.Contains(outs[0].Reason, "EngagementIdentifier: is required") {
		t.Errorf("got %v (%s: %s), want a dead letter naming the missing field", outs[0], outs[0].Class, outs[0].Reason)
	}
}

func TestShutdownAbandons(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	api.script = []error{apiError(500, &types.InternalServerException{})}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outs := u.Apply(ctx, []Delivery{jobMessage(t, u, "m", "1", "v1", time.Time{}, api.ts())})
	if outs[0].Outcome != OutcomeAbandoned || rec.outcomes[OutcomeAbandoned] != 1 {
		t.Errorf("got %v, %v; want abandoned (the message reappears)", outs[0], rec.outcomes)
	}
}

func TestEngagementKey(t *testing.T) {
	for in, want := range map[string]string{
		"eng-abcdefghij1234": "Sandbox/eng-abcdefghij1234",
		"arn:aws:partnercentral:us-east-1::catalog/Sandbox/engagement/eng-abcdefghij1234": "Sandbox/eng-abcdefghij1234",
	} {
		got := EngagementKey(&partnercentral.UpdateEngagementContextInput{Catalog: aws.String("Sandbox"), EngagementIdentifier: aws.String(in)})
		if got != want {
			t.Errorf("EngagementKey(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestBoundedMapForgetsOldest(t *testing.T) {
	m := newBoundedMap[int](2)
	m.put("a", 1)
	m.put("b", 2)
	m.put("a", 3) // a is now the most recent
	m.put("c", 4)
	if _, ok := m.get("b"); ok {
		t.Error("b: still remembered, want forgotten as the least recently written")
	}
	if v, _ := m.get("a"); v != 3 || m.len() != 2 {
		t.Errorf("got a=%d, len %d; want a=3, len 2", v, m.len())
	}
}

func TestAccessDeniedForOneJobDoesNotStallOthers(t *testing.T) {
	api := newFakeAPI()
	api.denied = map[string]bool{"9": true}
	u, rec := newTestUpdater(t, api)
	bad := jobMessage(t, u, "bad", "9", "x", time.Time{}, "")
	good := jobMessage(t, u, "good", "1", "v1", time.Time{}, "")
	results := make(chan []Verdict, 2)
	go func() { results <- u.Apply(context.Background(), []Delivery{bad}) }()
	// The good job arrives while the circuit is open because of the bad one.
	tick := time.NewTicker(time.Millisecond)
	for u.circuit.State() != retry.Open {
		<-tick.C
	}
	tick.Stop()
	go func() { results <- u.Apply(context.Background(), []Delivery{good}) }()
	var kinds []string
	for range 2 {
		o := <-results
		kinds = append(kinds, o[0].Outcome)
		if o[0].Outcome == OutcomeDeadLettered && o[0].Class != ClassDenied {
			t.Errorf("dead letter class: got %q, want %q", o[0].Class, ClassDenied)
		}
	}
	if rec.outcomes[OutcomeApplied] != 1 || rec.outcomes[OutcomeDeadLettered] != 1 {
		t.Errorf("outcomes: got %v (%v), want the good job applied and the denied one dead-lettered", rec.outcomes, kinds)
	}
}

func TestRedeliveryIsNotWrittenAgain(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	m := jobMessage(t, u, "m", "1", "v1", time.Time{}, "")
	u.Apply(context.Background(), []Delivery{m})
	// The same message again (its delete was lost): acknowledged, no call.
	again := m
	again.ReceiveCount = 2
	outs := u.Apply(context.Background(), []Delivery{again})
	if !acked(outs[0]) || len(api.writes) != 1 {
		t.Errorf("same message again: got %v after %d writes, want ack with 1 write", outs[0], len(api.writes))
	}
	// A fresh worker (restart) gets it redelivered: it reads first and
	// finds it applied.
	u2, rec2 := newTestUpdater(t, api)
	again2 := m
	again2.ReceiveCount = 2
	outs = u2.Apply(context.Background(), []Delivery{again2})
	if !acked(outs[0]) || len(api.writes) != 1 || rec2.outcomes[OutcomeAlreadyApplied] != 1 {
		t.Errorf("redelivered to a restarted worker: got %v after %d writes (%v), want already applied with 1 write", outs[0], len(api.writes), rec2.outcomes)
	}
	_ = rec
}

func TestFutureSourceTimestampIsRejected(t *testing.T) {
	api := newFakeAPI()
	u, _ := newTestUpdater(t, api)
	outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "m", "1", "v1", time.Now().Add(3*time.Hour), "")})
	if outs[0].Outcome != OutcomeDeadLettered || !strings.Contains(outs[0].Reason, "in the future") || len(api.writes) != 0 {
		t.Errorf("got %v (%s), want a dead letter saying SourceUpdatedAt is in the future", outs[0], outs[0].Reason)
	}
}

func TestUndatedJobIsNotSweptAsStale(t *testing.T) {
	api := newFakeAPI()
	u, rec := newTestUpdater(t, api)
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "new", "1", "v2", base.Add(2*time.Minute), "")})
	outs := u.Apply(context.Background(), []Delivery{
		jobMessage(t, u, "hook", "1", "from a webhook", time.Time{}, ""),
		jobMessage(t, u, "old", "1", "v1", base.Add(time.Minute), ""),
	})
	if got := strings.Join(api.writes, ","); got != "v2,from a webhook" || rec.outcomes[OutcomeStale] != 1 {
		t.Errorf("writes %s, outcomes %v (%v, %v): want the undated job applied and only the dated old one stale", got, rec.outcomes, outs[0], outs[1])
	}
}

// TestVersionsKeepNewestAcrossRestarts: an updater given the versions of
// the one it replaced (a durable store, here the memory one handed over)
// never writes an older version over the newer one that one set out to
// write.
func TestVersionsKeepNewestAcrossRestarts(t *testing.T) {
	api := newFakeAPI()
	versions := newMemoryVersions(10)
	newU := func() *Updater {
		u, err := New(api, NewDecoder(schema.New()), Config{Policy: retry.DefaultPolicy(), Versions: versions,
			Writes: retry.NewLimiter(retry.LimiterConfig{Ceiling: 1000}), Reads: retry.NewLimiter(retry.LimiterConfig{Ceiling: 1000})})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	u := newU()
	u.Apply(context.Background(), []Delivery{jobMessage(t, u, "v4", "1", "v4", base.Add(4*time.Minute), "")})
	// The process dies here; v3's message was never acknowledged.
	u2 := newU()
	outs := u2.Apply(context.Background(), []Delivery{jobMessage(t, u2, "v3", "1", "v3", base.Add(3*time.Minute), "")})
	if !acked(outs[0]) || strings.Join(api.writes, ",") != "v4" {
		t.Errorf("older version after a restart: got %v with writes %v, want it acknowledged as stale and v4 kept", outs[0], api.writes)
	}
	// A newer version still goes through.
	u2.Apply(context.Background(), []Delivery{jobMessage(t, u2, "v5", "1", "v5", base.Add(5*time.Minute), "")})
	if got := strings.Join(api.writes, ","); got != "v4,v5" {
		t.Errorf("writes: got %s, want v4,v5", got)
	}
}

// failingVersions is a store that cannot be read or written.
type failingVersions struct{ readFails bool }

func (f failingVersions) Intended(context.Context, string) (time.Time, bool, error) {
	if f.readFails {
		return time.Time{}, false, errors.New("disk gone")
	}
	return time.Time{}, false, nil
}

func (failingVersions) Intend(context.Context, string, time.Time) error {
	return errors.New("disk full")
}

// TestNoWriteEscapesTheVersions: when the store cannot say or record the
// newest version, the job is not written; it goes back to the queue.
func TestNoWriteEscapesTheVersions(t *testing.T) {
	for _, readFails := range []bool{false, true} {
		t.Run(fmt.Sprintf("read fails %v", readFails), func(t *testing.T) {
			api := newFakeAPI()
			u, err := New(api, NewDecoder(schema.New()), Config{Policy: retry.DefaultPolicy(), Versions: failingVersions{readFails: readFails},
				Writes: retry.NewLimiter(retry.LimiterConfig{Ceiling: 1000}), Reads: retry.NewLimiter(retry.LimiterConfig{Ceiling: 1000})})
			if err != nil {
				t.Fatal(err)
			}
			base := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
			outs := u.Apply(context.Background(), []Delivery{jobMessage(t, u, "v1", "1", "v1", base, "")})
			if outs[0].Outcome != OutcomeRetried || len(api.writes) != 0 {
				t.Errorf("got %v with writes %v, want the job sent back and nothing written", outs[0], api.writes)
			}
		})
	}
}

// acked says whether the queue deletes a message after this verdict: the
// job is done and not dead-lettered.
func acked(v Verdict) bool {
	return Final(v.Outcome) && v.Outcome != OutcomeDeadLettered
}

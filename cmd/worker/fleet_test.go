package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pcsync/pcsync/partnercentral/pcsim"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// writeLog records, from the simulator, every successful write in the
// order each engagement received them.
type writeLog struct {
	mu     sync.Mutex
	titles map[string][]string // CustomerProject contexts: the titles written, in order
	leads  map[string]int      // Lead contexts: writes
}

func newWriteLog() *writeLog {
	return &writeLog{titles: map[string][]string{}, leads: map[string]int{}}
}

func (w *writeLog) record(eng, ctxID string, payload json.RawMessage) {
	var p struct {
		CustomerProject *struct{ Project struct{ Title string } }
	}
	_ = json.Unmarshal(payload, &p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if p.CustomerProject != nil {
		k := eng + "/" + ctxID
		w.titles[k] = append(w.titles[k], p.CustomerProject.Project.Title)
	} else {
		w.leads[eng+"/"+ctxID]++
	}
}

// olderOverNewer counts the writes of a version older than one written to
// the same context before it (titles v1 < v2 < ...), and the writes of a
// version written before (duplicates).
func (w *writeLog) olderOverNewer() (older, again int, example string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for k, ts := range w.titles {
		best := 0
		for _, title := range ts {
			v, _ := strconv.Atoi(strings.TrimPrefix(title, "v"))
			switch {
			case v < best:
				older++
				example = fmt.Sprintf("%s: writes %v", k, ts)
			case v == best:
				again++
			default:
				best = v
			}
		}
	}
	return older, again, example
}

// leadBody is a Lead job for context "1" of eng, appending one
// interaction, with no SourceUpdatedAt (a CRM event, as webhooks send it).
func leadBody(eng string) string {
	return fmt.Sprintf(`{"Catalog":"Sandbox","EngagementIdentifier":%q,"ContextIdentifier":"1","Type":"Lead","Payload":{"Lead":{"Customer":{"CompanyName":"Acme %s","Address":{"CountryCode":"US"}},"Interaction":{"SourceType":"Web","SourceId":"form-%s","SourceName":"Website","CustomerAction":"Asked for a demo","Contact":{"BusinessTitle":"CTO","Email":"cto@acme.example","FirstName":"Ada","LastName":"Byron"}}}}}`, eng, eng, eng)
}

// TestReliabilityFleetOnStateTable is the fleet's crash test: three worker
// processes on one standard queue share a state table (-state-table, in
// the local stack's DynamoDB) and nothing else. Shuffled versions of every
// context, and every Lead job sent three times as three messages; the
// replicas are SIGKILLed one after another and restarted with no state of
// their own (as a pod rescheduled without its volume). No older version
// may ever be written over a newer one, and no interaction appended twice.
func TestReliabilityFleetOnStateTable(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts worker processes; skipped with -short")
	}
	log := newWriteLog()
	e := newE2E(t, pcsim.Options{WriteRPS: 600, WriteBurst: 600, ReadRPS: 600, ReadBurst: 600, OnWrite: log.record})
	e.setVisibility(4)
	bin := buildWorker(t)
	ids := e.addEngagements("f", 150, 4)
	bodies := e.versionsFor(ids, 4, 4, 21)
	var leads []string
	for i := range 60 {
		id := fmt.Sprintf("eng-fl%012d", i)
		if err := e.stack.Sim.AddEngagement(pcsim.NewEngagement{Id: id, Catalog: "Sandbox", Contexts: []pcsim.NewContext{{Id: "1", Type: types.EngagementContextTypeLead}}}); err != nil {
			t.Fatal(err)
		}
		leads = append(leads, id)
		for range 3 {
			bodies = append(bodies, leadBody(id))
		}
	}
	rng := rand.New(rand.NewPCG(21, 22))
	rng.Shuffle(len(bodies), func(i, j int) { bodies[i], bodies[j] = bodies[j], bodies[i] })
	e.enqueue(bodies...)

	env := append(e.processEnv(), "PCSYNC_STATE_TABLE="+e.stack.StateTable)
	// Every replica runs until the queue has been idle for 25 s: longer
	// than the visibility timeout of what a killed one held, and than
	// the emulator's 20-second long poll, which a message becoming
	// visible again does not wake.
	start := func() *workerProcess {
		t.Helper()
		cmd := exec.Command(bin, "run", "-metrics-addr", "", "-log-level", "warn", "-workers", "16",
			"-write-rps", "600", "-read-rps", "600", "-exit-when-idle", "25s")
		return startWorker(t, cmd, env)
	}
	writes := func() int { return e.stack.Sim.Stats().Calls["UpdateEngagementContext"]["200"] }
	replicas := []*workerProcess{start(), start(), start()}
	for k, target := range []int{250, 700, 1200} {
		deadline := time.NewTimer(90 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		for writes() < target {
			select {
			case <-replicas[k].exited:
				t.Fatalf("replica %d exited by itself (%v) after %d successful writes, before the kill at %d\n%s",
					k, replicas[k].err, writes(), target, replicas[k].logs.String())
			case <-deadline.C:
				t.Fatalf("%d successful writes within 90s, want %d before kill %d\n%s", writes(), target, k+1, replicas[k].logs.String())
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
		if err := replicas[k].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-replicas[k].exited
		t.Logf("kill %d: replica %d SIGKILLed after %d successful writes; restarted", k+1, k, writes())
		replicas[k] = start()
	}
	for i, w := range replicas {
		<-w.exited
		if w.err != nil {
			t.Errorf("replica %d: %v\n%s", i, w.err, w.logs.String())
		}
	}

	older, again, example := log.olderOverNewer()
	if older > 0 {
		t.Errorf("%d writes of an older version over a newer one, e.g. %s", older, example)
	}
	e.wantTitles(ids, 4, "v4")
	for _, id := range leads {
		st, _ := e.stack.Sim.Engagement(id)
		var p struct {
			Lead struct{ Interactions []json.RawMessage }
		}
		if err := json.Unmarshal(st.Contexts[0].Payload, &p); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if n := len(p.Lead.Interactions); n != 1 {
			t.Errorf("%s: %d interactions, want 1 (one job sent three times)", id, n)
		}
	}
	if rest := e.drain(e.stack.QueueURL); len(rest) != 0 {
		t.Errorf("queue: %d messages left, want none", len(rest))
	}
	if dl := e.drain(e.stack.DLQURL); len(dl) != 0 {
		t.Errorf("DLQ: %d messages, want none", len(dl))
	}
	t.Logf("%d jobs, 3 replicas, 3 kills: %d successful writes (%d of a version written before, from the kills), %d older over newer",
		len(bodies), writes(), again, older)
}

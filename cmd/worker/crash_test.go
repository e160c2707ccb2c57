package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pcsync/pcsync/internal/daemon"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

// buildWorker compiles this command into a temporary binary, so that a
// test can run it as a process of its own and kill it.
func buildWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "worker")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// workerProcess is a worker started by startWorker. exited is closed once
// the process has exited and err holds what Wait returned: unlike
// cmd.ProcessState, which only Wait sets, it tells a test at once that the
// worker is gone.
type workerProcess struct {
	cmd    *exec.Cmd
	logs   *syncBuffer
	exited chan struct{}
	err    error // valid once exited is closed
}

// startWorker starts cmd with env, its output going to the returned
// logs, and one goroutine that waits for it. The test's cleanup kills a
// worker still running, so that a failed test leaves no process behind.
func startWorker(t *testing.T, cmd *exec.Cmd, env []string) *workerProcess {
	t.Helper()
	w := &workerProcess{cmd: cmd, logs: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Env, cmd.Stdout, cmd.Stderr = env, w.logs, w.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		w.err = cmd.Wait()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			cmd.Process.Kill()
			<-w.exited
		}
	})
	return w
}

func TestReliabilityCrashAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a worker process; skipped with -short")
	}
	e := newE2E(t, pcsim.Options{WriteRPS: 800, WriteBurst: 800, ReadRPS: 800, ReadBurst: 800})
	// A short visibility timeout, so that what a killed worker held comes
	// back within the test.
	e.setVisibility(4)
	bin := buildWorker(t)
	ids := e.addEngagements("m", 500, 5)
	bodies := e.versionsFor(ids, 5, 4, 3)
	rng := rand.New(rand.NewPCG(5, 6)) // where the kills fall
	e.enqueue(bodies...)

	// The worker runs with its default state: the file named after the
	// queue in $XDG_STATE_HOME/pcsync, which e.env points into the test's
	// directory.
	env := e.processEnv()
	start := func(idle string) *workerProcess {
		t.Helper()
		cmd := exec.Command(bin, "run", "-metrics-addr", "", "-log-level", "warn", "-workers", "32",
			"-write-rps", "800", "-read-rps", "800", "-exit-when-idle", idle)
		return startWorker(t, cmd, env)
	}
	writes := func() int { return e.stack.Sim.Stats().Calls["UpdateEngagementContext"]["200"] }

	const kills = 3
	for k := range kills {
		w := start("0s")
		// Kill at a random point while it works. A worker that exits on
		// its own first fails the test at once, with its logs.
		target := writes() + 300 + rng.IntN(1200)
		deadline := time.NewTimer(60 * time.Second)
		tick := time.NewTicker(20 * time.Millisecond)
		for writes() < target {
			select {
			case <-w.exited:
				t.Fatalf("run %d: worker exited by itself (%v) after %d successful writes, before the kill at %d\n%s",
					k+1, w.err, writes(), target, w.logs.String())
			case <-deadline.C:
				t.Fatalf("run %d: %d successful writes within 60s, want %d before the kill\n%s", k+1, writes(), target, w.logs.String())
			case <-tick.C:
			}
		}
		deadline.Stop()
		tick.Stop()
		if err := w.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatalf("kill %d: %v\n%s", k+1, err, w.logs.String())
		}
		<-w.exited
		t.Logf("kill %d: SIGKILL after %d successful writes", k+1, writes())
	}
	// The last run goes to the end: it must outlast the visibility timeout
	// of what the killed workers held, and the emulator's 20-second long
	// poll, which a message becoming visible again does not wake.
	w := start("25s")
	<-w.exited
	if w.err != nil {
		t.Fatalf("final worker: %v\n%s", w.err, w.logs.String())
	}
	stateFile := filepath.Join(e.env["XDG_STATE_HOME"], "pcsync", daemon.StateFileName([]string{path.Base(e.stack.QueueURL)}))
	if _, err := os.Stat(stateFile); err != nil {
		t.Errorf("state file: %v, want it in the default place", err)
	}
	e.wantTitles(ids, 5, "v4")
	if rest := e.drain(e.stack.QueueURL); len(rest) != 0 {
		t.Errorf("queue: %d messages left, want none", len(rest))
	}
	if dl := e.drain(e.stack.DLQURL); len(dl) != 0 {
		t.Errorf("DLQ: %d messages, want none", len(dl))
	}
	// Each context needs at most 4 writes (one per version, when versions
	// arrive oldest first); anything beyond is a duplicate, bounded by what
	// the killed workers held (max-held 2x32+10x4 each).
	total := writes()
	needed := len(ids) * 5 * 4
	t.Logf("%d jobs, %d kills: %d successful writes (at most %d needed without coalescing); all contexts at the newest version, queue and DLQ empty",
		len(bodies), kills, total, needed)
	if limit := needed + kills*(2*32+10*4); total > limit {
		t.Errorf("writes: got %d, want at most %d", total, limit)
	}
}

// processEnv is the environment of a worker process on the test's stack:
// the test's own, with e.env, and no PCSYNC_ setting of the developer's
// environment.
func (e *e2e) processEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PCSYNC_") {
			env = append(env, kv)
		}
	}
	for k, v := range e.env {
		env = append(env, k+"="+v)
	}
	return env
}

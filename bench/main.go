// Command bench measures pcsync against the targets of its benchmark issue:
// quota use with a known and an unknown quota, API calls per job,
// coalescing, the consumer's and the whole worker's cost, and the latency
// of a trickle of jobs. Each scenario prints one row; all results go to
// bench/results/latest.json, with a chart per rate scenario.
//
// It runs against the local stack (kumo and the Partner Central
// simulator), never AWS.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	default:
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// options is what the program is told.
type options struct {
	scenario string
	results  string
	// scale multiplies the sizes (jobs, messages, durations) of every
	// scenario; the test runs with a small one.
	scale float64
	// charts turns the PNGs on.
	charts bool
	// profile, if set, is a directory for the CPU and heap profiles of
	// the CPU scenarios (consumer-only, worker-cpu).
	profile string
}

// figure is one measured number.
type figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// result is one scenario's outcome.
type result struct {
	Scenario string   `json:"scenario"`
	Figures  []figure `json:"figures"`
	Summary  string   `json:"summary"` // the figures as the table shows them
	Target   string   `json:"target"`
	Pass     bool     `json:"pass"`
	Notes    string   `json:"notes,omitempty"`
	Error    string   `json:"error,omitempty"`
	Seconds  float64  `json:"seconds"`
	Chart    string   `json:"chart,omitempty"`
}

// env is what every scenario gets.
type env struct {
	opt    options
	names  *queueNames
	stderr io.Writer
	// tmp is a directory for built binaries, removed at the end.
	tmp string
}

// n scales a size, keeping it at least lo.
func (e *env) n(size, lo int) int { return max(lo, int(float64(size)*e.opt.scale)) }

// d scales a duration, keeping it at least lo.
func (e *env) d(dur, lo time.Duration) time.Duration {
	return max(lo, time.Duration(float64(dur)*e.opt.scale))
}

type scenario struct {
	name string
	run  func(ctx context.Context, e *env) result
}

func scenarios() []scenario {
	return []scenario{
		{"quota-known", quotaKnown},
		{"quota-unknown", quotaUnknown},
		{"calls-per-job", callsPerJob},
		{"coalescing", coalescing},
		{"nightly-full", nightlyFull},
		{"trickle", trickle},
		{"priority", priority},
		{"consumer-only", consumerOnly},
		{"worker-cpu", workerCPU},
		{"fleet", fleet},
		{"shared", shared},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var names []string
	for _, s := range scenarios() {
		names = append(names, s.name)
	}
	fs.StringVar(&o.scenario, "scenario", "", "run only this scenario: "+strings.Join(names, ", "))
	fs.StringVar(&o.results, "results", filepath.Join("bench", "results"), "directory for latest.json and the charts")
	fs.Float64Var(&o.scale, "scale", 1, "multiplies every scenario's sizes (smoke runs: 0.05)")
	fs.BoolVar(&o.charts, "charts", true, "write a PNG chart per rate scenario")
	fs.StringVar(&o.profile, "profile", "", "write CPU and heap profiles of consumer-only and worker-cpu into this directory (the figures then include the profiler's cost)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.scale <= 0 {
		return fmt.Errorf("-scale must be above 0, got %v", o.scale)
	}
	todo := scenarios()
	if o.scenario != "" {
		i := slices.IndexFunc(todo, func(s scenario) bool { return s.name == o.scenario })
		if i < 0 {
			return fmt.Errorf("-scenario %q: not one of %s", o.scenario, strings.Join(names, ", "))
		}
		todo = todo[i : i+1]
	}
	for _, dir := range []string{o.results, o.profile} {
		if dir == "" {
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	tmp, err := os.MkdirTemp("", "pcsync-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	e := &env{opt: o, names: &queueNames{}, stderr: stderr, tmp: tmp}

	fmt.Fprintf(stdout, "pcsync bench: %s, %d CPUs, GOMAXPROCS %d, scale %g\n\n", runtime.Version(), runtime.NumCPU(), runtime.GOMAXPROCS(0), o.scale)
	fmt.Fprintf(stdout, "%-14s %-72s %-44s %s\n", "scenario", "figures", "target", "result")
	var results []result
	for _, s := range todo {
		if ctx.Err() != nil {
			break
		}
		start := time.Now()
		r := s.run(ctx, e)
		r.Scenario = s.name
		r.Seconds = time.Since(start).Seconds()
		verdict := "MISS"
		if r.Pass {
			verdict = "PASS"
		}
		if r.Error != "" {
			verdict = "ERROR: " + r.Error
		}
		fmt.Fprintf(stdout, "%-14s %-72s %-44s %s\n", s.name, r.Summary, r.Target, verdict)
		if r.Notes != "" {
			fmt.Fprintf(stdout, "%-14s   %s\n", "", r.Notes)
		}
		results = append(results, r)
	}
	out := struct {
		At         time.Time `json:"at"`
		GoVersion  string    `json:"goVersion"`
		CPUs       int       `json:"cpus"`
		Scale      float64   `json:"scale"`
		Scenarios  []result  `json:"scenarios"`
		AllPassed  bool      `json:"allPassed"`
		Incomplete bool      `json:"incomplete,omitempty"`
	}{At: time.Now().UTC(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(), Scale: o.scale, Scenarios: results,
		AllPassed: !slices.ContainsFunc(results, func(r result) bool { return !r.Pass }), Incomplete: len(results) < len(todo)}
	raw, _ := json.MarshalIndent(out, "", "  ")
	path := filepath.Join(o.results, "latest.json")
	if err := os.WriteFile(path, append(raw, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nresults: %s\n", path)
	return ctx.Err()
}

// failed is the result of a scenario that could not measure.
func failed(target string, err error) result {
	return result{Target: target, Error: err.Error()}
}

func fig(name string, v float64, unit string) figure { return figure{Name: name, Value: v, Unit: unit} }

package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pcsync/pcsync/queue"
	"github.com/pcsync/pcsync/retry"
)

// deployDir holds the alert rules, the Grafana dashboard and the manifests
// that read these metrics.
const deployDir = "../deploy"

// recordingRegisterer remembers every collector registered through it, so
// that metric vectors without a single series yet are known too.
type recordingRegisterer struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registerer.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// descName matches the start of prometheus.Desc.String(), the only place
// client_golang shows a descriptor's fully-qualified name.
var descName = regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)

// seriesNames are the names PromQL can select for a metric family of a type
// (the name of client_model's MetricType): a classic histogram is only its
// _bucket, _sum and _count series.
func seriesNames(name, typ string) []string {
	switch typ {
	case "HISTOGRAM", "GAUGE_HISTOGRAM":
		return []string{name + "_bucket", name + "_sum", name + "_count"}
	case "SUMMARY":
		return []string{name, name + "_sum", name + "_count"}
	}
	return []string{name}
}

// exportedSeries returns every series name the worker's metrics can export:
// the families gathered from a registry built like the worker's, and, for
// vectors that have no child yet (a dead-letter class that never occurred),
// the names from their descriptors.
func exportedSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &recordingRegisterer{Registerer: reg}
	m := New(rec)
	m.ObserveBudget(10000, func() int { return 10000 })
	m.ObserveQueue(&fakeQueue{})
	m.ObserveLimiter("write", &fakeLimiter{rate: 1, ceiling: 1})
	m.ObserveCircuit(retry.NewCircuit(retry.CircuitConfig{}))
	// Every series of the depth collector: a queue counted, with a
	// dead-letter queue counted, a message held and a receive.
	now := time.Now()
	m.ObserveDepths(&fakeDepths{depths: []queue.Depth{{Queue: "q", DLQ: "q-dlq", Sample: queue.DepthSample{At: now},
		DLQSample: queue.DepthSample{At: now}, OldestHeld: now, LastReceive: now}}})

	names := map[string]bool{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	gathered := map[string]bool{}
	for _, mf := range mfs {
		gathered[mf.GetName()] = true
		for _, n := range seriesNames(mf.GetName(), mf.GetType().String()) {
			names[n] = true
		}
	}

	for _, c := range rec.collectors {
		ch := make(chan *prometheus.Desc)
		go func() {
			c.Describe(ch)
			close(ch)
		}()
		for d := range ch {
			match := descName.FindStringSubmatch(d.String())
			if match == nil {
				t.Fatalf("cannot read the metric name from descriptor %s; client_golang changed its format", d)
			}
			name := match[1]
			if gathered[name] {
				continue
			}
			var typ string
			switch c.(type) {
			case *prometheus.CounterVec:
				typ = "COUNTER"
			case *prometheus.GaugeVec:
				typ = "GAUGE"
			case *prometheus.HistogramVec:
				typ = "HISTOGRAM"
			case *prometheus.SummaryVec:
				typ = "SUMMARY"
			default:
				t.Fatalf("%s (%T) exported no series and is no known vector type; teach this test its series names", name, c)
			}
			for _, n := range seriesNames(name, typ) {
				names[n] = true
			}
		}
	}

	// The checks below would pass vacuously if the descriptors were missed.
	for _, want := range []string{
		"pcsync_jobs_total",                          // pre-initialized vector
		"pcsync_sqs_batch_entry_failures_total",      // vector without series until first use
		"pcsync_api_request_duration_seconds_bucket", // histogram vector
		"pcsync_message_age_seconds_count",           // plain histogram
		"pcsync_write_budget_remaining",              // from ObserveBudget
		"pcsync_dead_letter_queue_messages",          // from ObserveDepths
	} {
		if !names[want] {
			t.Fatalf("exported series do not include %s; got %v", want, slices.Sorted(func(yield func(string) bool) {
				for n := range names {
					if !yield(n) {
						return
					}
				}
			}))
		}
	}
	return names
}

// runtimeSeries are the names of the Go and process collectors the worker
// registers next to its own metrics (internal/daemon).
func runtimeSeries(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		for _, n := range seriesNames(mf.GetName(), mf.GetType().String()) {
			names[n] = true
		}
	}
	return names
}

// deployFiles lists the files under deploy/ that may name metrics: rules,
// their tests, manifests, dashboards, scripts and documentation.
func deployFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		switch filepath.Ext(path) {
		case ".yaml", ".yml", ".json", ".md", ".sh":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("read %s: %v", deployDir, err)
	}
	for _, must := range []string{"prometheus/alerts.yaml", "grafana/pcsync-dashboard.json"} {
		if !slices.Contains(files, filepath.Join(deployDir, must)) {
			t.Fatalf("%s is missing", filepath.Join(deployDir, must))
		}
	}
	return files
}

var (
	pcsyncName = regexp.MustCompile(`pcsync_[a-z_]+`)
	// Go and process collector names, where they are used as metrics: in
	// PromQL, which the dashboard and the rules keep in "expr" fields.
	exprLine    = regexp.MustCompile(`"?expr"?\s*:`)
	runtimeName = regexp.MustCompile(`\b(?:go|process)_[a-z_]+`)
)

// TestDeployNamesExist fails for every metric name used under deploy/ that
// the worker does not export: a renamed metric must not leave an alert that
// can never fire or a dashboard panel that stays empty.
func TestDeployNamesExist(t *testing.T) {
	exported := exportedSeries(t)
	runtimeNames := runtimeSeries(t)
	checkRuntime := runtime.GOOS == "linux" // the process collector is complete on Linux only

	used := 0
	for _, path := range deployFiles(t) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
		for line := 1; sc.Scan(); line++ {
			text := sc.Text()
			for _, name := range pcsyncName.FindAllString(text, -1) {
				used++
				if !exported[name] {
					t.Errorf("%s:%d: %s is not a metric the worker exports", path, line, name)
				}
			}
			if checkRuntime && exprLine.MatchString(text) {
				for _, name := range runtimeName.FindAllString(text, -1) {
					if !runtimeNames[name] {
						t.Errorf("%s:%d: %s is not exported by the Go or process collector", path, line, name)
					}
				}
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if used == 0 {
		t.Fatalf("found no pcsync_ metric names under %s", deployDir)
	}
}

// TestPrometheusRuleMatchesAlerts checks that the PrometheusRule for the
// Prometheus Operator still wraps exactly deploy/prometheus/alerts.yaml
// (regenerate it with deploy/prometheus/prometheusrule.sh).
func TestPrometheusRuleMatchesAlerts(t *testing.T) {
	alerts, err := os.ReadFile(filepath.Join(deployDir, "prometheus", "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rulePath := filepath.Join(deployDir, "kubernetes", "monitoring", "prometheusrule.yaml")
	rule, err := os.ReadFile(rulePath)
	if err != nil {
		t.Fatal(err)
	}
	_, spec, ok := strings.Cut(string(rule), "\nspec:\n")
	if !ok {
		t.Fatalf("%s has no top-level spec:", rulePath)
	}
	var got strings.Builder
	for _, line := range strings.SplitAfter(spec, "\n") {
		if line != "" && line != "\n" && !strings.HasPrefix(line, "  ") {
			t.Fatalf("%s: line %q under spec: is not indented by two spaces", rulePath, line)
		}
		got.WriteString(strings.TrimPrefix(line, "  "))
	}
	if got.String() != string(alerts) {
		t.Errorf("%s does not wrap the current alerts.yaml; run deploy/prometheus/prometheusrule.sh\n%s",
			rulePath, firstDifference(got.String(), string(alerts)))
	}
}

// firstDifference describes the first line where got and want differ.
func firstDifference(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range max(len(g), len(w)) {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d of alerts.yaml: got %q, want %q", i+1, gl, wl)
		}
	}
	return "(same lines, different line endings)"
}

// TestDashboardStatsShowNoDataInRed: a stat panel whose query returns
// nothing (no worker scraped, a queue count that failed) must not look like
// a calm blank: each maps "no value" to red text.
func TestDashboardStatsShowNoDataInRed(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(deployDir, "grafana", "pcsync-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Type, Title string
			FieldConfig struct {
				Defaults struct {
					NoValue  string `json:"noValue"`
					Mappings []struct {
						Type    string
						Options struct {
							Match  string
							Result struct{ Text, Color string }
						}
					}
				}
			} `json:"fieldConfig"`
		}
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatal(err)
	}
	stats := 0
	for _, p := range dash.Panels {
		if p.Type != "stat" {
			continue
		}
		stats++
		red := false
		for _, m := range p.FieldConfig.Defaults.Mappings {
			if m.Type == "special" && m.Options.Match == "null" && m.Options.Result.Color == "red" && m.Options.Result.Text != "" {
				red = true
			}
		}
		if !red || p.FieldConfig.Defaults.NoValue == "" {
			t.Errorf("stat panel %q: noValue %q, a red special mapping of null: %v; want both", p.Title, p.FieldConfig.Defaults.NoValue, red)
		}
	}
	if stats == 0 {
		t.Fatal("no stat panel found in the dashboard")
	}
}

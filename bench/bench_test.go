package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCoalescingSmall runs one scenario end to end with tiny sizes, so that
// "go test ./..." exercises the harness: the stack, the real worker, the
// table row and latest.json.
func TestCoalescingSmall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if err := run(ctx, []string{"-scenario", "coalescing", "-scale", "0.05", "-results", dir}, &out, &errOut); err != nil {
		t.Fatalf("run: %v\n%s%s", err, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "coalescing ") {
		t.Errorf("output: got %q, want a row for coalescing", out.String())
	}
	raw, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Scenarios []result `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Scenarios) != 1 || got.Scenarios[0].Scenario != "coalescing" || got.Scenarios[0].Error != "" {
		t.Fatalf("latest.json: got %+v, want one coalescing result without error", got.Scenarios)
	}
	// Every context must end at its newest version, whatever the ratio.
	for _, f := range got.Scenarios[0].Figures {
		if f.Name == "contexts_not_newest" && f.Value != 0 {
			t.Errorf("contexts not at their newest version: got %v, want 0", f.Value)
		}
	}
}

func TestPct(t *testing.T) {
	d := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5}, {0.99, 10}, {0.1, 1}} {
		if got := pct(d, tc.q); got != tc.want {
			t.Errorf("pct(%v): got %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestUnknownScenario(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"-scenario", "nope", "-results", t.TempDir()}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "quota-known") {
		t.Errorf("got %v, want an error naming the scenarios", err)
	}
}

package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

func TestStateDirFor(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name      string
		dir, file string
		getenv    func(string) string
		want      string
		wantErr   bool
	}{
		{name: "XDG_STATE_HOME", getenv: env("XDG_STATE_HOME", "/x/state", "HOME", "/home/u"), want: "/x/state/pcsync"},
		{name: "HOME", getenv: env("HOME", "/home/u"), want: "/home/u/.local/state/pcsync"},
		{name: "a relative XDG_STATE_HOME is ignored", getenv: env("XDG_STATE_HOME", "state", "HOME", "/home/u"), want: "/home/u/.local/state/pcsync"},
		{name: "no default place", getenv: env(), wantErr: true},
		{name: "given", dir: "/var/lib/pcsync", getenv: env(), want: "/var/lib/pcsync"},
		{name: "off", dir: "off", getenv: env("HOME", "/home/u"), want: ""},
		{name: "a file instead", file: "/srv/pcsync.db", getenv: env("HOME", "/home/u"), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := daemonConfig{stateDir: tc.dir, stateFile: tc.file}
			got, err := c.stateDirFor(tc.getenv)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("got %q, %v; want %q (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestStandardQueues(t *testing.T) {
	got := standardQueues([]string{"https://sqs.us-east-1.amazonaws.com/1/rt.fifo", "https://sqs.us-east-1.amazonaws.com/1/bulk"})
	if !slices.Equal(got, []string{"bulk"}) {
		t.Errorf("got %v, want [bulk]", got)
	}
}

// TestRunRefusesTwoStatePlaces: the directory and the file are one
// setting given two ways; both given is a usage error, as is having no
// place at all without saying "off".
func TestRunRefusesTwoStatePlaces(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"both flags", []string{"-state-dir", "/a", "-state-file", "/b/q.db"}, nil, "both set"},
		{"flag and variable", []string{"-state-file", "/b/q.db"}, map[string]string{"PCSYNC_STATE_DIR": "off"}, "both set"},
		{"table and file", []string{"-state-table", "pcsync-state"}, map[string]string{"PCSYNC_STATE_FILE": "/b/q.db"}, "both set"},
		{"no home", nil, nil, "-state-dir has no default"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"run", "-queue-url", "https://sqs.us-east-1.amazonaws.com/1/q"}, tc.args...)
			err := run(context.Background(), args, func(k string) string { return tc.env[k] }, strings.NewReader(""), &out, &errOut)
			if code := exitCode(err, &errOut); code != exitUsage || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), exitUsage, tc.want)
			}
		})
	}
}

// TestRunRefusesASampleIntervalOutOfRange: the queues' depth is asked at
// most once a second and at least once an hour, flag or variable.
func TestRunRefusesASampleIntervalOutOfRange(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
	}{
		{"flag too short", []string{"-queue-sample-interval", "100ms"}, nil},
		{"variable too long", nil, map[string]string{"PCSYNC_QUEUE_SAMPLE_INTERVAL": "2h"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"run", "-queue-url", "https://sqs.us-east-1.amazonaws.com/1/q", "-state-dir", "off"}, tc.args...)
			err := run(context.Background(), args, func(k string) string { return tc.env[k] }, strings.NewReader(""), &out, &errOut)
			if code := exitCode(err, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "-queue-sample-interval must be between 1s and 1h") {
				t.Errorf("exit %d, stderr %q; want %d and the flag's range", code, errOut.String(), exitUsage)
			}
		})
	}
}

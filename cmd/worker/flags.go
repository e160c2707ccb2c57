package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// envName is the environment variable behind a flag: -queue-url is
// PCSYNC_QUEUE_URL.
func envName(flagName string) string {
	return "PCSYNC_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// urlList is a flag that may be repeated, its values kept in order, and
// whose environment variable holds a comma-separated list.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for _, u := range strings.Split(v, ",") {
		u = strings.TrimSpace(u)
		if u == "" {
			return fmt.Errorf("empty URL in %q", v)
		}
		*l = append(*l, u)
	}
	return nil
}

// orDiscover returns the list with "-" (find it from the queue) as "".
func (l urlList) orDiscover() []string {
	out := make([]string, len(l))
	for i, u := range l {
		if u != "-" {
			out[i] = u
		}
	}
	return out
}

// envFlags names the flags that take their value from the environment;
// nil means all of them. The daemon reads every setting from the
// environment (that is how containers are configured); the one-off tools
// only the queues they talk to, so a stray PCSYNC_DRY_RUN cannot change
// what a redrive does.
type envFlags map[string]bool

func (e envFlags) has(name string) bool { return e == nil || e[name] }

// queueEnv is the environment the one-off tools read.
var queueEnv = envFlags{"queue-url": true, "dlq-url": true}

// oneQueueEach checks that the one-off tools got one queue per flag: the
// worker's PCSYNC_QUEUE_URL and PCSYNC_DLQ_URL may hold comma-separated
// lists (its queues in priority order), which these tools must not take
// for one URL.
func oneQueueEach(fs *flag.FlagSet) error {
	var errs []error
	for _, name := range []string{"queue-url", "dlq-url"} {
		if f := fs.Lookup(name); f != nil && strings.Contains(f.Value.String(), ",") {
			errs = append(errs, fmt.Errorf("-%s (%s) takes one queue, got the list %q: give the one this command is for", name, envName(name), f.Value.String()))
		}
	}
	return errors.Join(errs...)
}

// applyEnv sets every env-backed flag not given on the command line from
// its environment variable, so a flag always wins over the environment. A
// bad value in the environment is an error naming the variable.
func applyEnv(fs *flag.FlagSet, getenv func(string) string, only envFlags) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil || !only.has(f.Name) {
			return
		}
		if v := getenv(envName(f.Name)); v != "" {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %v", envName(f.Name), v, e)
			}
		}
	})
	return err
}

// printFlags lists every flag with its variable (if env-backed) and
// default, for -h.
func printFlags(w io.Writer, fs *flag.FlagSet, only envFlags) {
	fs.VisitAll(func(f *flag.Flag) {
		name, usage := flag.UnquoteUsage(f)
		fmt.Fprintf(w, "  -%s", f.Name)
		if name != "" {
			fmt.Fprintf(w, " %s", name)
		}
		fmt.Fprintf(w, "\n    \t%s\n", usage)
		var notes []string
		if only.has(f.Name) {
			notes = append(notes, "env "+envName(f.Name))
		}
		if f.DefValue != "" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "false" {
			notes = append(notes, "default "+f.DefValue)
		}
		if len(notes) > 0 {
			fmt.Fprintf(w, "    \t(%s)\n", strings.Join(notes, ", "))
		}
	})
}

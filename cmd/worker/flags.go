package main

import (
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

// envFlags names the flags that take their value from the environment;
// nil means all of them. The daemon reads every setting from the
// environment (that is how containers are configured); the one-off tools
// only the queues they talk to, so a stray PCSYNC_DRY_RUN cannot change
// what a redrive does.
type envFlags map[string]bool

func (e envFlags) has(name string) bool { return e == nil || e[name] }

// queueEnv is the environment the one-off tools read.
var queueEnv = envFlags{"queue-url": true, "dlq-url": true}

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

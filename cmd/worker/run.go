package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit statuses shared by the subcommands.
const (
	exitOK     = 0
	exitFailed = 1 // the command ran and found a problem (an invalid job, ...)
	exitUsage  = 2 // bad flags or arguments, or an I/O error
)

const usage = `worker: pcsync, the Partner Central bulk sync worker.

Usage:
  worker run [flags]       run the sync daemon: apply the jobs of the queue
  worker enqueue FILE...   validate job files (JSON Lines or CSV) and send them to the queue
  worker validate FILE...  check job files against the API model; send nothing
  worker dlq               list the dead-letter queue with reasons, without consuming it
  worker redrive           move dead letters back to the queue, by class or reason

Run "worker COMMAND -h" for a command's flags.
`

// run is the whole program. Everything the operating system provides comes
// in as a parameter, so tests can call it end to end.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError{exitUsage}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return runDaemon(ctx, rest, getenv, stdout, stderr)
	case "enqueue":
		return runEnqueue(ctx, rest, getenv, stdin, stdout, stderr)
	case "dlq":
		return runDLQ(ctx, rest, getenv, stdout, stderr)
	case "redrive":
		return runRedrive(ctx, rest, getenv, stdout, stderr)
	case "validate":
		return runValidate(ctx, rest, stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "worker: unknown command %q\n\n%s", cmd, usage)
	return exitError{exitUsage}
}

// parseFlags parses a subcommand's flags; -h prints its help and succeeds.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		return exitError{exitOK}
	}
	if err != nil {
		return exitError{exitUsage}
	}
	return nil
}

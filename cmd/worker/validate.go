package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
	"github.com/pcsync/pcsync/updater"
)

func runValidate(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: worker validate [-format auto|jsonl|csv] FILE...

Checks job files against the Partner Central Selling API model without
sending anything. A file holds JSON Lines: one job (an UpdateEngagementContext
request, EngagementLastModifiedAt optional, SourceUpdatedAt optional) per
line; "-" reads standard input. A .csv file (or -format csv) holds one job
per row under a header naming the columns (see the README).

Prints one line per violation, "FILE:LINE: field: rule", on standard output
and "N jobs, N valid, N invalid" on standard error. An empty line, a line
that is not JSON and a line over 1 MiB are invalid jobs.

Exit status: 0 all jobs valid, 1 some job invalid, 2 usage or I/O error.

Flags:
`)
		printFlags(fs.Output(), fs, envFlags{})
	}
	format := fs.String("format", "auto", "auto (by file name: .csv is CSV), jsonl or csv")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *format != "auto" && *format != "jsonl" && *format != "csv" {
		fmt.Fprintf(stderr, "worker validate: -format must be auto, jsonl or csv, got %q\n", *format)
		return exitError{exitUsage}
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "worker validate: name at least one FILE (- for standard input)")
		return exitError{exitUsage}
	}
	dec := updater.NewDecoder(schema.New())
	var total, invalid int
	ioFailed := false
	for _, name := range fs.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		r, closeFn, err := openInput(name, stdin)
		if err != nil {
			fmt.Fprintf(stderr, "worker validate: %v\n", err)
			ioFailed = true
			continue
		}
		err = readJobs(r, name, *format, func(n int, line []byte, size int, rowErr error) {
			total++
			_, violations := checkLine(dec, line, size)
			if rowErr != nil {
				violations = []schema.Violation{{Rule: rowErr.Error()}}
			}
			if len(violations) > 0 {
				invalid++
			}
			for _, v := range violations {
				fmt.Fprintf(stdout, "%s:%d: %s\n", name, n, v)
			}
		})
		closeFn()
		if err != nil {
			fmt.Fprintf(stderr, "worker validate: %s: %v\n", name, err)
			ioFailed = true
		}
	}
	fmt.Fprintf(stderr, "%d jobs, %d valid, %d invalid\n", total, total-invalid, invalid)
	switch {
	case ioFailed:
		return exitError{exitUsage}
	case invalid > 0:
		return exitError{exitFailed}
	}
	return nil
}

// checkLine decodes one job line and returns the job, or the violations
// that make it invalid; size is the line's full length, which may exceed
// len(line) when the line was too long to keep.
func checkLine(dec *updater.Decoder, line []byte, size int) (*updater.Job, []schema.Violation) {
	switch {
	case size > updater.MaxBodyBytes:
		return nil, []schema.Violation{{
			Rule: fmt.Sprintf("line is %d bytes; a job is at most %d bytes (1 MiB)", size, updater.MaxBodyBytes),
			Code: types.ValidationExceptionErrorCodeInvalidValue,
		}}
	case size == 0:
		return nil, []schema.Violation{{Rule: "line is empty; each line must hold one job", Code: types.ValidationExceptionErrorCodeInvalidValue}}
	}
	job, err := dec.Decode(line)
	var inv *updater.InvalidJobError
	switch {
	case errors.As(err, &inv):
		return nil, inv.Violations
	case err != nil:
		return nil, []schema.Violation{{Rule: err.Error(), Code: types.ValidationExceptionErrorCodeInvalidValue}}
	}
	return job, nil
}

func openInput(name string, stdin io.Reader) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, err
	}
	return f, func() { f.Close() }, nil
}

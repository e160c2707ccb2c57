// Command devstack runs pcsync's local stack: an embedded SQS emulator
// with the job queue and its dead-letter queue, and the Partner Central
// simulator, on loopback, with no AWS account.
//
//	go run ./cmd/devstack up
//	go run ./cmd/devstack demo   # a sample batch through the real worker
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/partnercentral/pcsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "devstack:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

const usage = `devstack: pcsync's local stack (SQS emulator + Partner Central simulator).

Usage:
  devstack up [flags]     run the stack until SIGTERM or SIGINT
  devstack demo [flags]   run a sample nightly batch through the real worker, with progress and a summary

Run "devstack COMMAND -h" for a command's flags.
`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errUsage
	}
	switch args[0] {
	case "up":
		return up(ctx, args[1:], stdout, stderr)
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprintf(stderr, "devstack: unknown command %q\n\n%s", args[0], usage)
	return errUsage
}

func up(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		o      devstack.Options
		faults pcsim.Faults
	)
	fs.StringVar(&o.SQSAddr, "sqs-addr", "127.0.0.1:4566", "listen address of the SQS emulator")
	fs.StringVar(&o.PCAddr, "pc-addr", "127.0.0.1:4567", "listen address of the Partner Central simulator")
	fs.StringVar(&o.Queue, "queue", "pcsync-jobs", "job queue name; its dead-letter queue is <queue>-dlq, or <name>-dlq.fifo for <name>.fifo (a .fifo name makes both FIFO)")
	fs.Float64Var(&o.Sim.WriteRPS, "write-rps", 1, "simulated write quota, UpdateEngagementContext calls per second")
	fs.IntVar(&o.Sim.WriteBurst, "write-burst", 1, "simulated write quota's burst allowance")
	fs.Float64Var(&o.Sim.ReadRPS, "read-rps", 10, "simulated read quota, GetEngagement calls per second")
	fs.IntVar(&o.Sim.WriteBudget, "write-budget", 10000, "simulated writes per rolling 24 h; negative: unlimited")
	fs.Float64Var(&o.Sim.OutsideWritesPerSec, "outside-writes-per-sec", 0, "rate of outside edits bumping engagements (real conflicts)")
	fs.Float64Var(&o.Sim.OtherClientsWriteRPS, "other-clients-write-rps", 0, "other clients' UpdateEngagementContext calls per second on the same write quota and budget (a CRM connector, say); runtime: PUT /_sim/other-clients")
	fs.Float64Var(&o.Sim.OtherClientsReadRPS, "other-clients-read-rps", 0, "other clients' GetEngagement calls per second on the same read quota")
	fs.Float64Var(&faults.Error5xx, "fault-5xx", 0, "share of calls answered 500 InternalServerException")
	fs.Float64Var(&faults.Drop, "fault-drop", 0, "share of calls whose connection is dropped with no effect")
	fs.Float64Var(&faults.LostResponse, "fault-lost-response", 0, "share of writes applied whose response is lost")
	fs.DurationVar(&faults.Latency, "latency", 0, "latency added to every call")
	fs.IntVar(&o.Engagements, "engagements", 0, "engagements to create, eng-00000000000001 and on, each with contexts 1 (CustomerProject) and 2 (Lead)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage: devstack up [flags]\n\nRuns the local stack until SIGTERM or SIGINT and prints the environment a worker needs.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if err := faults.Validate(); err != nil {
		fmt.Fprintln(stderr, "devstack up:", err)
		return errUsage
	}
	if o.Sim.OtherClientsWriteRPS < 0 || o.Sim.OtherClientsReadRPS < 0 {
		fmt.Fprintln(stderr, "devstack up: -other-clients-write-rps and -other-clients-read-rps must be 0 (none) or above")
		return errUsage
	}
	o.Sim.Faults = faults
	s, err := devstack.Start(ctx, o)
	if err != nil {
		return err
	}
	defer s.Close()
	// The worker's state lives as long as this stack: a worker that kept
	// the versions it wrote to a simulator since stopped would take the
	// same jobs sent to a new one for stale.
	stateDir, err := os.MkdirTemp("", "pcsync-devstack-state-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stateDir)
	fmt.Fprintf(stderr, "devstack: SQS and DynamoDB on %s, Partner Central on %s (admin API: %s/_sim/stats); environment for a worker (for a fleet of workers, replace PCSYNC_STATE_DIR with PCSYNC_STATE_TABLE=%s):\n", s.SQSURL, s.PCURL, s.PCURL, s.StateTable)
	// First: scripts wait for the stack's last line (its credentials).
	for _, line := range append([]string{"PCSYNC_STATE_DIR=" + stateDir}, s.Env()...) {
		fmt.Fprintln(stdout, line)
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "devstack: stopping")
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.Sim.Shutdown(shut)
}

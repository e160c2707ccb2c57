// Command modelgen writes the Go tables that pcsync derives from the Partner
// Central Selling API's Smithy model: the enums of package
// partnercentral/types and the request shapes with their constraints in
// package partnercentral/schema.
//
// The model file itself stays outside the repository; the generated files
// are committed, and a test checks they still match the model when it is
// present beside the project.
//
//	go run ./internal/modelgen -model ../shared/api/partnercentral-selling-2022-07-26.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "modelgen:", err)
		}
		os.Exit(2)
	}
}

func run(_ context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("modelgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	modelPath := fs.String("model", "../shared/api/partnercentral-selling-2022-07-26.json", "path of the Smithy JSON model")
	out := fs.String("out", ".", "root of the pcsync module to write into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	raw, err := os.ReadFile(*modelPath)
	if err != nil {
		return err
	}
	files, err := Generate(raw)
	if err != nil {
		return err
	}
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(*out, name), src, 0o644); err != nil {
			return err
		}
	}
	return nil
}

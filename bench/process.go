package main

// This file runs commands of the module in processes of their own: it
// builds them, starts the emulator ("devstack up") apart from this
// process, and stops a child.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pcsync/pcsync/internal/devstack"
	"github.com/pcsync/pcsync/internal/sdkhttp"
)

// build builds a command of the module into e.tmp and returns its path.
func build(ctx context.Context, e *env, pkg string) (string, error) {
	out := filepath.Join(e.tmp, filepath.Base(pkg))
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/pcsync/pcsync/"+pkg)
	cmd.Stderr = e.stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w", pkg, err)
	}
	return out, nil
}

// externalStack is "devstack up" in a process of its own.
type externalStack struct {
	cmd  *exec.Cmd
	env  map[string]string
	done chan error
}

func startExternalStack(ctx context.Context, e *env, queueName string) (*externalStack, error) {
	bin, err := build(ctx, e, "cmd/devstack")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "up", "-sqs-addr", "127.0.0.1:0", "-pc-addr", "127.0.0.1:0", "-queue", queueName)
	cmd.Stderr = io.Discard
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start devstack up: %w", err)
	}
	x := &externalStack{cmd: cmd, env: map[string]string{}, done: make(chan error, 1)}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		x.done <- cmd.Wait()
	}()
	// Its environment lines; AWS_SECRET_ACCESS_KEY is the last.
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for x.env["AWS_SECRET_ACCESS_KEY"] == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				return nil, errors.New("devstack up exited before printing its environment")
			}
			if k, v, found := strings.Cut(l, "="); found {
				x.env[k] = v
			}
		case <-deadline.C:
			x.stop()
			return nil, errors.New("devstack up printed no environment within 30s")
		case <-ctx.Done():
			x.stop()
			return nil, ctx.Err()
		}
	}
	// The rest of its output is not read; drain it.
	go func() {
		for range lines {
		}
	}()
	return x, nil
}

func (x *externalStack) stop() { stopProcess(x.cmd, x.done, 10*time.Second) }

// stopProcess sends cmd SIGTERM and waits for done, the result of its
// Wait; past grace it kills it.
func stopProcess(cmd *exec.Cmd, done <-chan error, grace time.Duration) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-done
	}
}

func (x *externalStack) sqsClient(hc aws.HTTPClient) *sqs.Client {
	o := sqs.Options{
		Region:       devstack.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(devstack.AccessKeyID, devstack.SecretAccessKey, ""),
		BaseEndpoint: aws.String(x.env["AWS_ENDPOINT_URL_SQS"]),
	}
	if hc == nil {
		hc = awshttp.NewBuildableClient()
	}
	// As the worker's: a request body closed by the SDK must not cut the
	// answer (internal/sdkhttp).
	o.HTTPClient = sdkhttp.NewClient(hc)
	return sqs.New(o)
}

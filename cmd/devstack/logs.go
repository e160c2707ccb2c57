package main

// This file holds the slog handlers the demo gives the worker: a tally of
// its warnings and errors for the summary, and a tee for -v.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
)

// logTally counts the worker's warnings and errors by message, so that
// the summary can show them without their lines drowning the progress.
// It is safe for concurrent use; its derived handlers share its counts.
type logTally struct {
	mu    sync.Mutex
	n     map[string]int
	order []string
}

type logCount struct {
	level, msg string
	n          int
}

func newLogTally() *logTally { return &logTally{n: map[string]int{}} }

func (t *logTally) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (t *logTally) Handle(_ context.Context, r slog.Record) error {
	k := r.Level.String() + "\x00" + r.Message
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n[k] == 0 {
		t.order = append(t.order, k)
	}
	t.n[k]++
	return nil
}

func (t *logTally) WithAttrs([]slog.Attr) slog.Handler { return t }
func (t *logTally) WithGroup(string) slog.Handler      { return t }

func (t *logTally) counts() []logCount {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]logCount, 0, len(t.order))
	for _, k := range t.order {
		level, msg, _ := strings.Cut(k, "\x00")
		out = append(out, logCount{level: level, msg: msg, n: t.n[k]})
	}
	return out
}

// teeHandler sends each record to every handler that wants it.
type teeHandler []slog.Handler

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return slices.ContainsFunc(t, func(h slog.Handler) bool { return h.Enabled(ctx, l) })
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var errs []error
	for _, h := range t {
		if h.Enabled(ctx, r.Level) {
			errs = append(errs, h.Handle(ctx, r.Clone()))
		}
	}
	return errors.Join(errs...)
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (t teeHandler) WithGroup(name string) slog.Handler {
	out := make(teeHandler, len(t))
	for i, h := range t {
		out[i] = h.WithGroup(name)
	}
	return out
}

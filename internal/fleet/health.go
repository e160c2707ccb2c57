package fleet

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// health is what the table's last answers say: whether the last call got
// through. A refused condition is an answer (the table works); a cancelled
// call is not one.
type health struct {
	mu       sync.Mutex
	err      error     // the last call's failure; nil once a call gets through
	failedAt time.Time // when failures began
}

func (h *health) note(err error) {
	if errors.Is(err, context.Canceled) {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err == nil || isConditionFailed(err):
		h.err = nil
	case h.err == nil:
		h.err, h.failedAt = err, time.Now()
	default:
		h.err = err
	}
}

// Health is nil while the table answers: the last call to it got through.
// Otherwise it names the table, the error, and how long calls have failed:
// jobs are then sent back to the queue unwritten, so the worker is not
// ready.
func (s *Store) Health() error {
	s.health.mu.Lock()
	defer s.health.mu.Unlock()
	if s.health.err == nil {
		return nil
	}
	return fmt.Errorf("state table %s failing for %v: %w", s.table, time.Since(s.health.failedAt).Round(time.Second), s.health.err)
}

// watched is the client with every answer noted in health.
type watched struct {
	api API
	h   *health
}

func (w watched) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, o ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	out, err := w.api.DescribeTable(ctx, in, o...)
	w.h.note(err)
	return out, err
}

func (w watched) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := w.api.GetItem(ctx, in, o...)
	w.h.note(err)
	return out, err
}

func (w watched) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := w.api.UpdateItem(ctx, in, o...)
	w.h.note(err)
	return out, err
}

func (w watched) Query(ctx context.Context, in *dynamodb.QueryInput, o ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := w.api.Query(ctx, in, o...)
	w.h.note(err)
	return out, err
}

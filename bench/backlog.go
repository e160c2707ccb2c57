package main

// This file enqueues a scenario's backlog.

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pcsync/pcsync/queue"
)

// sendParallel enqueues bodies with several producers at once: one
// producer sends its batches one after another, and a large backlog would
// take minutes.
func sendParallel(ctx context.Context, client queue.Sender, queueURL string, bodies []string) error {
	const producers = 8
	var wg sync.WaitGroup
	errs := make([]error, producers)
	per := (len(bodies) + producers - 1) / producers
	for p := range producers {
		lo, hi := min(p*per, len(bodies)), min((p+1)*per, len(bodies))
		if lo == hi {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			entries := make([]queue.Entry, 0, hi-lo)
			for i := lo; i < hi; i++ {
				entries = append(entries, queue.Entry{ID: fmt.Sprint(i), Body: bodies[i]})
			}
			_, errs[p] = queue.NewProducer(client, queueURL, queue.ProducerConfig{}).Send(ctx, entries)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

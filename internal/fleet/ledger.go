package fleet

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Ledger counts one class of calls (writes or reads) for the whole fleet,
// in the table: it implements retry.Ledger, so that the fleet's replicas,
// and each restart of them, share one rolling daily budget.
//
// Calls are counted per minute, one item each. The window is the minutes
// that end after now - window - MaxClockSkew: a call leaves it between one
// window and one window, a minute and the skew after it was made, never
// before. Taking a call is one conditional increment of this minute's
// count, up to what the earlier minutes of the window leave. The earlier
// minutes no longer change, but for calls counted in a minute's last
// moments that land after it ended (a worker whose clock lags, a slow or
// retried request): those few are the most the fleet can count past the
// limit.
type Ledger struct {
	s     *Store
	pk    string
	fresh time.Duration // how long a read of the window serves

	refreshing sync.Mutex // held by the one goroutine refreshing for Delay

	mu      sync.Mutex
	readAt  time.Time       // when the window was last read
	minute  int64           // the minute it was read in
	buckets map[int64]int64 // the window's counts by minute, this one too
}

// refreshEvery is how long one read of the window serves Delay and Used.
const refreshEvery = 10 * time.Second

// Ledger returns the fleet's ledger of class ("write" or "read").
func (s *Store) Ledger(class string) *Ledger {
	return &Ledger{s: s, pk: "budget#" + class, fresh: refreshEvery}
}

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

func minuteKey(m int64) string { return fmt.Sprintf("%012d", m) }

// first is the oldest minute still in the window at now.
func first(now time.Time, window time.Duration) int64 {
	return minuteOf(now.Add(-window - MaxClockSkew))
}

// read loads the counts of the window's minutes.
func (l *Ledger) read(ctx context.Context, now time.Time, window time.Duration) error {
	from := first(now, window)
	buckets := map[int64]int64{}
	p := dynamodb.NewQueryPaginator(l.s.db, &dynamodb.QueryInput{
		TableName:              aws.String(l.s.table),
		KeyConditionExpression: aws.String("pk = :pk AND sk >= :from"),
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":pk": &ddb.AttributeValueMemberS{Value: l.pk}, ":from": &ddb.AttributeValueMemberS{Value: minuteKey(from)},
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("state table %s: %s budget: %w", l.s.table, l.pk, err)
		}
		for _, item := range out.Items {
			m, err := strconv.ParseInt(strAttr(item, "sk"), 10, 64)
			n, ok := numAttr(item, "n")
			if err == nil && ok {
				buckets[m] = n
			}
		}
	}
	l.mu.Lock()
	// A read started earlier than the one installed, but answered later,
	// knows less: it is dropped.
	if l.buckets == nil || !now.Before(l.readAt) {
		l.readAt, l.minute, l.buckets = now, minuteOf(now), buckets
	}
	l.mu.Unlock()
	return nil
}

// stale says whether the window must be read again before it answers.
func (l *Ledger) stale(now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buckets == nil || minuteOf(now) != l.minute || now.Sub(l.readAt) >= l.fresh || now.Before(l.readAt)
}

// sums returns the calls counted in the window before this minute and in
// this minute, from the last read.
func (l *Ledger) sums(now time.Time, window time.Duration) (before, this int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	from, cur := first(now, window), minuteOf(now)
	for m, n := range l.buckets {
		switch {
		case m == cur:
			this = n
		case m >= from && m < cur:
			before += n
		}
	}
	return before, this
}

// roomIn is how long until the window holds fewer than limit calls, from
// the last read: each minute's calls leave when it falls out of the window.
func (l *Ledger) roomIn(now time.Time, limit int, window time.Duration) time.Duration {
	before, this := l.sums(now, window)
	over := before + this - int64(limit) + 1
	if over <= 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	from, cur := first(now, window), minuteOf(now)
	var left int64
	for m := from; m <= cur; m++ {
		left += l.buckets[m]
		if left >= over {
			// Minute m leaves the window when first() passes it.
			at := time.Unix((m+1)*60, 0).Add(window + MaxClockSkew)
			return max(at.Sub(now), time.Second)
		}
	}
	return time.Minute
}

// Take counts one call at now, if the window has room for it.
func (l *Ledger) Take(ctx context.Context, now time.Time, limit int, window time.Duration) (time.Duration, error) {
	if l.stale(now) {
		if err := l.read(ctx, now, window); err != nil {
			return 0, err
		}
	}
	before, _ := l.sums(now, window)
	room := int64(limit) - before
	if room <= 0 {
		return l.roomIn(now, limit, window), nil
	}
	m := minuteOf(now)
	out, err := l.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(l.s.table),
		Key: map[string]ddb.AttributeValue{
			"pk": &ddb.AttributeValueMemberS{Value: l.pk}, "sk": &ddb.AttributeValueMemberS{Value: minuteKey(m)},
		},
		UpdateExpression:         aws.String("ADD #n :one SET #e = :e"),
		ConditionExpression:      aws.String("attribute_not_exists(#n) OR #n < :room"),
		ExpressionAttributeNames: map[string]string{"#n": "n", "#e": "expires"},
		ExpressionAttributeValues: map[string]ddb.AttributeValue{
			":one": num(1), ":room": num(room),
			":e": num(time.Unix((m+1)*60, 0).Add(window + MaxClockSkew + time.Hour).Unix()),
		},
		ReturnValues: ddb.ReturnValueUpdatedNew,
	})
	if isConditionFailed(err) {
		// The fleet spent this minute's room: the window is full until
		// its oldest calls leave.
		l.mu.Lock()
		if l.minute == m {
			l.buckets[m] = room
		}
		l.mu.Unlock()
		return l.roomIn(now, limit, window), nil
	}
	if err != nil {
		return 0, fmt.Errorf("state table %s: %s budget: %w", l.s.table, l.pk, err)
	}
	if n, ok := numAttr(out.Attributes, "n"); ok {
		l.mu.Lock()
		if l.minute == m {
			l.buckets[m] = n
		}
		l.mu.Unlock()
	}
	return 0, nil
}

// Delay is how long until the window has room, reading it again when the
// last read is older than refreshEvery. A read that fails answers from the
// last one: the next Take reads again, and fails the call if it must.
//
// One goroutine refreshes at a time; the others answer from the last read
// meanwhile, so a slow table holds up one caller, for refreshTimeout at
// most.
func (l *Ledger) Delay(now time.Time, limit int, window time.Duration) time.Duration {
	if l.stale(now) && l.refreshing.TryLock() {
		ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
		if err := l.read(ctx, now, window); err != nil {
			l.s.log.Warn("could not read the fleet's budget", "error", err)
		}
		cancel()
		l.refreshing.Unlock()
	}
	return l.roomIn(now, limit, window)
}

// refreshTimeout bounds a refresh of the window for Delay.
const refreshTimeout = 5 * time.Second

// Used is how many calls the window held at the last read, with those this
// worker counted since.
func (l *Ledger) Used(now time.Time, window time.Duration) int {
	before, this := l.sums(now, window)
	return int(before + this)
}

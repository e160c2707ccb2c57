package fleet

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/sivchari/kumo"

	"github.com/pcsync/pcsync/retry"
	"github.com/pcsync/pcsync/updater"
)

var _ updater.Claimer = (*Store)(nil)
var _ retry.Ledger = (*Ledger)(nil)

// kumoServer is one kumo for the package's tests: every kumo server in a
// process shares one store anyway, and NewServer is not safe to call from
// parallel tests.
var kumoServer = sync.OnceValue(kumo.NewServer)

// newTable returns a DynamoDB client on kumo and a state table of its own
// for the test.
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	db := dynamodb.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	}, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(kumoServer().URL) })
	name := "pcsync-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	if err := CreateTable(t.Context(), db, name); err != nil {
		t.Fatal(err)
	}
	return db, name
}

// clock is a settable clock shared by the stores of a test: the fleet's
// clocks agree.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }

func openStore(t *testing.T, db *dynamodb.Client, table, holder string, c *clock) *Store {
	t.Helper()
	s, err := Open(t.Context(), db, table, Options{Holder: holder, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recorded is the version the table holds for context key.
func recorded(t *testing.T, s *Store, key string) (time.Time, bool) {
	t.Helper()
	item, err := s.state(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	v, ok := numAttr(item, "version")
	return time.Unix(0, v), ok
}

func TestClaimOrdersVersionsAcrossWorkers(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	a, b := openStore(t, db, table, "a", c), openStore(t, db, table, "b", c)
	ctx := t.Context()
	v1, v2, v3 := c.now().Add(-3*time.Hour), c.now().Add(-2*time.Hour), c.now().Add(-time.Hour)

	ca, err := a.Claim(ctx, "ctx-1", v2)
	if err != nil {
		t.Fatal(err)
	}
	// While a holds the context, b may not write it, whatever its version.
	var claimed *updater.ClaimedError
	if _, err := b.Claim(ctx, "ctx-1", v3); !errors.As(err, &claimed) || claimed.Holder != "a" {
		t.Fatalf("claim of a held context: got %v, want a ClaimedError naming a", err)
	}
	if got, ok := recorded(t, b, "ctx-1"); !ok || !got.Equal(v2) {
		t.Fatalf("version recorded: got %v %v, want %v", got, ok, v2)
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	// Released: an older version is stale, the same one or a newer one
	// is b's to write.
	if _, err := b.Claim(ctx, "ctx-1", v1); !errors.Is(err, updater.ErrSuperseded) {
		t.Fatalf("claim of an older version: got %v, want ErrSuperseded", err)
	}
	cb, err := b.Claim(ctx, "ctx-1", v2)
	if err != nil {
		t.Fatalf("claim of the same version after release: %v", err)
	}
	if err := cb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, "ctx-1", v3); err != nil {
		t.Fatalf("claim of a newer version: %v", err)
	}
	// A job without a version claims the context without a version check.
	if _, err := a.Claim(ctx, "ctx-2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := recorded(t, a, "ctx-2"); ok {
		t.Fatal("a claim without a version recorded one")
	}
}

func TestClaimLapsesAndIsRenewed(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	a, b := openStore(t, db, table, "a", c), openStore(t, db, table, "b", c)
	ctx := t.Context()
	ca, err := a.Claim(ctx, "ctx-1", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	deadline, err := ca.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.now().Add(DefaultLease - MaxClockSkew); !deadline.Equal(want) {
		t.Fatalf("Hold deadline: got %v, want %v", deadline, want)
	}
	// Past renewBelow, Hold renews for a whole lease.
	c.advance(DefaultLease - renewBelow + time.Second)
	deadline, err = ca.Hold(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := c.now().Add(DefaultLease - MaxClockSkew); !deadline.Equal(want) {
		t.Fatalf("renewed deadline: got %v, want %v", deadline, want)
	}
	// a crashes: its claim lapses, b takes the context, and a's claim is
	// lost for good.
	c.advance(DefaultLease + time.Millisecond)
	if _, err := b.Claim(ctx, "ctx-1", time.Time{}); err != nil {
		t.Fatalf("claim after the holder's lapsed: %v", err)
	}
	if _, err := ca.Hold(ctx); err == nil {
		t.Fatal("Hold of a lapsed claim another worker took: no error")
	}
	// a's late release leaves b's claim alone.
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	var claimed *updater.ClaimedError
	if _, err := a.Claim(ctx, "ctx-1", time.Time{}); !errors.As(err, &claimed) || claimed.Holder != "b" {
		t.Fatalf("after a stale release: got %v, want b's claim in force", err)
	}
}

func TestClaimOneWinnerAmongMany(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	const n = 8
	var wg sync.WaitGroup
	var won atomic.Int32
	v := c.now().Add(-time.Hour)
	for i := range n {
		s := openStore(t, db, table, string(rune('a'+i)), c)
		wg.Go(func() {
			_, err := s.Claim(t.Context(), "ctx-1", v)
			var claimed *updater.ClaimedError
			switch {
			case err == nil:
				won.Add(1)
			case errors.As(err, &claimed):
			default:
				t.Errorf("claim: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d workers claimed one context at once, want 1", won.Load())
	}
}

func TestLedgerSharesOneBudget(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	const limit, window = 7, 24 * time.Hour
	var ledgers []*Ledger
	for i := range 3 {
		ledgers = append(ledgers, openStore(t, db, table, string(rune('a'+i)), c).Ledger("write"))
	}
	var wg sync.WaitGroup
	var taken atomic.Int32
	for _, l := range ledgers {
		for range 5 {
			wg.Go(func() {
				wait, err := l.Take(t.Context(), c.now(), limit, window)
				if err != nil {
					t.Error(err)
				}
				if wait == 0 {
					taken.Add(1)
				}
			})
		}
	}
	wg.Wait()
	if taken.Load() != limit {
		t.Fatalf("three workers took %d calls of a budget of %d", taken.Load(), limit)
	}
	// A worker started now (a restart) sees the budget spent.
	late := openStore(t, db, table, "late", c).Ledger("write")
	if d := late.Delay(c.now(), limit, window); d < window {
		t.Fatalf("a new worker's delay: got %v, want the window (%v) or more", d, window)
	}
	if u := late.Used(c.now(), window); u != limit {
		t.Fatalf("a new worker's used: got %d, want %d", u, limit)
	}
	// The other class has its own budget.
	if wait, err := late.s.Ledger("read").Take(t.Context(), c.now(), limit, window); err != nil || wait != 0 {
		t.Fatalf("read budget: %v %v", wait, err)
	}
	// A minute later still spent; once the window (and the skew) has
	// passed the minute of those calls, room again.
	c.advance(time.Minute)
	if wait, _ := late.Take(t.Context(), c.now(), limit, window); wait <= 0 {
		t.Fatal("took a call from a spent budget")
	}
	c.advance(window + MaxClockSkew)
	if wait, err := late.Take(t.Context(), c.now(), limit, window); err != nil || wait != 0 {
		t.Fatalf("after the window: %v %v, want room", wait, err)
	}
}

func TestBudgetOverLedger(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	s := openStore(t, db, table, "a", c)
	b := retry.NewSharedBudget(3, 24*time.Hour, s.Ledger("write"), c.now)
	for range 3 {
		if _, err := b.Take(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if r := b.Remaining(); r != 0 {
		t.Fatalf("Remaining: got %d, want 0", r)
	}
	if d := b.Delay(); d < 24*time.Hour {
		t.Fatalf("Delay of a spent budget: got %v", d)
	}
	// Spent by the fleet: a caller that will not wait hours hears so at
	// once, and nothing is counted.
	var long *retry.ErrLongWait
	if _, err := b.TakeWithin(t.Context(), time.Minute); !errors.As(err, &long) || long.Wait < 24*time.Hour {
		t.Fatalf("TakeWithin a spent budget: got %v, want an ErrLongWait of a day", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.Take(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Take of a spent budget, cancelled: got %v", err)
	}
}

func TestOpenChecksTheTable(t *testing.T) {
	db, _ := newTable(t)
	if _, err := Open(t.Context(), db, "no-such-table", Options{}); err == nil || !strings.Contains(err.Error(), "no-such-table") {
		t.Fatalf("missing table: got %v, want an error naming it", err)
	}
	name := "pcsync-wrong-schema"
	_, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String(name),
		KeySchema:            []ddb.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddb.KeyTypeHash}},
		AttributeDefinitions: []ddb.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddb.ScalarAttributeTypeS}},
		BillingMode:          ddb.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(t.Context(), db, name, Options{}); err == nil || !strings.Contains(err.Error(), "key schema") {
		t.Fatalf("wrong schema: got %v, want an error about the key schema", err)
	}
}

// flaky is the table's client, failing every call while fail is set (the
// table unreachable).
type flaky struct {
	API
	fail atomic.Bool
}

var errUnreachable = errors.New("dial tcp: connection refused")

func (f *flaky) GetItem(ctx context.Context, in *dynamodb.GetItemInput, o ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if f.fail.Load() {
		return nil, errUnreachable
	}
	return f.API.GetItem(ctx, in, o...)
}

func (f *flaky) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, o ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.fail.Load() {
		return nil, errUnreachable
	}
	return f.API.UpdateItem(ctx, in, o...)
}

func TestHealthFollowsTheTable(t *testing.T) {
	db, table := newTable(t)
	c := newClock()
	f := &flaky{API: db}
	s, err := Open(t.Context(), f, table, Options{Holder: "a", Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	other := openStore(t, db, table, "b", c)
	if _, err := other.Claim(t.Context(), "ctx-1", time.Time{}); err != nil {
		t.Fatal(err)
	}
	// A refused claim is an answer: the table works.
	if _, err := s.Claim(t.Context(), "ctx-1", time.Time{}); err == nil {
		t.Fatal("claimed a context another worker holds")
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health after a refused claim: %v", err)
	}
	f.fail.Store(true)
	if _, err := s.Claim(t.Context(), "ctx-2", time.Time{}); err == nil {
		t.Fatal("claim through an unreachable table: no error")
	}
	if err := s.Health(); err == nil || !strings.Contains(err.Error(), table) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("Health with the table unreachable: got %v, want the table and the error named", err)
	}
	f.fail.Store(false)
	if _, err := s.Claim(t.Context(), "ctx-2", time.Time{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Health(); err != nil {
		t.Fatalf("Health once the table answers again: %v", err)
	}
}

// Package fleet keeps what the replicas of a pcsync fleet must share, in
// one DynamoDB table: per context, the newest version set out to be written
// and the claim of the one worker writing it (Store implements
// updater.Claimer), and the rolling daily budgets of writes and reads
// (Ledger implements retry.Ledger).
//
// The table has a string partition key "pk" and a string sort key "sk",
// and time to live on the attribute "expires"; deploy/cloudformation
// creates it, CreateTable does for tests and the local stack. Items:
//
//	pk "context#<context key>", sk "state":
//	    version  N  the newest SourceUpdatedAt set out to be written (Unix ns)
//	    holder   S  the worker holding the context's claim
//	    until    N  when its claim lapses (Unix ms)
//	    expires  N  when the item may go (Unix s), 15 days after the last claim
//	pk "budget#<class>", sk "<Unix minute, 12 digits>":
//	    n        N  calls counted in that minute
//	    expires  N  a day and an hour after the minute
//
// Every change is a conditional UpdateItem, so the replicas agree without
// talking to each other: no claim is taken for a version older than one
// recorded, no two workers hold a context at once, no minute's count goes
// past what the window leaves.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/pcsync/pcsync/updater"
)

// API is the part of the DynamoDB client the store uses: the calls the
// IAM policy grants (deploy/iam/policy.json).
type API interface {
	DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Options tune a Store; the zero value takes the defaults.
type Options struct {
	// Holder names this worker in the claims it takes; "" means the host
	// name, the process id and a random suffix (unique per process).
	Holder string
	// Lease is how long a claim lasts unless renewed; a crashed worker's
	// contexts are free again after it. 0 means DefaultLease.
	Lease time.Duration
	// Now is the clock; nil means time.Now. The fleet's clocks must
	// agree within MaxClockSkew.
	Now    func() time.Time
	Logger *slog.Logger
}

const (
	// DefaultLease is how long a claim lasts: how long a crashed
	// worker's contexts wait. A call (30 s at most, see
	// partnercentral.DefaultTimeout) fits in what is left of it when it
	// is renewed (renewBelow).
	DefaultLease = time.Minute
	// MaxClockSkew is how far apart the fleet's clocks may be: a call
	// under a claim ends that long before the claim lapses, and a
	// budget's minute is counted that long after the window.
	MaxClockSkew = 10 * time.Second
	// keepFor is how long a context's item outlives its last claim:
	// longer than SQS keeps a message (14 days), so that no delivery of
	// an older version can outlive the record of a newer one.
	keepFor = 15 * 24 * time.Hour
)

// Store is the fleet's state in one table. It is safe for concurrent use.
type Store struct {
	db     API // watched: every answer goes to health
	health *health
	table  string
	holder string
	lease  time.Duration
	now    func() time.Time
	log    *slog.Logger
}

// Open checks that table exists with the key schema above, and returns a
// store on it.
func Open(ctx context.Context, db API, table string, o Options) (*Store, error) {
	if o.Lease <= 0 {
		o.Lease = DefaultLease
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Holder == "" {
		o.Holder = defaultHolder()
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return nil, fmt.Errorf("state table %s: %w", table, err)
	}
	if err := checkSchema(out.Table); err != nil {
		return nil, fmt.Errorf("state table %s: %w", table, err)
	}
	h := &health{}
	return &Store{db: watched{api: db, h: h}, health: h, table: table, holder: o.Holder, lease: o.Lease, now: o.Now, log: o.Logger}, nil
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// Holder is the name this worker's claims carry.
func (s *Store) Holder() string { return s.holder }

func defaultHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}

func checkSchema(t *ddb.TableDescription) error {
	if t == nil {
		return errors.New("no description")
	}
	keys := map[string]ddb.KeyType{}
	for _, k := range t.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	types := map[string]ddb.ScalarAttributeType{}
	for _, a := range t.AttributeDefinitions {
		types[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	if len(keys) != 2 || keys["pk"] != ddb.KeyTypeHash || keys["sk"] != ddb.KeyTypeRange ||
		types["pk"] != ddb.ScalarAttributeTypeS || types["sk"] != ddb.ScalarAttributeTypeS {
		return errors.New(`key schema must be a string partition key "pk" and a string sort key "sk" (see deploy/cloudformation)`)
	}
	return nil
}

func contextKey(key string) map[string]ddb.AttributeValue {
	return map[string]ddb.AttributeValue{
		"pk": &ddb.AttributeValueMemberS{Value: "context#" + key},
		"sk": &ddb.AttributeValueMemberS{Value: "state"},
	}
}

func num(v int64) ddb.AttributeValue {
	return &ddb.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

// numAttr is item's number attribute name, and whether it has one.
func numAttr(item map[string]ddb.AttributeValue, name string) (int64, bool) {
	n, ok := item[name].(*ddb.AttributeValueMemberN)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

func strAttr(item map[string]ddb.AttributeValue, name string) string {
	if s, ok := item[name].(*ddb.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

func isConditionFailed(err error) bool {
	var ccf *ddb.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

// state reads a context's item, strongly consistent: what the last
// conditional write left.
func (s *Store) state(ctx context.Context, key string) (map[string]ddb.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.table), Key: contextKey(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, fmt.Errorf("state table %s: %w", s.table, err)
	}
	return out.Item, nil
}

// Claim takes context key for this worker, for the write of version v
// (zero: none), in one conditional write that also records v: it succeeds
// only if no newer version is recorded and no other worker's claim is in
// force. See updater.Claimer.
func (s *Store) Claim(ctx context.Context, key string, v time.Time) (updater.Claim, error) {
	// A failed condition says only that one of its parts failed: the item
	// is read to tell which. Between the two, the holder may have
	// released: then the claim is tried again.
	for range 3 {
		now := s.now()
		until := now.Add(s.lease)
		names := map[string]string{"#h": "holder", "#u": "until", "#e": "expires"}
		values := map[string]ddb.AttributeValue{
			":h": &ddb.AttributeValueMemberS{Value: s.holder},
			":u": num(until.UnixMilli()), ":now": num(now.UnixMilli()),
			":e": num(now.Add(keepFor).Unix()),
		}
		update := "SET #h = :h, #u = :u, #e = :e"
		cond := "(attribute_not_exists(#u) OR #u < :now OR #h = :h)"
		if !v.IsZero() {
			names["#v"] = "version"
			values[":v"] = num(v.UnixNano())
			update += ", #v = :v"
			cond += " AND (attribute_not_exists(#v) OR #v <= :v)"
		}
		_, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(s.table), Key: contextKey(key),
			UpdateExpression: aws.String(update), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values,
		})
		if err == nil {
			return &claim{s: s, key: key, v: v, until: until}, nil
		}
		if !isConditionFailed(err) {
			return nil, fmt.Errorf("state table %s: %w", s.table, err)
		}
		item, err := s.state(ctx, key)
		if err != nil {
			return nil, err
		}
		if rec, ok := numAttr(item, "version"); ok && !v.IsZero() && rec > v.UnixNano() {
			return nil, updater.ErrSuperseded
		}
		if u, ok := numAttr(item, "until"); ok && u >= s.now().UnixMilli() && strAttr(item, "holder") != s.holder {
			return nil, &updater.ClaimedError{Holder: strAttr(item, "holder"), Until: time.UnixMilli(u)}
		}
	}
	return nil, fmt.Errorf("state table %s: context %s: its item changed under three claims in a row", s.table, key)
}

// claim is this worker's hold on one context.
type claim struct {
	s     *Store
	key   string
	v     time.Time
	until time.Time // as this worker set it
}

// renewBelow is how much of a claim must be left for a call to start
// under it without renewing: a call (30 s at most), the clocks' skew and
// a margin fit in it.
const renewBelow = 45 * time.Second

// Hold renews the claim when less than renewBelow is left, and returns
// when a call under it must end: MaxClockSkew before it lapses.
func (c *claim) Hold(ctx context.Context) (time.Time, error) {
	now := c.s.now()
	if c.until.Sub(now) < renewBelow {
		until := now.Add(c.s.lease)
		// Or already :u: the SDK retrying a renewal whose answer was lost
		// finds it applied.
		err := c.whileHeld(ctx, "SET #u = :u", "(#u = :was OR #u = :u)", ":u", num(until.UnixMilli()))
		switch {
		case isConditionFailed(err):
			return time.Time{}, fmt.Errorf("state table %s: the claim on context %s lapsed and was taken", c.s.table, c.key)
		case err != nil:
			return time.Time{}, fmt.Errorf("state table %s: %w", c.s.table, err)
		}
		c.until = until
	}
	return c.until.Add(-MaxClockSkew), nil
}

// Release ends the claim, if it is still this worker's.
func (c *claim) Release(ctx context.Context) error {
	if err := c.whileHeld(ctx, "REMOVE #h, #u", "#u = :was", "", nil); err != nil && !isConditionFailed(err) {
		return fmt.Errorf("state table %s: %w", c.s.table, err)
	}
	return nil
}

// whileHeld updates the context's item with update, on condition that this
// worker's claim is the one in force (holder #h is this worker and cond
// holds, #u = :was being the until it set), with one more value name if
// given.
func (c *claim) whileHeld(ctx context.Context, update, cond, name string, value ddb.AttributeValue) error {
	values := map[string]ddb.AttributeValue{
		":h": &ddb.AttributeValueMemberS{Value: c.s.holder}, ":was": num(c.until.UnixMilli()),
	}
	if name != "" {
		values[name] = value
	}
	_, err := c.s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(c.s.table), Key: contextKey(c.key),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#h = :h AND " + cond),
		ExpressionAttributeNames:  map[string]string{"#h": "holder", "#u": "until"},
		ExpressionAttributeValues: values,
	})
	return err
}

// CreateTable creates a state table as deploy/cloudformation does (on
// demand, time to live on "expires"), for tests and the local stack. A
// table that exists already is left as it is.
func CreateTable(ctx context.Context, db *dynamodb.Client, table string) error {
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(table),
		KeySchema: []ddb.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: ddb.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: ddb.KeyTypeRange},
		},
		AttributeDefinitions: []ddb.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: ddb.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: ddb.ScalarAttributeTypeS},
		},
		BillingMode: ddb.BillingModePayPerRequest,
	})
	var inUse *ddb.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create state table %s: %w", table, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: aws.String(table),
		TimeToLiveSpecification: &ddb.TimeToLiveSpecification{
			AttributeName: aws.String("expires"), Enabled: aws.Bool(true),
		},
	})
	if err != nil {
		return fmt.Errorf("state table %s: time to live: %w", table, err)
	}
	return nil
}

package pcsim

import (
	"encoding/json"
	"log/slog"
	"time"
)

// Options configures a Sim. The zero value is a simulator with the service's
// documented quotas (1 write/s, 10 reads/s, 10,000 writes per rolling 24 h),
// any well-formed SigV4 signature accepted, no faults, no outside writer and
// no other clients on the quotas.
type Options struct {
	WriteRPS   float64 // token-bucket rate for UpdateEngagementContext; 0 -> 1; negative -> no rate limit for writes
	WriteBurst int     // bucket size; 0 -> 1
	ReadRPS    float64 // token-bucket rate for GetEngagement; 0 -> 10; negative -> no rate limit for reads
	ReadBurst  int     // 0 -> 10
	// Unlimited turns every quota off, the rate buckets and the write
	// budget alike, for CPU benchmarks that must measure the client alone.
	Unlimited bool

	WriteBudget  int           // writes admitted per rolling window; 0 -> 10000; negative -> unlimited
	BudgetWindow time.Duration // 0 -> 24h
	// BudgetAsThrottle reports a spent budget as 429 ThrottlingException
	// instead of 402 ServiceQuotaExceededException; the real service may do
	// either, and a client must survive both.
	BudgetAsThrottle bool

	// Credentials maps access key ids to secret keys. When set, signatures
	// are fully verified by re-signing the request. When nil, any access key
	// is accepted but the SigV4 Authorization header must be well formed,
	// scoped to the right service and region, and not stale.
	Credentials map[string]string
	Region      string // signing region expected; "" -> us-east-1

	// OutsideWritesPerSec is the rate at which an outside writer bumps
	// random engagements' ModifiedAt, as another user editing them would.
	OutsideWritesPerSec float64
	// OtherClientsWriteRPS and OtherClientsReadRPS are the rates of calls
	// other clients of the partner account (its CRM connector, say) make
	// on the same quotas as pcsync: a steady caller takes a write (read)
	// token every 1/rate seconds, an admitted write spends the write
	// budget too, and a refused call is followed by the next one as if
	// nothing happened. 0 -> none. Stats.OtherClients counts them; they
	// touch no engagement and are not in Stats.Calls. Their ticks are the
	// runtime's timers, not Now: for exact counts in a test, run it under
	// testing/synctest with Now nil.
	OtherClientsWriteRPS float64
	OtherClientsReadRPS  float64
	Faults               Faults
	Seed                 int64            // seeds fault draws, outside writer picks and request ids; 0 -> time-based
	Now                  func() time.Time // clock for quotas, budget, signature age and ModifiedAt; nil -> time.Now
	Logger               *slog.Logger     // nil -> discard
	// OnWrite, when set, is told of every successful
	// UpdateEngagementContext, in the order they were applied to each
	// engagement: the engagement and context ids and the context as
	// GetEngagement now returns it. Tests read the order of writes from
	// it (was an older version written over a newer one?). It is called
	// under the engagement's lock and must return promptly.
	OnWrite func(engagement, context string, payload json.RawMessage)
}

// Wire and model constants the simulator enforces.
const (
	defaultWriteRPS     = 1
	defaultWriteBurst   = 1
	defaultReadRPS      = 10
	defaultReadBurst    = 10
	defaultWriteBudget  = 10000
	defaultBudgetWindow = 24 * time.Hour
	defaultRegion       = "us-east-1"

	// arnRegion is the region in the ARNs the simulator hands out: the
	// service lives in us-east-1 whatever endpoint a client signs for.
	arnRegion = "us-east-1"

	signingName  = "partnercentral-selling"
	targetPrefix = "AWSPartnerCentralSelling."
	jsonContent  = "application/x-amz-json-1.0"

	maxBodyBytes  = 2 << 20 // larger request bodies are a ValidationException
	readBodyBytes = 8 << 20 // the most the simulator reads to hash a body

	maxContexts     = 5  // EngagementContexts length max in the model
	maxInteractions = 10 // LeadInteractionList length max in the model
	maxTitle        = 40 // EngagementTitle pattern ^(?s).{1,40}$

	// timeFormat has millisecond precision, what the official SDKs keep:
	// see the package doc.
	timeFormat = "2006-01-02T15:04:05.000Z"

	// Accounts in GetEngagement's CreatedBy and ModifiedBy: the partner's
	// own for engagements it created or wrote, another for outside writes,
	// so that a test can tell who wrote last.
	partnerAccount = "123456789012"
	outsideAccount = "210987654321"
)

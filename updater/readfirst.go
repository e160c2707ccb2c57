package updater

import (
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// This file decides when a job is read before it is written. The daily
// write budget (10,000 per account) is the limit that matters, and reads
// are ten times cheaper (100,000 a day, 10/s against 1/s). A nightly export
// repeats every record, most of them unchanged: a read that finds the
// payload in place saves a write. A stream of real changes gains nothing
// from reading first, and must not pay a read per job for it.

// readCostInWrites is what a read costs in writes: both the rate (10/s
// against 1/s) and the daily budget (100,000 against 10,000) of the account
// make it a tenth. Reading first pays while more than this share of the
// jobs read first turn out unchanged.
const readCostInWrites = 0.1

// probeEvery: while reading first does not pay, one job in probeEvery is
// read first anyway, so that the policy notices when the stream turns to
// repeats. It costs a stream of real changes 1 % more calls.
const probeEvery = 100

// shareWeight is the weight of each new job in the running share of
// unchanged jobs: one probe that finds a repeat turns reading first on, and
// a stream turned to real changes turns it off within about fifteen reads.
const shareWeight = 0.15

// readPolicy keeps the running share of unchanged jobs among those whose
// payload was compared with the engagement before any write. It is safe
// for concurrent use.
type readPolicy struct {
	mu    sync.Mutex
	share float64
	asked uint64
}

// readFirst says whether a job that could be written at once should be
// read first.
func (p *readPolicy) readFirst() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked++
	if p.share >= readCostInWrites {
		return true
	}
	return p.asked%probeEvery == 0
}

// observe records whether a job compared before any write was unchanged.
func (p *readPolicy) observe(unchanged bool) {
	v := 0.0
	if unchanged {
		v = 1
	}
	p.mu.Lock()
	p.share += shareWeight * (v - p.share)
	p.mu.Unlock()
}

// DefaultReadFreshFor is how long one GetEngagement serves the jobs of its
// engagement that follow it.
const DefaultReadFreshFor = 30 * time.Second

// view is an engagement as a GetEngagement call returned it, and when.
type view struct {
	ge *partnercentral.GetEngagementOutput
	at time.Time
}

// freshView returns the engagement's last read while it is fresh: one
// read serves every job of the engagement that comes within
// Config.ReadFreshFor, all its contexts. Its age is that of a read made
// that much earlier: a job without a timestamp of its own cannot tell the
// two apart, and one with a timestamp is checked by the service on write.
func (u *Updater) freshView(eng string, now time.Time) *partnercentral.GetEngagementOutput {
	v, ok := u.views.get(eng)
	if !ok || now.Sub(v.at) > u.cfg.ReadFreshFor {
		return nil
	}
	return v.ge
}

// wrote keeps the engagement's view in step with this worker's write to one
// of its contexts: the new ModifiedAt, and that context no longer known
// (what the service stored may differ in form from what was sent).
func (u *Updater) wrote(eng, contextID string, modifiedAt *string) {
	v, ok := u.views.get(eng)
	if !ok {
		return
	}
	ge := *v.ge
	ge.ModifiedAt = modifiedAt
	ge.Contexts = slices.DeleteFunc(slices.Clone(ge.Contexts), func(c types.EngagementContextDetails) bool {
		return aws.ToString(c.Id) == contextID
	})
	u.views.put(eng, view{ge: &ge, at: v.at})
}

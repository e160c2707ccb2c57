package pcsim

import (
	"net/http"
	"strings"
	"testing"
	"time"

	smithytime "github.com/aws/smithy-go/time"
)

// sdkForms are the ways the official SDKs send back a timestamp they read:
// each keeps milliseconds at most.
var sdkForms = []struct {
	name   string
	resend func(t *testing.T, got string) string
}{
	{"the string itself", func(t *testing.T, got string) string { return got }},
	{"smithy-go (aws-sdk-go-v2)", func(t *testing.T, got string) string {
		tm, err := smithytime.ParseDateTime(got)
		if err != nil {
			t.Fatalf("smithy-go cannot parse %q: %v", got, err)
		}
		return smithytime.FormatDateTime(tm)
	}},
	{"JavaScript v3 (a Date, toISOString, .000Z shortened)", func(t *testing.T, got string) string {
		tm, err := time.Parse(time.RFC3339Nano, got)
		if err != nil {
			t.Fatal(err)
		}
		s := tm.UTC().Truncate(time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		return strings.Replace(s, ".000Z", "Z", 1)
	}},
}

// TestSDKRoundTrip is what a user of an official SDK does: read the
// engagement, write back its ModifiedAt, then chain writes with the
// EngagementLastModifiedAt each returns, in the SDK's own form. The clock
// stands still, so every version lies in the same millisecond of the
// clock, and a second write with a timestamp already used must still
// conflict.
func TestSDKRoundTrip(t *testing.T) {
	for i, form := range sdkForms {
		t.Run(form.name, func(t *testing.T) {
			clock := newFakeClock()
			clock.Advance(877 * time.Millisecond) // …09.000456789: a whole second, which JavaScript shortens
			srv := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
			c := newClient(t, srv, clock.Now)
			id := engID(100 + i)
			addEngagement(t, srv.Sim, id)

			read := form.resend(t, c.modifiedAt("Sandbox", id))
			res := c.update(updateReq(id, "1", read, "CustomerProject", customerProject("first")))
			if res.status != http.StatusOK {
				t.Fatalf("write with the ModifiedAt read, sent as %q: got %s, want 200", read, res)
			}
			var out struct{ EngagementLastModifiedAt string }
			res.decode(t, &out)
			for n := range 3 {
				next := form.resend(t, out.EngagementLastModifiedAt)
				res = c.update(updateReq(id, "1", next, "CustomerProject", customerProject("chained")))
				if res.status != http.StatusOK {
					t.Fatalf("chained write %d with %q (returned %q): got %s, want 200", n+1, next, out.EngagementLastModifiedAt, res)
				}
				res.decode(t, &out)
			}

			// A second writer holding the first read, within the same
			// millisecond of the clock: its version is gone.
			wantError(t, c.update(updateReq(id, "1", read, "CustomerProject", customerProject("lost update"))), http.StatusConflict, "ConflictException")
			// An outside edit in the same millisecond makes the last
			// returned timestamp stale too.
			last := form.resend(t, out.EngagementLastModifiedAt)
			if _, err := srv.Touch(id); err != nil {
				t.Fatal(err)
			}
			wantError(t, c.update(updateReq(id, "1", last, "CustomerProject", customerProject("stale"))), http.StatusConflict, "ConflictException")

			st, _ := srv.Engagement(id)
			if w := st.Contexts[0].Writes; w != 4 {
				t.Errorf("got %d writes applied, want 4", w)
			}
		})
	}
}

package pcsim

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// direct calls a Sim's handler in memory, signed as the real client signs,
// so that a test in a synctest bubble needs no network: a goroutine
// blocked on a socket would keep the bubble's clock from moving.
type direct struct {
	t   *testing.T
	sim *Sim
}

func (d direct) call(op string, body any) result {
	d.t.Helper()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	req, err := signedRequest(context.Background(), "http://pcsim.test", op, toJSON(d.t, body), creds, signingName, "us-east-1", time.Now())
	if err != nil {
		d.t.Fatalf("sign: %v", err)
	}
	return d.serve(req)
}

func (d direct) admin(method, path string) result {
	return d.serve(httptest.NewRequest(method, path, nil))
}

func (d direct) serve(req *http.Request) result {
	rec := httptest.NewRecorder()
	d.sim.ServeHTTP(rec, req)
	return result{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// waitUntil waits for the bubble's clock to reach at, then for every other
// goroutine in the bubble to block: an other client's tick due at the same
// instant has been taken by then, so the order of calls is fixed.
func waitUntil(at time.Time) {
	t := time.NewTimer(time.Until(at))
	defer t.Stop()
	<-t.C
	synctest.Wait()
}

// newBubbleSim starts a Sim inside the test's synctest bubble, with the
// test credentials and the bubble's clock, and closes it before the bubble
// ends.
func newBubbleSim(t *testing.T, opts Options) *Sim {
	t.Helper()
	opts.Credentials = map[string]string{testKey: testSecret}
	sim := New(opts)
	t.Cleanup(sim.Close)
	return sim
}

func TestOtherClientsShareTheQuota(t *testing.T) {
	const span = 10 * time.Second
	tests := []struct {
		name        string
		write       bool    // which bucket: the write bucket or the read bucket
		burst       int     // of the bucket, whose rate is 10/s
		otherRPS    float64 // the other client's calls per second
		clientRPS   float64 // the test client's, 0 for none
		wantOther   [2]int64
		wantClient  [2]int // admitted (200), throttled (429)
		description string
	}{
		{"alone under the quota", true, 1, 4, 0, [2]int64{40, 0}, [2]int{},
			"4/s on a 10/s quota: every call admitted"},
		{"alone over the quota", true, 1, 20, 0, [2]int64{100, 100}, [2]int{},
			"20/s on a 10/s quota: one call in two admitted, and no backing off"},
		{"a client above what is left gets the rest", true, 5, 4, 8, [2]int64{40, 0}, [2]int{64, 16},
			"the client sees the quota less the other client's 40: 100 tokens + the burst of 5, less the part of one left at the end"},
		{"a client at the full quota is first to each token", true, 1, 4, 10, [2]int64{20, 20}, [2]int{81, 19},
			"the bucket is first come, first served: a client calling at each refill leaves the other client only the tokens of the instants it calls first; 20 + 81 is every token there was"},
		{"reads: a client above what is left gets the rest", false, 5, 4, 8, [2]int64{40, 0}, [2]int{64, 16},
			"the read bucket is shared the same way"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				opts := Options{WriteRPS: 10, WriteBurst: tt.burst, ReadRPS: 10, ReadBurst: tt.burst}
				op := opGet
				if tt.write {
					op = opUpdate
					opts.OtherClientsWriteRPS = tt.otherRPS
				} else {
					opts.OtherClientsReadRPS = tt.otherRPS
				}
				sim := newBubbleSim(t, opts)
				d := direct{t: t, sim: sim}
				id := engID(80)
				last := addEngagement(t, sim, id)
				start := time.Now()

				client := map[int]int{}
				if tt.clientRPS > 0 {
					period := time.Duration(float64(time.Second) / tt.clientRPS)
					for at := time.Duration(0); at < span; at += period {
						waitUntil(start.Add(at))
						var res result
						if tt.write {
							res = d.call(opUpdate, updateReq(id, "1", last, "CustomerProject", customerProject("T")))
							if res.status == http.StatusOK {
								var out struct{ EngagementLastModifiedAt string }
								res.decode(t, &out)
								last = out.EngagementLastModifiedAt
							}
						} else {
							res = d.call(opGet, map[string]string{"Catalog": "Sandbox", "Identifier": id})
						}
						client[res.status]++
					}
				}
				waitUntil(start.Add(span))

				st := sim.Stats()
				gotOther := [2]int64{st.OtherClients.ReadsAdmitted, st.OtherClients.ReadsThrottled}
				idle := [2]int64{st.OtherClients.WritesAdmitted, st.OtherClients.WritesThrottled}
				if tt.write {
					gotOther, idle = idle, gotOther
				}
				if gotOther != tt.wantOther {
					t.Errorf("other client's calls admitted, throttled: got %v, want %v (%s)", gotOther, tt.wantOther, tt.description)
				}
				if idle != [2]int64{} {
					t.Errorf("other client's calls on the other bucket: got %v, want none", idle)
				}
				gotClient := [2]int{client[http.StatusOK], client[http.StatusTooManyRequests]}
				if gotClient != tt.wantClient || len(client) > 2 {
					t.Errorf("client's calls by status: got %v, want %d x 200 and %d x 429 (%s)", client, tt.wantClient[0], tt.wantClient[1], tt.description)
				}
				// The other client is not in the API's counters, so
				// Admitted stays what the client's own calls spent.
				if got := st.Admitted(op); got != tt.wantClient[0] {
					t.Errorf("Stats.Admitted(%s): got %d, want %d, the client's own", op, got, tt.wantClient[0])
				}
				if got := st.Calls[op]["429"]; got != tt.wantClient[1] {
					t.Errorf("Stats.Calls[%s][429]: got %d, want %d, the client's own", op, got, tt.wantClient[1])
				}
			})
		})
	}
}

func TestOtherClientsSpendWriteBudget(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newBubbleSim(t, Options{WriteRPS: 10, WriteBudget: 10, BudgetWindow: time.Hour, OtherClientsWriteRPS: 4})
		d := direct{t: t, sim: sim}
		id := engID(81)
		last := addEngagement(t, sim, id)
		waitUntil(time.Now().Add(5 * time.Second))

		want := OtherClientsStats{WritesAdmitted: 10, WritesThrottled: 10}
		if got := sim.Stats().OtherClients; got != want {
			t.Errorf("after 20 writes on a budget of 10: got %+v, want %+v", got, want)
		}
		// The budget the other client spent is the account's: the client's
		// next write, once the bucket has a token again, finds it spent too.
		waitUntil(time.Now().Add(100 * time.Millisecond))
		wantError(t, d.call(opUpdate, updateReq(id, "1", last, "CustomerProject", customerProject("T"))),
			http.StatusPaymentRequired, "ServiceQuotaExceededException")
	})
}

func TestSetOtherClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// One write every 100 s: a new rate must not wait for its tick.
		sim := newBubbleSim(t, Options{Unlimited: true, OtherClientsWriteRPS: 0.01})
		start := time.Now()
		steps := []struct {
			at                time.Duration // from the start
			setWrite, setRead float64       // set at that time
			until             time.Duration // then wait until
			want              OtherClientsStats
		}{
			{0, 0.01, 0, time.Second, OtherClientsStats{}},
			{time.Second, 4, 2, 6 * time.Second, OtherClientsStats{WritesAdmitted: 20, ReadsAdmitted: 10}},
			{6 * time.Second, 0, 0, 60 * time.Second, OtherClientsStats{WritesAdmitted: 20, ReadsAdmitted: 10}},
			{60 * time.Second, 0, 2000, 61 * time.Second, OtherClientsStats{WritesAdmitted: 20, ReadsAdmitted: 2010}}, // above 1000/s: two per millisecond
		}
		for _, s := range steps {
			waitUntil(start.Add(s.at))
			sim.SetOtherClients(s.setWrite, s.setRead)
			if w, r := sim.OtherClients(); w != s.setWrite || r != s.setRead {
				t.Errorf("at %v: OtherClients() got %v, %v, want %v, %v", s.at, w, r, s.setWrite, s.setRead)
			}
			waitUntil(start.Add(s.until))
			if got := sim.Stats().OtherClients; got != s.want {
				t.Errorf("at %v, rates %v and %v set at %v: got %+v, want %+v", s.until, s.setWrite, s.setRead, s.at, got, s.want)
			}
		}
	})
}

func TestOtherClientsRateClamped(t *testing.T) {
	tests := []struct {
		in, want float64
	}{
		{-1, 0}, {math.NaN(), 0}, {0, 0}, {2.5, 2.5}, {2e6, maxSteadyRate}, {math.Inf(1), maxSteadyRate},
	}
	// In a bubble whose clock never moves, so that a million calls per
	// second cost nothing.
	synctest.Test(t, func(t *testing.T) {
		sim := newBubbleSim(t, Options{})
		for _, tt := range tests {
			sim.SetOtherClients(tt.in, tt.in)
			if w, r := sim.OtherClients(); w != tt.want || r != tt.want {
				t.Errorf("SetOtherClients(%v, %v): got %v, %v, want %v for both", tt.in, tt.in, w, r, tt.want)
			}
		}
	})
}

func TestAdminOtherClients(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true, OtherClientsReadRPS: 0.5})
	c := newClient(t, srv, nil)
	steps := []struct {
		name, method, body string
		want               otherClientsRates // in the answer and in force after it
	}{
		{"get with the options' rates", http.MethodGet, "", otherClientsRates{WriteRPS: 0, ReadRPS: 0.5}},
		{"put both", http.MethodPut, `{"writeRps":3,"readRps":1.5}`, otherClientsRates{WriteRPS: 3, ReadRPS: 1.5}},
		{"get after put", http.MethodGet, "", otherClientsRates{WriteRPS: 3, ReadRPS: 1.5}},
		{"put replaces both: an absent field is 0", http.MethodPut, `{"writeRps":2}`, otherClientsRates{WriteRPS: 2}},
		{"put none", http.MethodPut, `{}`, otherClientsRates{}},
	}
	for _, s := range steps {
		var body any
		if s.body != "" {
			body = s.body
		}
		res := c.admin(s.method, "/_sim/other-clients", body)
		var got otherClientsRates
		res.decode(t, &got)
		if res.status != http.StatusOK || got != s.want {
			t.Errorf("%s: got %s, want 200 with %+v", s.name, res, s.want)
		}
		if w, r := srv.OtherClients(); w != s.want.WriteRPS || r != s.want.ReadRPS {
			t.Errorf("%s: OtherClients() got %v, %v, want %v, %v", s.name, w, r, s.want.WriteRPS, s.want.ReadRPS)
		}
	}
}

func TestStatsJSONCountsOtherClients(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sim := newBubbleSim(t, Options{WriteRPS: 1, ReadRPS: 10, OtherClientsWriteRPS: 2, OtherClientsReadRPS: 5})
		waitUntil(time.Now().Add(10 * time.Second))
		sim.SetOtherClients(0, 0)

		res := direct{t: t, sim: sim}.admin(http.MethodGet, "/_sim/stats")
		var got struct {
			OtherClients map[string]int64 `json:"otherClients"`
		}
		res.decode(t, &got)
		// 2/s on a 1/s quota with burst 1: one in two admitted.
		want := map[string]int64{"writesAdmitted": 10, "writesThrottled": 10, "readsAdmitted": 50, "readsThrottled": 0}
		if len(got.OtherClients) != len(want) {
			t.Errorf("stats JSON: got otherClients %v, want the keys of %v", got.OtherClients, want)
		}
		for k, v := range want {
			if got.OtherClients[k] != v {
				t.Errorf("stats JSON otherClients.%s: got %d, want %d in %s", k, got.OtherClients[k], v, res.body)
			}
		}
	})
}

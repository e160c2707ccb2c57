package pcsim

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// BenchmarkUpdateEngagementContext measures signed writes over loopback
// HTTP, signature verification included, each goroutine writing its own
// engagement.
func BenchmarkUpdateEngagementContext(b *testing.B) {
	srv, err := NewServer(Options{Unlimited: true, Credentials: map[string]string{testKey: testSecret}})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	creds := aws.Credentials{AccessKeyID: testKey, SecretAccessKey: testSecret}
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var next atomic.Int64

	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		id := engID(int(next.Add(1)))
		if err := srv.AddEngagement(NewEngagement{Id: id, Catalog: "Sandbox", Contexts: []NewContext{{Id: "1", Type: "CustomerProject"}}}); err != nil {
			b.Error(err)
			return
		}
		st, _ := srv.Engagement(id)
		last := st.ModifiedAt
		for pb.Next() {
			body, err := json.Marshal(updateReq(id, "1", last, "CustomerProject", customerProject("Bench")))
			if err != nil {
				b.Error(err)
				return
			}
			req, err := signedRequest(b.Context(), srv.URL, opUpdate, body, creds, signingName, "us-east-1", srv.now())
			if err != nil {
				b.Error(err)
				return
			}
			resp, err := hc.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			var out struct{ EngagementLastModifiedAt string }
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("status %d: %v", resp.StatusCode, err)
				return
			}
			last = out.EngagementLastModifiedAt
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}

package updater

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"github.com/pcsync/pcsync/partnercentral"
)

// FuzzDecode checks that no body makes the decoder panic or disagree with
// itself: every body is either a valid job or an *InvalidJobError with at
// least one violation, and a valid job, written back as JSON, decodes to
// the same request, the same as the request's general UnmarshalJSON reads
// it.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{goodProject, goodLead, `{}`, `[]`, `null`, `{"Payload":{"Lead":{},"CustomerProject":{}}}`,
		`{"Catalog":"Sandbox","Catalog":"AWS"}`, "{\"Catalog\":\"\xff\"}", `{"a":[[[[[[[[[[]]]]]]]]]]}`} {
		f.Add([]byte(seed))
	}
	d := newTestDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		job, err := d.Decode(body)
		if err != nil {
			var inv *InvalidJobError
			if !errors.As(err, &inv) || len(inv.Violations) == 0 {
				t.Fatalf("got error %v (%T), want *InvalidJobError with violations", err, err)
			}
			return
		}
		// The fast read of a checked job and the request's general
		// UnmarshalJSON agree.
		var general partnercentral.UpdateEngagementContextInput
		if err := json.Unmarshal(body, &general); err != nil {
			t.Fatalf("a valid job does not unmarshal as a request: %v", err)
		}
		if !reflect.DeepEqual(job.Input, general) {
			t.Fatalf("the job's request differs from the general decoding:\n%#v\n%#v", job.Input, general)
		}
		again, err := json.Marshal(&job.Input)
		if err != nil {
			t.Fatalf("marshal a valid job: %v", err)
		}
		job2, err := d.Decode(again)
		if err != nil {
			t.Fatalf("a valid job written back no longer decodes: %v\n%s", err, again)
		}
		b1, _ := json.Marshal(&job.Input)
		b2, _ := json.Marshal(&job2.Input)
		if string(b1) != string(b2) {
			t.Fatalf("round trip changed the request:\n%s\n%s", b1, b2)
		}
	})
}

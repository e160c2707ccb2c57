package pcsim

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestUpdateEngagementContextSucceeds(t *testing.T) {
	clock := newFakeClock()
	srv := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	id := engID(1)
	before := addEngagement(t, srv.Sim, id)
	clock.Advance(time.Second)

	res := c.update(updateReq(id, "1", before, "CustomerProject", customerProject("Migration")))
	if res.status != http.StatusOK {
		t.Fatalf("got %s, want 200", res)
	}
	if got := res.header.Get("x-amzn-RequestId"); got == "" {
		t.Errorf("got no x-amzn-RequestId header")
	}
	var out map[string]string
	res.decode(t, &out)
	want := map[string]string{
		"EngagementId":             id,
		"EngagementArn":            "arn:aws:partnercentral:us-east-1::catalog/Sandbox/engagement/" + id,
		"EngagementLastModifiedAt": "2026-11-26T06:13:09.123Z",
		"ContextId":                "1",
	}
	for k, v := range want {
		if out[k] != v {
			t.Errorf("got %s %q, want %q", k, out[k], v)
		}
	}
	if len(out) != len(want) {
		t.Errorf("got fields %v, want exactly %v", out, want)
	}
	st, _ := srv.Engagement(id)
	if st.ModifiedAt != out["EngagementLastModifiedAt"] {
		t.Errorf("got state ModifiedAt %s, want the returned %s", st.ModifiedAt, out["EngagementLastModifiedAt"])
	}
	if st.Contexts[0].Writes != 1 || st.Contexts[1].Writes != 0 {
		t.Errorf("got writes %d and %d, want 1 and 0", st.Contexts[0].Writes, st.Contexts[1].Writes)
	}
	var payload map[string]map[string]map[string]string
	if err := json.Unmarshal(st.Contexts[0].Payload, &payload); err != nil {
		t.Fatalf("stored payload %s: %v", st.Contexts[0].Payload, err)
	}
	if got := payload["CustomerProject"]["Project"]["Title"]; got != "Migration" {
		t.Errorf("got stored title %q, want Migration", got)
	}

	// The returned timestamp is the one to send next: no re-read needed.
	res = c.update(updateReq(id, "1", out["EngagementLastModifiedAt"], "CustomerProject", customerProject("Second")))
	if res.status != http.StatusOK {
		t.Fatalf("second write with the returned timestamp: got %s, want 200", res)
	}
	if got := srv.Stats().Calls[opUpdate]["200"]; got != 2 {
		t.Errorf("got %d counted 200s, want 2", got)
	}
}

func TestModifiedAtStrictlyIncreases(t *testing.T) {
	clock := newFakeClock() // never moves in this test
	srv := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	id := engID(2)
	last := addEngagement(t, srv.Sim, id)
	prev, _ := time.Parse(time.RFC3339Nano, last)
	for i := range 5 {
		var next string
		if i%2 == 0 {
			res := c.update(updateReq(id, "1", last, "CustomerProject", customerProject("T")))
			if res.status != http.StatusOK {
				t.Fatalf("write %d: got %s, want 200", i, res)
			}
			var out struct{ EngagementLastModifiedAt string }
			res.decode(t, &out)
			next = out.EngagementLastModifiedAt
		} else {
			var err error
			if next, err = srv.Touch(id); err != nil {
				t.Fatalf("Touch: %v", err)
			}
		}
		tm, err := time.Parse(time.RFC3339Nano, next)
		if err != nil {
			t.Fatalf("ModifiedAt %q: %v", next, err)
		}
		if !tm.After(prev) {
			t.Fatalf("got ModifiedAt %s after %s, want strictly later", next, last)
		}
		if len(next) != len("2006-01-02T15:04:05.000Z") || tm.Nanosecond()%int(time.Millisecond) != 0 {
			t.Errorf("got ModifiedAt %s, want whole milliseconds", next)
		}
		if tm.Sub(prev) != time.Millisecond {
			t.Errorf("got ModifiedAt %s after %s with the clock standing still, want the next millisecond", next, last)
		}
		prev, last = tm, next
	}
}

func TestConflict(t *testing.T) {
	clock := newFakeClock()
	srv := newTestServer(t, Options{Unlimited: true, Now: clock.Now})
	c := newClient(t, srv, clock.Now)
	id := engID(3)
	addEngagement(t, srv.Sim, id) // ModifiedAt 2026-11-26T06:13:08.123Z

	// Each case that succeeds moves ModifiedAt on by a millisecond (the
	// clock stands still), so each is given relative to the state it meets.
	tests := []struct {
		name         string
		lastModified func(current time.Time) string
		wantStatus   int
	}{
		{"stale", func(c time.Time) string { return c.Add(-time.Second).Format(timeFormat) }, http.StatusConflict},
		{"previous millisecond", func(c time.Time) string { return c.Add(-time.Millisecond).Format(timeFormat) }, http.StatusConflict},
		{"next millisecond", func(c time.Time) string { return c.Add(time.Millisecond).Format(timeFormat) }, http.StatusConflict},
		{"the string sent", func(c time.Time) string { return c.Format(timeFormat) }, http.StatusOK},
		{"same instant, other offset", func(c time.Time) string {
			return c.In(time.FixedZone("", 2*3600)).Format("2006-01-02T15:04:05.000000000-07:00")
		}, http.StatusOK},
		{"smithy-go's form", func(c time.Time) string { return c.Format("2006-01-02T15:04:05.999Z") }, http.StatusOK},
		{"microseconds of the same millisecond", func(c time.Time) string {
			return c.Add(999 * time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
		}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, _ := srv.Engagement(id)
			cur, _ := time.Parse(time.RFC3339Nano, st.ModifiedAt)
			res := c.update(updateReq(id, "1", tt.lastModified(cur), "CustomerProject", customerProject("T")))
			if res.status != tt.wantStatus {
				t.Fatalf("got %s, want %d", res, tt.wantStatus)
			}
			after, _ := srv.Engagement(id)
			if tt.wantStatus == http.StatusConflict {
				wantError(t, res, http.StatusConflict, "ConflictException")
				if after.ModifiedAt != st.ModifiedAt || after.Contexts[0].Writes != st.Contexts[0].Writes {
					t.Errorf("got state %+v after a conflict, want it unchanged %+v", after, st)
				}
			}
		})
	}
}

func TestValidationListsEveryField(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(4)
	last := addEngagement(t, srv.Sim, id)

	bad := customerProject("")
	cp := bad["CustomerProject"].(map[string]any)
	cp["Customer"].(map[string]any)["CountryCode"] = "XX"
	cp["Project"].(map[string]any)["BusinessProblem"] = "too short"
	cp["Project"].(map[string]any)["TargetCompletionDate"] = "2026-02-30"
	req := updateReq(id, "1", last, "CustomerProject", bad)
	delete(req, "Catalog")

	res := c.update(req)
	wantError(t, res, http.StatusBadRequest, "ValidationException")
	var out struct {
		Reason    string
		ErrorList []struct{ FieldName, Message, Code string }
	}
	res.decode(t, &out)
	if out.Reason != "REQUEST_VALIDATION_FAILED" {
		t.Errorf("got Reason %q, want REQUEST_VALIDATION_FAILED", out.Reason)
	}
	want := map[string]string{
		"Catalog": "REQUIRED_FIELD_MISSING",
		"Payload.CustomerProject.Customer.CountryCode":         "INVALID_ENUM_VALUE",
		"Payload.CustomerProject.Project.Title":                "INVALID_VALUE",
		"Payload.CustomerProject.Project.BusinessProblem":      "INVALID_VALUE",
		"Payload.CustomerProject.Project.TargetCompletionDate": "INVALID_STRING_FORMAT",
	}
	got := map[string]string{}
	for _, e := range out.ErrorList {
		got[e.FieldName] = e.Code
		if e.Message == "" {
			t.Errorf("got an empty message for %s", e.FieldName)
		}
	}
	for f, code := range want {
		if got[f] != code {
			t.Errorf("got %s code %q, want %q (ErrorList %v)", f, got[f], code, out.ErrorList)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d fields %v, want %d", len(got), got, len(want))
	}
	if st, _ := srv.Engagement(id); st.Contexts[0].Writes != 0 || st.ModifiedAt != last {
		t.Errorf("got state %+v after a validation error, want it unchanged", st)
	}
}

func TestTypeErrors(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(5)
	last := addEngagement(t, srv.Sim, id)

	tests := []struct {
		name       string
		req        map[string]any
		wantReason string
		wantField  string
	}{
		// Context 1 is a CustomerProject context.
		{"Type does not match the context", updateReq(id, "1", last, "Lead", leadPayload("", nil)), "BUSINESS_VALIDATION_FAILED", "Type"},
		{"payload member does not match Type", updateReq(id, "1", last, "CustomerProject", leadPayload("", nil)), "REQUEST_VALIDATION_FAILED", "Payload"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.update(tt.req)
			wantError(t, res, http.StatusBadRequest, "ValidationException")
			var out struct {
				Reason    string
				ErrorList []struct{ FieldName, Code string }
			}
			res.decode(t, &out)
			if out.Reason != tt.wantReason || len(out.ErrorList) != 1 || out.ErrorList[0].FieldName != tt.wantField {
				t.Errorf("got %s, want Reason %s and one error for %s", res.body, tt.wantReason, tt.wantField)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(6)
	last := addEngagement(t, srv.Sim, id)
	if err := srv.AddEngagement(NewEngagement{Id: engID(7), Catalog: "AWS", Contexts: []NewContext{{Id: "1", Type: "CustomerProject"}}}); err != nil {
		t.Fatal(err)
	}

	wrongCatalog := updateReq(engID(7), "1", last, "CustomerProject", customerProject("T")) // engID(7) is in AWS
	tests := []struct {
		name string
		req  map[string]any
	}{
		{"unknown engagement", updateReq(engID(99), "1", last, "CustomerProject", customerProject("T"))},
		{"unknown context", updateReq(id, "9", last, "CustomerProject", customerProject("T"))},
		{"wrong catalog", wrongCatalog},
		{"ARN of another catalog", updateReq("arn:aws:partnercentral:us-east-1::catalog/AWS/engagement/"+id, "1", last, "CustomerProject", customerProject("T"))},
		{"malformed ARN", updateReq("arn:aws:s3:::bucket", "1", last, "CustomerProject", customerProject("T"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantError(t, c.update(tt.req), http.StatusNotFound, "ResourceNotFoundException")
		})
	}
	t.Run("GetEngagement unknown", func(t *testing.T) {
		wantError(t, c.get("Sandbox", engID(99)), http.StatusNotFound, "ResourceNotFoundException")
	})
	t.Run("GetEngagement wrong catalog", func(t *testing.T) {
		wantError(t, c.get("AWS", id), http.StatusNotFound, "ResourceNotFoundException")
	})
}

func TestARNIdentifiers(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(8)
	last := addEngagement(t, srv.Sim, id)
	for _, arn := range []string{
		"arn:aws:partnercentral:us-east-1::catalog/Sandbox/engagement/" + id,
		"arn:aws:partnercentral:us-west-2::catalog/Sandbox/engagement/" + id,
	} {
		t.Run(arn, func(t *testing.T) {
			res := c.update(updateReq(arn, "1", last, "CustomerProject", customerProject("T")))
			if res.status != http.StatusOK {
				t.Fatalf("update by ARN: got %s, want 200", res)
			}
			var out struct{ EngagementId, EngagementLastModifiedAt string }
			res.decode(t, &out)
			if out.EngagementId != id {
				t.Errorf("got EngagementId %s, want %s", out.EngagementId, id)
			}
			last = out.EngagementLastModifiedAt
			res = c.get("Sandbox", arn)
			if res.status != http.StatusOK {
				t.Fatalf("get by ARN: got %s, want 200", res)
			}
		})
	}
}

func TestProtocolErrors(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(9)
	addEngagement(t, srv.Sim, id)
	big := `{"Catalog":"Sandbox","Identifier":"` + id + `","Pad":"` + strings.Repeat("x", maxBodyBytes) + `"}`

	tests := []struct {
		name       string
		op         string
		body       string
		wantStatus int
		wantName   string
		wantOp     string
	}{
		{"unknown operation", "ListEngagements", `{}`, 400, "UnknownOperationException", opUnknown},
		{"not JSON", opGet, `{"Catalog":`, 400, "SerializationException", opGet},
		{"duplicate key", opGet, `{"Catalog":"Sandbox","Catalog":"AWS","Identifier":"` + id + `"}`, 400, "SerializationException", opGet},
		{"not an object", opGet, `[]`, 400, "SerializationException", opGet},
		{"over 2 MiB", opGet, big, 400, "ValidationException", opGet},
		{"unknown field", opGet, `{"Catalog":"Sandbox","Identifier":"` + id + `","Extra":1}`, 400, "ValidationException", opGet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := srv.Stats().Calls[tt.wantOp]["400"]
			wantError(t, c.call(tt.op, tt.body), tt.wantStatus, tt.wantName)
			if got := srv.Stats().Calls[tt.wantOp]["400"]; got != n+1 {
				t.Errorf("got %d counted 400s for %s, want %d", got, tt.wantOp, n+1)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		body := []byte(`{"Catalog":"Sandbox","Identifier":"` + id + `"}`)
		req, err := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Amz-Target", targetPrefix+opGet)
		if err := sign(t.Context(), req, body, c.creds, signingName, "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		res, err := c.send(req)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, res, http.StatusBadRequest, "SerializationException")
	})
}

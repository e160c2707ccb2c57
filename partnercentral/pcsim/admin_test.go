package pcsim

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAdminAPI(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	id := engID(70)
	create := map[string]any{
		"Id": id, "Catalog": "Sandbox", "Title": "Admin",
		"Contexts": []map[string]any{
			{"Id": "1", "Type": "CustomerProject", "Payload": customerProject("Seeded")},
			{"Id": "2", "Type": "Lead"},
		},
	}

	res := c.admin(http.MethodPost, "/_sim/engagements", create)
	if res.status != http.StatusCreated {
		t.Fatalf("create: got %s, want 201", res)
	}
	var st EngagementState
	res.decode(t, &st)
	if st.Id != id || st.Catalog != "Sandbox" || st.ModifiedAt == "" || len(st.Contexts) != 2 ||
		!strings.Contains(string(st.Contexts[0].Payload), `"Seeded"`) || st.Contexts[1].Payload != nil {
		t.Fatalf("create: got %+v, want the engagement with a seeded context 1", st)
	}

	// A write through the API shows in the admin state's write count.
	res = c.update(updateReq(id, "1", st.ModifiedAt, "CustomerProject", customerProject("Written")))
	if res.status != http.StatusOK {
		t.Fatalf("update: got %s", res)
	}
	res = c.admin(http.MethodGet, "/_sim/engagements/"+id, nil)
	var got EngagementState
	res.decode(t, &got)
	if res.status != http.StatusOK || got.Contexts[0].Writes != 1 || got.Contexts[1].Writes != 0 {
		t.Fatalf("get: got %s, want 200 with writes 1 and 0", res)
	}

	res = c.admin(http.MethodPost, "/_sim/engagements/"+id+"/touch", nil)
	var touched EngagementState
	res.decode(t, &touched)
	if res.status != http.StatusOK || touched.ModifiedAt <= got.ModifiedAt {
		t.Errorf("touch: got %s, want 200 and a ModifiedAt after %s", res, got.ModifiedAt)
	}

	res = c.admin(http.MethodGet, "/_sim/stats", nil)
	var stats struct {
		Calls         map[string]map[string]int `json:"calls"`
		OutsideWrites int                       `json:"outsideWrites"`
	}
	res.decode(t, &stats)
	if stats.Calls[opUpdate]["200"] != 1 || stats.OutsideWrites != 1 {
		t.Errorf("stats: got %s, want one 200 write and one outside write", res.body)
	}

	res = c.admin(http.MethodPut, "/_sim/faults", `{"Error5xx":0.25,"Latency":"250ms"}`)
	if res.status != http.StatusOK {
		t.Fatalf("put faults: got %s", res)
	}
	if f := srv.Faults(); f.Error5xx != 0.25 || f.Latency != 250*time.Millisecond {
		t.Errorf("got faults %+v after PUT, want Error5xx 0.25 and Latency 250ms", f)
	}
	res = c.admin(http.MethodGet, "/_sim/faults", nil)
	var faults map[string]any
	res.decode(t, &faults)
	if faults["Latency"] != "250ms" || faults["Error5xx"] != 0.25 {
		t.Errorf("get faults: got %s", res.body)
	}
	// A PUT replaces the whole set.
	if res = c.admin(http.MethodPut, "/_sim/faults", `{}`); res.status != http.StatusOK || srv.Faults() != (Faults{}) {
		t.Errorf("put empty faults: got %s and %+v, want 200 and no faults", res, srv.Faults())
	}
}

func TestAdminErrors(t *testing.T) {
	srv := newTestServer(t, Options{Unlimited: true})
	c := newClient(t, srv, nil)
	addEngagement(t, srv.Sim, engID(71))
	six := make([]map[string]any, 6)
	for i := range six {
		six[i] = map[string]any{"Id": string(rune('a' + i)), "Type": "Lead"}
	}
	badPayload := customerProject("T")
	badPayload["CustomerProject"].(map[string]any)["Customer"].(map[string]any)["CountryCode"] = "XX"

	tests := []struct {
		name, method, path string
		body               any
		wantStatus         int
		wantIn             string // a word the error message must contain
	}{
		{"exists", "POST", "/_sim/engagements", map[string]any{"Id": engID(71), "Catalog": "Sandbox"}, 409, "exists"},
		{"not JSON", "POST", "/_sim/engagements", `{"Id":`, 400, "JSON"},
		{"unknown field", "POST", "/_sim/engagements", `{"Id":"` + engID(72) + `","Catalog":"Sandbox","Owner":"x"}`, 400, "Owner"},
		{"bad id", "POST", "/_sim/engagements", map[string]any{"Id": "eng-1", "Catalog": "Sandbox"}, 400, "Id"},
		{"bad catalog", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Prod"}, 400, "Catalog"},
		{"six contexts", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Sandbox", "Contexts": six}, 400, "at most 5"},
		{"duplicate context", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Sandbox",
			"Contexts": []map[string]any{{"Id": "1", "Type": "Lead"}, {"Id": "1", "Type": "Lead"}}}, 400, "twice"},
		{"bad type", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Sandbox",
			"Contexts": []map[string]any{{"Id": "1", "Type": "Document"}}}, 400, "Type"},
		{"invalid payload", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Sandbox",
			"Contexts": []map[string]any{{"Id": "1", "Type": "CustomerProject", "Payload": badPayload}}}, 400, "CountryCode"},
		{"payload of another type", "POST", "/_sim/engagements", map[string]any{"Id": engID(72), "Catalog": "Sandbox",
			"Contexts": []map[string]any{{"Id": "1", "Type": "Lead", "Payload": customerProject("T")}}}, 400, "Type"},
		{"get unknown", "GET", "/_sim/engagements/" + engID(99), nil, 404, "not found"},
		{"touch unknown", "POST", "/_sim/engagements/" + engID(99) + "/touch", nil, 404, "not found"},
		{"bad faults", "PUT", "/_sim/faults", `{"Drop":2}`, 400, "Drop"},
		{"unknown route", "GET", "/_sim/nothing", nil, 404, "route"},
		{"negative other clients' writes", "PUT", "/_sim/other-clients", `{"writeRps":-1,"readRps":2}`, 400, "writeRps: -1 is negative"},
		{"negative other clients' reads", "PUT", "/_sim/other-clients", `{"writeRps":1,"readRps":-0.5}`, 400, "readRps: -0.5 is negative"},
		{"other clients' rate not a number", "PUT", "/_sim/other-clients", `{"readRps":"fast"}`, 400, "readRps: got a string, want a number"},
		{"other clients' rate too fast", "PUT", "/_sim/other-clients", `{"writeRps":2e6}`, 400, "writeRps"},
		{"other clients' misspelt field", "PUT", "/_sim/other-clients", `{"writeRate":1}`, 400, "writeRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.admin(tt.method, tt.path, tt.body)
			var out struct{ Error string }
			if err := json.Unmarshal(res.body, &out); err != nil || res.status != tt.wantStatus || !strings.Contains(out.Error, tt.wantIn) {
				t.Errorf("got %s, want %d with an error about %q", res, tt.wantStatus, tt.wantIn)
			}
		})
	}
	if _, ok := srv.Engagement(engID(72)); ok {
		t.Errorf("got engagement %s created by a failed request", engID(72))
	}
	if w, r := srv.OtherClients(); w != 0 || r != 0 {
		t.Errorf("got other clients at %v and %v after refused PUTs, want none", w, r)
	}
}

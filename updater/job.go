// This file owns the job format: decoding a message body and checking it
// against every rule of the API model before any call is made.

package updater

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/pcsync/pcsync/partnercentral"
	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// MaxBodyBytes is the largest job body: the largest SQS message.
const MaxBodyBytes = 1 << 20

// Job is a decoded, valid job: one UpdateEngagementContext call.
type Job struct {
	// Input is the request to send. EngagementLastModifiedAt is nil when
	// the job did not carry one; the updater then finds the current value.
	Input partnercentral.UpdateEngagementContextInput
	// SourceUpdatedAt is when the upstream record changed (zero when the
	// job did not say): when two jobs for one context meet, the newer wins.
	SourceUpdatedAt time.Time
}

// InvalidJobError lists every rule a job body breaks.
type InvalidJobError struct {
	Violations []schema.Violation
}

func (e *InvalidJobError) Error() string {
	parts := make([]string, len(e.Violations))
	for i, v := range e.Violations {
		parts[i] = v.String()
	}
	return "invalid job: " + strings.Join(parts, "; ")
}

// Decoder decodes and validates job bodies. It is safe for concurrent use.
type Decoder struct {
	shape *schema.Shape
}

// NewDecoder returns a decoder checking jobs against model.
//
// A job is the UpdateEngagementContext request with two changes:
// EngagementLastModifiedAt may be left out, and SourceUpdatedAt (RFC 3339)
// may be added.
func NewDecoder(model *schema.Model) *Decoder {
	shape := model.UpdateEngagementContextRequest.With(func(ms []schema.Member) []schema.Member {
		var ts *schema.Shape
		for i := range ms {
			if ms[i].Name == "EngagementLastModifiedAt" {
				ms[i].Required = false
				ts = ms[i].Shape
			}
		}
		return append(ms, schema.Member{Name: "SourceUpdatedAt", Shape: ts})
	})
	return &Decoder{shape: shape}
}

// Decode returns the job in body, or an *InvalidJobError naming every
// violation. It never panics, whatever the body holds.
func (d *Decoder) Decode(body []byte) (*Job, error) {
	if len(body) > MaxBodyBytes {
		return nil, invalid("", types.ValidationExceptionErrorCodeInvalidValue,
			"body is %d bytes; a job is at most %d bytes (1 MiB)", len(body), MaxBodyBytes)
	}
	doc, err := schema.Decode(body)
	if err != nil {
		return nil, invalid("", types.ValidationExceptionErrorCodeInvalidValue, "%v", err)
	}
	violations := schema.Check(d.shape, doc)
	violations = append(violations, payloadMatchesType(doc, violations)...)
	if len(violations) > 0 {
		return nil, &InvalidJobError{Violations: violations}
	}
	// The checks above leave exactly one known payload member and no
	// unknown or duplicate keys, so one pass into fixed fields reads the
	// job: cheaper than the request's general UnmarshalJSON, which
	// decodes the union in three passes.
	var wire struct {
		Catalog                  *string
		EngagementIdentifier     *string
		ContextIdentifier        *string
		EngagementLastModifiedAt *string
		Type                     types.EngagementContextType
		Payload                  struct {
			CustomerProject *types.CustomerProjectsContext
			Lead            *types.UpdateLeadContext
		}
	}
	if err := json.Unmarshal(body, &wire); err != nil {
		// The checks above accept only bodies that unmarshal; reaching
		// this is a bug in them, reported rather than hidden.
		return nil, invalid("", types.ValidationExceptionErrorCodeInvalidValue, "cannot decode the checked body: %v", err)
	}
	job := &Job{Input: partnercentral.UpdateEngagementContextInput{
		Catalog:                  wire.Catalog,
		EngagementIdentifier:     wire.EngagementIdentifier,
		ContextIdentifier:        wire.ContextIdentifier,
		EngagementLastModifiedAt: wire.EngagementLastModifiedAt,
		Type:                     wire.Type,
	}}
	switch {
	case wire.Payload.CustomerProject != nil:
		job.Input.Payload = &types.UpdateEngagementContextPayloadMemberCustomerProject{Value: *wire.Payload.CustomerProject}
	case wire.Payload.Lead != nil:
		job.Input.Payload = &types.UpdateEngagementContextPayloadMemberLead{Value: *wire.Payload.Lead}
	}
	if s, ok := doc.(map[string]any)["SourceUpdatedAt"].(string); ok {
		job.SourceUpdatedAt, _ = time.Parse(time.RFC3339Nano, s)
	}
	return job, nil
}

// payloadMatchesType checks the one rule that spans two fields: the payload
// member must be the one Type names. It stays quiet when either field is
// already reported, so one mistake gives one message.
func payloadMatchesType(doc any, found []schema.Violation) []schema.Violation {
	for _, v := range found {
		if v.Field == "" || v.Field == "Type" || v.Field == "Payload" ||
			(strings.HasPrefix(v.Field, "Payload.") && !strings.Contains(v.Field[len("Payload."):], ".")) {
			return nil
		}
	}
	obj := doc.(map[string]any)
	typ, _ := obj["Type"].(string)
	payload, _ := obj["Payload"].(map[string]any)
	for member, v := range payload {
		if v != nil && member != typ {
			return []schema.Violation{{
				Field: "Payload." + member,
				Rule:  fmt.Sprintf("does not match Type %q (a %s job carries Payload.%s)", typ, typ, typ),
				Code:  types.ValidationExceptionErrorCodeInvalidValue,
			}}
		}
	}
	return nil
}

func invalid(field string, code types.ValidationExceptionErrorCode, format string, args ...any) *InvalidJobError {
	return &InvalidJobError{Violations: []schema.Violation{{Field: field, Rule: fmt.Sprintf(format, args...), Code: code}}}
}

package pcsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// This file is a context's payload: how an UpdateEngagementContext payload
// is checked, applied to what the context holds, and shown by
// GetEngagement.

// payloadUpdate is a validated UpdateEngagementContext payload, ready to
// apply. Raw members are compact JSON as the client sent them.
type payloadUpdate struct {
	typ             types.EngagementContextType
	customerProject json.RawMessage
	lead            struct {
		qualificationStatus string
		customer            json.RawMessage
		interaction         json.RawMessage // nil when absent
	}
}

// newPayloadUpdate reads the members of a payload union that has passed
// schema.Check: exactly one member, matching typ.
func newPayloadUpdate(typ types.EngagementContextType, members map[string]json.RawMessage) (payloadUpdate, error) {
	u := payloadUpdate{typ: typ}
	raw, ok := members[string(typ)]
	if !ok || len(members) != 1 {
		return u, fmt.Errorf("payload must have exactly the member %s", typ)
	}
	switch typ {
	case types.EngagementContextTypeCustomerProject:
		u.customerProject = compact(raw)
	case types.EngagementContextTypeLead:
		var lead struct {
			QualificationStatus *string
			Customer            json.RawMessage
			Interaction         json.RawMessage
		}
		if err := json.Unmarshal(raw, &lead); err != nil {
			return u, fmt.Errorf("payload Lead: %w", err)
		}
		// The model's default for an absent status.
		u.lead.qualificationStatus = "Unqualified"
		if lead.QualificationStatus != nil {
			u.lead.qualificationStatus = *lead.QualificationStatus
		}
		u.lead.customer = compact(lead.Customer)
		if !isNull(lead.Interaction) {
			u.lead.interaction = compact(lead.Interaction)
		}
	default:
		return u, fmt.Errorf("unknown context type %q", typ)
	}
	return u, nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// compact returns raw without insignificant white space. raw is valid JSON
// (the request passed schema.Decode), so Compact cannot fail; if it did, the
// raw bytes are kept as they are.
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return slices.Clone(raw)
	}
	return b.Bytes()
}

// apply replaces the context's payload with u: a customer project is stored
// as sent; a lead's status and customer are replaced and its interaction,
// if any, appended, keeping the last maxInteractions. The caller holds the
// engagement's lock.
func (c *engagementContext) apply(u payloadUpdate) error {
	switch u.typ {
	case types.EngagementContextTypeCustomerProject:
		view, err := marshalView(map[string]json.RawMessage{"CustomerProject": u.customerProject})
		if err != nil {
			return err
		}
		c.view = view
	case types.EngagementContextTypeLead:
		next := &leadState{QualificationStatus: u.lead.qualificationStatus, Customer: u.lead.customer}
		var old []json.RawMessage
		if c.lead != nil {
			old = c.lead.Interactions
		}
		// A new slice each time: snapshots and views may share the old one.
		if u.lead.interaction != nil {
			if len(old) >= maxInteractions {
				old = old[len(old)-maxInteractions+1:]
			}
			next.Interactions = append(slices.Clone(old), u.lead.interaction)
		} else {
			next.Interactions = old
		}
		view, err := marshalView(map[string]*leadView{"Lead": next.view()})
		if err != nil {
			return err
		}
		c.lead, c.view = next, view
	default:
		return fmt.Errorf("unknown context type %q", u.typ)
	}
	return nil
}

// leadView is a Lead context in GetEngagement's form. Interactions is
// required by the model, so an empty list is written as [].
type leadView struct {
	QualificationStatus string            `json:"QualificationStatus"`
	Customer            json.RawMessage   `json:"Customer"`
	Interactions        []json.RawMessage `json:"Interactions"`
}

func (l *leadState) view() *leadView {
	v := &leadView{QualificationStatus: l.QualificationStatus, Customer: l.Customer, Interactions: l.Interactions}
	if v.Interactions == nil {
		v.Interactions = []json.RawMessage{}
	}
	return v
}

func marshalView(v any) (json.RawMessage, error) {
	b, err := marshalJSON(v)
	if err != nil {
		return nil, fmt.Errorf("marshal context payload: %w", err)
	}
	return bytes.TrimSuffix(b, []byte("\n")), nil
}

// marshalJSON encodes v without HTML escaping, so that stored payloads keep
// the characters the client sent.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

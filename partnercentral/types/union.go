package types

import (
	"encoding/json"
	"fmt"
)

// UpdateEngagementContextPayload is the payload union of
// UpdateEngagementContext: exactly one member, matching the request's Type.
//
// The following types satisfy this interface:
//
//	UpdateEngagementContextPayloadMemberCustomerProject
//	UpdateEngagementContextPayloadMemberLead
type UpdateEngagementContextPayload interface {
	isUpdateEngagementContextPayload()
}

// UpdateEngagementContextPayloadMemberCustomerProject carries a customer
// project context.
type UpdateEngagementContextPayloadMemberCustomerProject struct {
	Value CustomerProjectsContext
}

func (*UpdateEngagementContextPayloadMemberCustomerProject) isUpdateEngagementContextPayload() {}

// MarshalJSON writes the union as the object {"CustomerProject": {...}}.
func (m *UpdateEngagementContextPayloadMemberCustomerProject) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CustomerProject *CustomerProjectsContext
	}{&m.Value})
}

// UpdateEngagementContextPayloadMemberLead carries a lead context.
type UpdateEngagementContextPayloadMemberLead struct {
	Value UpdateLeadContext
}

func (*UpdateEngagementContextPayloadMemberLead) isUpdateEngagementContextPayload() {}

// MarshalJSON writes the union as the object {"Lead": {...}}.
func (m *UpdateEngagementContextPayloadMemberLead) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Lead *UpdateLeadContext
	}{&m.Value})
}

// EngagementContextPayload is the payload union of a context as
// GetEngagement returns it.
//
// The following types satisfy this interface:
//
//	EngagementContextPayloadMemberCustomerProject
//	EngagementContextPayloadMemberLead
//	UnknownUnionMember
type EngagementContextPayload interface {
	isEngagementContextPayload()
}

// EngagementContextPayloadMemberCustomerProject carries a customer project
// context.
type EngagementContextPayloadMemberCustomerProject struct {
	Value CustomerProjectsContext
}

func (*EngagementContextPayloadMemberCustomerProject) isEngagementContextPayload() {}

// MarshalJSON writes the union as the object {"CustomerProject": {...}}.
func (m *EngagementContextPayloadMemberCustomerProject) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		CustomerProject *CustomerProjectsContext
	}{&m.Value})
}

// EngagementContextPayloadMemberLead carries a lead context.
type EngagementContextPayloadMemberLead struct {
	Value LeadContext
}

func (*EngagementContextPayloadMemberLead) isEngagementContextPayload() {}

// MarshalJSON writes the union as the object {"Lead": {...}}.
func (m *EngagementContextPayloadMemberLead) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		Lead *LeadContext
	}{&m.Value})
}

// UnknownUnionMember is a union member this client does not know, kept as
// the service sent it so that nothing is silently dropped.
type UnknownUnionMember struct {
	Tag   string
	Value []byte
}

func (*UnknownUnionMember) isEngagementContextPayload()       {}
func (*UnknownUnionMember) isUpdateEngagementContextPayload() {}

// MarshalJSON writes the member back under its own tag.
func (m *UnknownUnionMember) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]json.RawMessage{m.Tag: m.Value})
}

// UnmarshalJSON reads a context, choosing the payload member by its key.
func (d *EngagementContextDetails) UnmarshalJSON(data []byte) error {
	var wire struct {
		Id      *string
		Type    EngagementContextType
		Payload map[string]json.RawMessage
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	d.Id, d.Type, d.Payload = wire.Id, wire.Type, nil
	if len(wire.Payload) > 1 {
		return fmt.Errorf("engagement context payload: union has %d members, want 1", len(wire.Payload))
	}
	for tag, raw := range wire.Payload {
		switch tag {
		case "CustomerProject":
			m := &EngagementContextPayloadMemberCustomerProject{}
			if err := json.Unmarshal(raw, &m.Value); err != nil {
				return fmt.Errorf("engagement context payload %s: %w", tag, err)
			}
			d.Payload = m
		case "Lead":
			m := &EngagementContextPayloadMemberLead{}
			if err := json.Unmarshal(raw, &m.Value); err != nil {
				return fmt.Errorf("engagement context payload %s: %w", tag, err)
			}
			d.Payload = m
		default:
			d.Payload = &UnknownUnionMember{Tag: tag, Value: append([]byte(nil), raw...)}
		}
	}
	return nil
}

// UnmarshalUpdateEngagementContextPayload reads an UpdateEngagementContext
// payload union from its JSON object form.
func UnmarshalUpdateEngagementContextPayload(data []byte) (UpdateEngagementContextPayload, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, err
	}
	if len(members) != 1 {
		return nil, fmt.Errorf("payload union has %d members, want exactly 1", len(members))
	}
	var tag string
	var raw json.RawMessage
	for tag, raw = range members {
	}
	switch tag {
	case "CustomerProject":
		m := &UpdateEngagementContextPayloadMemberCustomerProject{}
		if err := json.Unmarshal(raw, &m.Value); err != nil {
			return nil, fmt.Errorf("payload %s: %w", tag, err)
		}
		return m, nil
	case "Lead":
		m := &UpdateEngagementContextPayloadMemberLead{}
		if err := json.Unmarshal(raw, &m.Value); err != nil {
			return nil, fmt.Errorf("payload %s: %w", tag, err)
		}
		return m, nil
	default:
		return &UnknownUnionMember{Tag: tag, Value: append([]byte(nil), raw...)}, nil
	}
}

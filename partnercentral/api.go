package partnercentral

import (
	"context"
	"encoding/json"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// UpdateEngagementContextInput is the request of UpdateEngagementContext.
// All fields are required; Payload must hold the member Type names.
type UpdateEngagementContextInput struct {
	Catalog              *string `json:"Catalog,omitempty"`
	EngagementIdentifier *string `json:"EngagementIdentifier,omitempty"`
	ContextIdentifier    *string `json:"ContextIdentifier,omitempty"`
	// EngagementLastModifiedAt is the engagement's ModifiedAt as the
	// service last sent it, byte for byte.
	EngagementLastModifiedAt *string                              `json:"EngagementLastModifiedAt,omitempty"`
	Type                     types.EngagementContextType          `json:"Type,omitempty"`
	Payload                  types.UpdateEngagementContextPayload `json:"Payload,omitempty"`
}

// UpdateEngagementContextOutput is the answer of UpdateEngagementContext.
type UpdateEngagementContextOutput struct {
	EngagementId  *string `json:"EngagementId,omitempty"`
	EngagementArn *string `json:"EngagementArn,omitempty"`
	// EngagementLastModifiedAt is the engagement's new ModifiedAt: the
	// value to send with the next update of the same engagement.
	EngagementLastModifiedAt *string `json:"EngagementLastModifiedAt,omitempty"`
	ContextId                *string `json:"ContextId,omitempty"`
}

// UpdateEngagementContext replaces one context of an engagement. It fails
// with *types.ConflictException when EngagementLastModifiedAt is not the
// engagement's current ModifiedAt. The call is not idempotent: a write whose
// response was lost comes back as a conflict when repeated.
func (c *Client) UpdateEngagementContext(ctx context.Context, params *UpdateEngagementContextInput, optFns ...func(*Options)) (*UpdateEngagementContextOutput, error) {
	if params == nil {
		params = &UpdateEngagementContextInput{}
	}
	out := &UpdateEngagementContextOutput{}
	if err := c.invoke(ctx, "UpdateEngagementContext", params, out, optFns); err != nil {
		return nil, err
	}
	return out, nil
}

// GetEngagementInput is the request of GetEngagement.
type GetEngagementInput struct {
	Catalog    *string `json:"Catalog,omitempty"`
	Identifier *string `json:"Identifier,omitempty"`
}

// GetEngagementOutput is the answer of GetEngagement.
type GetEngagementOutput struct {
	Id          *string `json:"Id,omitempty"`
	Arn         *string `json:"Arn,omitempty"`
	Title       *string `json:"Title,omitempty"`
	Description *string `json:"Description,omitempty"`
	CreatedAt   *string `json:"CreatedAt,omitempty"`
	CreatedBy   *string `json:"CreatedBy,omitempty"`
	MemberCount *int32  `json:"MemberCount,omitempty"`
	// ModifiedAt is the engagement-level last-modified time, exactly as
	// sent: the EngagementLastModifiedAt for the next update.
	ModifiedAt *string                          `json:"ModifiedAt,omitempty"`
	ModifiedBy *string                          `json:"ModifiedBy,omitempty"`
	Contexts   []types.EngagementContextDetails `json:"Contexts,omitempty"`
}

// GetEngagement reads an engagement with its contexts.
func (c *Client) GetEngagement(ctx context.Context, params *GetEngagementInput, optFns ...func(*Options)) (*GetEngagementOutput, error) {
	if params == nil {
		params = &GetEngagementInput{}
	}
	out := &GetEngagementOutput{}
	if err := c.invoke(ctx, "GetEngagement", params, out, optFns); err != nil {
		return nil, err
	}
	return out, nil
}

// UnmarshalJSON reads the request from its wire form, choosing the payload
// union member by its key. It lets a job carry the request as its body.
func (in *UpdateEngagementContextInput) UnmarshalJSON(data []byte) error {
	var wire struct {
		Catalog                  *string
		EngagementIdentifier     *string
		ContextIdentifier        *string
		EngagementLastModifiedAt *string
		Type                     types.EngagementContextType
		Payload                  json.RawMessage
	}
	if err := json.Unmarshal(data, &wire); err != nil {
		return err
	}
	*in = UpdateEngagementContextInput{
		Catalog:                  wire.Catalog,
		EngagementIdentifier:     wire.EngagementIdentifier,
		ContextIdentifier:        wire.ContextIdentifier,
		EngagementLastModifiedAt: wire.EngagementLastModifiedAt,
		Type:                     wire.Type,
	}
	if len(wire.Payload) == 0 || string(wire.Payload) == "null" {
		return nil
	}
	p, err := types.UnmarshalUpdateEngagementContextPayload(wire.Payload)
	if err != nil {
		return err
	}
	in.Payload = p
	return nil
}

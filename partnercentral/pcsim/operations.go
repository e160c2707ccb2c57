package pcsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"time"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// operation is what an X-Amz-Target names.
type operation struct {
	name  string // the operation, or "unknown"
	known bool
	write bool // counts against the write quotas
}

const (
	opUpdate  = "UpdateEngagementContext"
	opGet     = "GetEngagement"
	opUnknown = "unknown"
)

func parseOperation(target string) operation {
	switch target {
	case targetPrefix + opUpdate:
		return operation{name: opUpdate, known: true, write: true}
	case targetPrefix + opGet:
		return operation{name: opGet, known: true}
	}
	return operation{name: opUnknown}
}

// decodeRequest checks the content type, parses the body strictly, checks it
// against the model's shape and, when valid, unmarshals it into out. extra
// adds checks the generic walk cannot make.
func (s *Sim) decodeRequest(r *http.Request, body []byte, shape *schema.Shape, out any, extra func(doc map[string]any) *schema.Violation) *apiError {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != jsonContent {
		return serializationError("Content-Type must be %s", jsonContent)
	}
	tree, err := schema.Decode(body)
	if err != nil {
		return serializationError("%v", err)
	}
	doc, ok := tree.(map[string]any)
	if !ok {
		return serializationError("the request body must be a JSON object")
	}
	vs := schema.Check(shape, doc)
	if extra != nil {
		if v := extra(doc); v != nil {
			vs = append(vs, *v)
		}
	}
	if len(vs) > 0 {
		return requestValidationError(vs)
	}
	if err := json.Unmarshal(body, out); err != nil {
		// Checked documents always fit the request structs; a failure here
		// is the simulator's own bug, reported as the service would.
		return newError(http.StatusInternalServerError, errInternal, "decode checked request: %v", err)
	}
	return nil
}

// payloadTypeViolation checks what the model's generic walk cannot: the
// payload union's member is the one Type names.
func payloadTypeViolation(typ string, doc any) *schema.Violation {
	payload, ok := doc.(map[string]any)
	if !ok || len(payload) != 1 || !slices.Contains(types.EngagementContextType("").Values(), types.EngagementContextType(typ)) {
		return nil // the schema reports these
	}
	for member, v := range payload {
		if v == nil || member == typ {
			return nil
		}
		if !slices.Contains(types.EngagementContextType("").Values(), types.EngagementContextType(member)) {
			return nil // an unknown member: the schema reports it
		}
		return &schema.Violation{
			Field: "Payload",
			Rule:  fmt.Sprintf("sets %s but Type is %s; the payload's member must match Type", member, typ),
			Code:  types.ValidationExceptionErrorCodeInvalidValue,
		}
	}
	return nil
}

type updateRequest struct {
	Catalog                  string
	EngagementIdentifier     string
	ContextIdentifier        string
	EngagementLastModifiedAt string
	Type                     types.EngagementContextType
	Payload                  map[string]json.RawMessage
}

type updateResponse struct {
	EngagementId             string
	EngagementArn            string
	EngagementLastModifiedAt string
	ContextId                string
}

// updateEngagementContext validates, looks up, checks the type and the
// timestamp, then applies the payload and bumps ModifiedAt.
func (s *Sim) updateEngagementContext(r *http.Request, body []byte, rep *reply) {
	var req updateRequest
	extra := func(doc map[string]any) *schema.Violation {
		typ, _ := doc["Type"].(string)
		return payloadTypeViolation(typ, doc["Payload"])
	}
	if e := s.decodeRequest(r, body, s.model.UpdateEngagementContextRequest, &req, extra); e != nil {
		rep.err = e
		return
	}
	e, apiErr := s.lookup(req.EngagementIdentifier, req.Catalog)
	if apiErr != nil {
		rep.err = apiErr
		return
	}
	rep.engagement = e.id
	u, err := newPayloadUpdate(req.Type, req.Payload)
	if err != nil {
		rep.err = requestValidationError([]schema.Violation{{Field: "Payload", Rule: err.Error(), Code: types.ValidationExceptionErrorCodeInvalidValue}})
		return
	}
	// The schema checked the format, so the parse cannot fail.
	lastModified, _ := time.Parse(time.RFC3339Nano, req.EngagementLastModifiedAt)

	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.context(req.ContextIdentifier)
	if c == nil {
		rep.err = notFoundError("Context %s not found in engagement %s", req.ContextIdentifier, e.id)
		return
	}
	if c.typ != req.Type {
		rep.err = businessValidationError("Type",
			fmt.Sprintf("context %s of engagement %s is a %s context, not %s", c.id, e.id, c.typ, req.Type),
			types.ValidationExceptionErrorCodeInvalidValue)
		return
	}
	// Instants are compared, not strings: "+00:00" matches "Z", and
	// smithy-go's "…08.12Z" matches "…08.120Z".
	if !sameVersion(lastModified, e.modifiedAt) {
		rep.err = conflictError(e.id)
		return
	}
	if err := c.apply(u); err != nil {
		rep.err = newError(http.StatusInternalServerError, errInternal, "apply: %v", err)
		return
	}
	c.writes++
	if s.onWrite != nil {
		s.onWrite(e.id, c.id, bytes.Clone(c.view))
	}
	t := e.bump(s.now(), partnerAccount)
	rep.body = updateResponse{
		EngagementId:             e.id,
		EngagementArn:            e.arn,
		EngagementLastModifiedAt: formatTime(t),
		ContextId:                c.id,
	}
}

type getRequest struct {
	Catalog    string
	Identifier string
}

type getResponse struct {
	Id          string
	Arn         string
	Title       string
	Description string
	CreatedAt   string
	CreatedBy   string
	MemberCount int
	ModifiedAt  string
	ModifiedBy  string
	Contexts    []contextResponse
}

type contextResponse struct {
	Id      string
	Type    types.EngagementContextType
	Payload json.RawMessage `json:",omitempty"`
}

func (s *Sim) getEngagement(r *http.Request, body []byte, rep *reply) {
	var req getRequest
	if e := s.decodeRequest(r, body, s.model.GetEngagementRequest, &req, nil); e != nil {
		rep.err = e
		return
	}
	e, apiErr := s.lookup(req.Identifier, req.Catalog)
	if apiErr != nil {
		rep.err = apiErr
		return
	}
	rep.engagement = e.id
	out := getResponse{
		Id:          e.id,
		Arn:         e.arn,
		Title:       e.title,
		Description: "Simulated engagement " + e.id,
		CreatedAt:   formatTime(e.createdAt),
		CreatedBy:   partnerAccount,
		MemberCount: 2,
		Contexts:    make([]contextResponse, len(e.contexts)),
	}
	// Views are never changed in place, so they may be encoded after the
	// lock is released.
	e.mu.Lock()
	out.ModifiedAt = formatTime(e.modifiedAt)
	out.ModifiedBy = e.modifiedBy
	for i, c := range e.contexts {
		out.Contexts[i] = contextResponse{Id: c.id, Type: c.typ, Payload: c.view}
	}
	e.mu.Unlock()
	rep.body = out
}

// lookup finds the engagement an identifier names in the request's catalog.
func (s *Sim) lookup(ident, catalog string) (*engagement, *apiError) {
	id, ok := resolveIdentifier(ident, catalog)
	if !ok {
		return nil, notFoundError("Engagement %s not found in catalog %s", ident, catalog)
	}
	e := s.store.get(id)
	if e == nil || e.catalog != catalog {
		return nil, notFoundError("Engagement %s not found in catalog %s", id, catalog)
	}
	return e, nil
}

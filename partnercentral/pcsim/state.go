package pcsim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pcsync/pcsync/partnercentral/schema"
	"github.com/pcsync/pcsync/partnercentral/types"
)

// NewEngagement is an engagement to create with AddEngagement or the admin
// API.
type NewEngagement struct {
	Id      string // eng- and 14 of [0-9a-z]
	Catalog string // AWS or Sandbox
	Title   string // at most 40 characters; "" -> the id
	// Contexts are at most 5, with distinct ids of 1 to 3 characters.
	Contexts []NewContext
}

// NewContext is one context of a NewEngagement.
type NewContext struct {
	Id   string
	Type types.EngagementContextType
	// Payload is optional: an UpdateEngagementContext payload union object
	// ({"CustomerProject":{...}} or {"Lead":{...}}) applied at creation,
	// without counting a write.
	Payload json.RawMessage `json:",omitempty"`
}

// EngagementState is a snapshot of an engagement.
type EngagementState struct {
	Id         string
	Catalog    string
	Title      string
	CreatedAt  string
	ModifiedAt string
	ModifiedBy string
	Contexts   []ContextState
}

// ContextState is a snapshot of one context.
type ContextState struct {
	Id   string
	Type types.EngagementContextType
	// Payload is the context as GetEngagement returns it, or nil when the
	// context has no payload yet.
	Payload json.RawMessage `json:",omitempty"`
	// Writes counts the successful UpdateEngagementContext calls the
	// context received.
	Writes int
}

// store holds the engagements. The map's lock is held only to find an
// engagement; each engagement has its own lock, so writes to different
// engagements never wait for one another.
type store struct {
	mu   sync.RWMutex
	byID map[string]*engagement
	ids  []string // in creation order, for the outside writer's picks
}

func (st *store) get(id string) *engagement {
	st.mu.RLock()
	defer st.mu.RUnlock()
	return st.byID[id]
}

func (st *store) add(e *engagement) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.byID[e.id]; ok {
		return fmt.Errorf("add %s: %w", e.id, ErrExists)
	}
	st.byID[e.id] = e
	st.ids = append(st.ids, e.id)
	return nil
}

// pick returns the engagement at position i modulo the count, or nil when
// there is none; pickFn chooses i from the count.
func (st *store) pick(pickFn func(n int) int) *engagement {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if len(st.ids) == 0 {
		return nil
	}
	return st.byID[st.ids[pickFn(len(st.ids))]]
}

// engagement is one simulated engagement. id, catalog, title, arn,
// createdAt and the contexts slice never change after creation; mu guards
// everything else, including the contexts' fields.
type engagement struct {
	id, catalog, title, arn string
	createdAt               time.Time

	mu         sync.Mutex
	modifiedAt time.Time
	modifiedBy string
	contexts   []*engagementContext
}

// engagementContext is one context of an engagement.
type engagementContext struct {
	id  string
	typ types.EngagementContextType

	lead   *leadState      // the lead, for Lead contexts with a payload
	view   json.RawMessage // the payload as GetEngagement returns it; nil when none
	writes int
}

// leadState is a Lead context as GetEngagement returns it. Its raw members
// are never changed in place, so a view built from them may be shared.
type leadState struct {
	QualificationStatus string
	Customer            json.RawMessage
	Interactions        []json.RawMessage
}

func (e *engagement) context(id string) *engagementContext {
	for _, c := range e.contexts {
		if c.id == id {
			return c
		}
	}
	return nil
}

// bump moves ModifiedAt to now, or one millisecond past its previous value
// when the clock has not moved that far, so that it strictly increases per
// engagement by at least a millisecond: each version has a millisecond of
// its own, and a client that keeps only milliseconds (as the official SDKs
// do) still names exactly one version. The caller holds e.mu.
func (e *engagement) bump(now time.Time, by string) time.Time {
	e.modifiedAt = nextModifiedAt(e.modifiedAt, now)
	e.modifiedBy = by
	return e.modifiedAt
}

// nextModifiedAt is now to the millisecond, or prev plus one millisecond
// when that is later. prev is always a whole millisecond.
func nextModifiedAt(prev, now time.Time) time.Time {
	t := now.UTC().Truncate(time.Millisecond)
	if !t.After(prev) {
		t = prev.Add(time.Millisecond)
	}
	return t
}

// sameVersion reports whether an EngagementLastModifiedAt names the version
// whose ModifiedAt is current: the same instant to the millisecond. Digits
// below the millisecond are dropped, not rounded, as the SDKs drop them
// when they read a timestamp; ModifiedAt values are whole milliseconds at
// least a millisecond apart, so no other version can match.
func sameVersion(lastModified, current time.Time) bool {
	return lastModified.Truncate(time.Millisecond).Equal(current)
}

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

// snapshot copies the engagement's state. The caller holds e.mu.
func (e *engagement) snapshot() EngagementState {
	st := EngagementState{
		Id:         e.id,
		Catalog:    e.catalog,
		Title:      e.title,
		CreatedAt:  formatTime(e.createdAt),
		ModifiedAt: formatTime(e.modifiedAt),
		ModifiedBy: e.modifiedBy,
		Contexts:   make([]ContextState, len(e.contexts)),
	}
	for i, c := range e.contexts {
		st.Contexts[i] = ContextState{Id: c.id, Type: c.typ, Payload: bytes.Clone(c.view), Writes: c.writes}
	}
	return st
}

// AddEngagement creates an engagement, its contexts and their optional
// payloads. Its CreatedAt and ModifiedAt are the clock's now. It returns an
// error wrapping ErrInvalid when ne breaks the model's rules, ErrExists when
// the id is taken.
func (s *Sim) AddEngagement(ne NewEngagement) error {
	e, err := s.newEngagement(ne)
	if err != nil {
		return err
	}
	return s.store.add(e)
}

func (s *Sim) newEngagement(ne NewEngagement) (*engagement, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
	}
	if !validEngagementID(ne.Id) {
		return nil, invalid("Id %q is not eng- and 14 lower-case letters or digits", ne.Id)
	}
	if ne.Catalog != "AWS" && ne.Catalog != "Sandbox" {
		return nil, invalid("Catalog %q is not AWS or Sandbox", ne.Catalog)
	}
	title := ne.Title
	if title == "" {
		title = ne.Id
	}
	if n := utf8.RuneCountInString(title); n > maxTitle {
		return nil, invalid("Title is %d characters; at most %d", n, maxTitle)
	}
	if len(ne.Contexts) > maxContexts {
		return nil, invalid("%d contexts; an engagement has at most %d", len(ne.Contexts), maxContexts)
	}
	now := s.now()
	created := nextModifiedAt(time.Time{}, now)
	e := &engagement{
		id:         ne.Id,
		catalog:    ne.Catalog,
		title:      title,
		arn:        engagementARN(ne.Catalog, ne.Id),
		createdAt:  created,
		modifiedAt: created,
		modifiedBy: partnerAccount,
	}
	for i, nc := range ne.Contexts {
		if n := utf8.RuneCountInString(nc.Id); n < 1 || n > 3 {
			return nil, invalid("Contexts[%d].Id %q must be 1 to 3 characters", i, nc.Id)
		}
		if e.context(nc.Id) != nil {
			return nil, invalid("Contexts[%d].Id %q is used twice", i, nc.Id)
		}
		if !slices.Contains(nc.Type.Values(), nc.Type) {
			return nil, invalid("Contexts[%d].Type %q is not CustomerProject or Lead", i, nc.Type)
		}
		c := &engagementContext{id: nc.Id, typ: nc.Type}
		if !isNull(nc.Payload) {
			u, err := s.seedPayload(nc.Type, nc.Payload)
			if err != nil {
				return nil, invalid("Contexts[%d].Payload: %v", i, err)
			}
			if err := c.apply(u); err != nil {
				return nil, invalid("Contexts[%d].Payload: %v", i, err)
			}
		}
		e.contexts = append(e.contexts, c)
	}
	return e, nil
}

// seedPayload checks a creation payload with the same rules as an
// UpdateEngagementContext payload.
func (s *Sim) seedPayload(typ types.EngagementContextType, raw json.RawMessage) (payloadUpdate, error) {
	doc, err := schema.Decode(raw)
	if err != nil {
		return payloadUpdate{}, err
	}
	shape := s.model.UpdateEngagementContextRequest.Member("Payload").Shape
	vs := schema.Check(shape, doc)
	if v := payloadTypeViolation(string(typ), doc); v != nil {
		vs = append(vs, *v)
	}
	if len(vs) > 0 {
		msgs := make([]string, len(vs))
		for i, v := range vs {
			msgs[i] = v.String()
		}
		return payloadUpdate{}, fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return payloadUpdate{}, err
	}
	return newPayloadUpdate(typ, members)
}

// Engagement returns a snapshot of the engagement, or false when there is
// none with this id.
func (s *Sim) Engagement(id string) (EngagementState, bool) {
	e := s.store.get(id)
	if e == nil {
		return EngagementState{}, false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.snapshot(), true
}

// Touch makes one outside write to the engagement, as another user editing
// it would: ModifiedAt moves on, the contexts stay as they are. It returns
// the new ModifiedAt, or an error wrapping ErrNotFound.
func (s *Sim) Touch(id string) (string, error) {
	e := s.store.get(id)
	if e == nil {
		return "", fmt.Errorf("touch %s: %w", id, ErrNotFound)
	}
	return s.touch(e), nil
}

func (s *Sim) touch(e *engagement) string {
	e.mu.Lock()
	t := e.bump(s.now(), outsideAccount)
	e.mu.Unlock()
	s.stats.outsideWrite()
	return formatTime(t)
}

// validEngagementID reports whether id is eng- and 14 of [0-9a-z].
func validEngagementID(id string) bool {
	rest, ok := strings.CutPrefix(id, "eng-")
	if !ok || len(rest) != 14 {
		return false
	}
	for _, r := range rest {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'z') {
			return false
		}
	}
	return true
}

func engagementARN(catalog, id string) string {
	return "arn:aws:partnercentral:" + arnRegion + "::catalog/" + catalog + "/engagement/" + id
}

// resolveIdentifier returns the engagement id an EngagementIdentifier or
// Identifier names: the id itself, or the trailing id of an ARN
// arn:aws:partnercentral:<region>:<account, usually empty>:catalog/<Catalog>/engagement/<id>.
// An ARN of another catalog resolves to nothing, as the engagement is not
// in the request's catalog.
func resolveIdentifier(ident, catalog string) (string, bool) {
	if !strings.HasPrefix(ident, "arn:") {
		if !validEngagementID(ident) {
			return "", false
		}
		return ident, true
	}
	parts := strings.SplitN(ident, ":", 6)
	if len(parts) != 6 || parts[1] != "aws" || parts[2] != "partnercentral" || parts[3] == "" {
		return "", false
	}
	res := strings.Split(parts[5], "/")
	if len(res) != 4 || res[0] != "catalog" || res[1] != catalog || res[2] != "engagement" || !validEngagementID(res[3]) {
		return "", false
	}
	return res[3], true
}

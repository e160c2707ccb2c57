// Package schema holds the Partner Central Selling API model's rules for the
// requests pcsync sends, and checks JSON documents against them.
//
// The shapes (shapes.go) are generated from the Smithy model by
// internal/modelgen; this package walks a decoded JSON document along a
// shape and reports every violation it finds, not only the first, each as
// "field path: rule". Both the job decoder (package updater) and the
// simulator (package partnercentral/pcsim) use it, so a job that passes here
// is one the service's model accepts.
//
// It does not own the typed request structs (package partnercentral and
// partnercentral/types) nor any rule that needs the service's state, such as
// whether an engagement exists.
package schema

//go:generate go run ../../internal/modelgen -model ../../../shared/api/partnercentral-selling-2022-07-26.json -out ../..

import (
	"regexp"
)

// Kind is the JSON form a shape takes.
type Kind uint8

// Shape kinds.
const (
	String Kind = iota + 1
	Timestamp
	Structure
	Union
	List
)

func (k Kind) String() string {
	switch k {
	case String, Timestamp:
		return "a string"
	case Structure, Union:
		return "an object"
	case List:
		return "an array"
	}
	return "a value"
}

// Shape is one node of the model: what a JSON value must look like.
// Shapes are built once by New and never change afterwards, so one Model may
// be shared by any number of goroutines.
type Shape struct {
	Name    string   // the model's shape name, or the member's for member-level rules
	Kind    Kind     //
	Members []Member // Structure and Union members, in model order
	Item    *Shape   // List element
	Enum    []string // allowed values, when the shape is an enum
	Desc    string   // what a valid value is, for messages ("an ISO 3166 alpha-2 code")
	// MinLen and MaxLen bound a string's length in characters, or a list's
	// in items; -1 means no bound.
	MinLen, MaxLen int
	Pattern        *regexp.Regexp // the model's pattern, length look-aheads moved to MinLen/MaxLen
	Date           bool           // the value must also be a real calendar date (YYYY-MM-DD)
	// Sensitive values (names, e-mail addresses, phone numbers: the model's
	// sensitive trait) are never quoted in a violation, so that reasons can
	// be logged without leaking personal data.
	Sensitive bool
}

// Member is a named field of a structure or union.
type Member struct {
	Name     string
	Shape    *Shape
	Required bool
}

// Member returns the member called name, or nil.
func (s *Shape) Member(name string) *Member {
	for i := range s.Members {
		if s.Members[i].Name == name {
			return &s.Members[i]
		}
	}
	return nil
}

// With returns a copy of a structure shape whose members are changed by
// edit; s itself is left as it was.
func (s *Shape) With(edit func(members []Member) []Member) *Shape {
	c := *s
	c.Members = edit(append([]Member(nil), s.Members...))
	return &c
}

// Model is the set of request shapes pcsync checks.
type Model struct {
	UpdateEngagementContextRequest *Shape
	GetEngagementRequest           *Shape
}

// New builds the model. Build it once and share it.
func New() *Model { return newModel() }

func enumStrings[T ~string](vals []T) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = string(v)
	}
	return out
}

package schema

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pcsync/pcsync/partnercentral/types"
)

// Violation is one broken rule: the field's path from the document's root
// (Payload.CustomerProject.Customer.CountryCode), what is wrong, and the
// API's error code for it, as the service would put it in a
// ValidationException's ErrorList.
type Violation struct {
	Field string
	Rule  string
	Code  types.ValidationExceptionErrorCode
}

func (v Violation) String() string {
	if v.Field == "" {
		return v.Rule
	}
	return v.Field + ": " + v.Rule
}

// maxQuoted is how much of a bad value a message repeats.
const maxQuoted = 40

// Check walks doc, a tree from Decode, along shape s and returns every
// violation, in document order of the shape's members. A JSON null counts as
// an absent member, as the service treats it.
func Check(s *Shape, doc any) []Violation {
	var c checker
	c.value(s, "", doc)
	return c.out
}

type checker struct{ out []Violation }

func (c *checker) add(field string, code types.ValidationExceptionErrorCode, format string, args ...any) {
	c.out = append(c.out, Violation{Field: field, Rule: fmt.Sprintf(format, args...), Code: code})
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number, float64:
		return "a number"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return fmt.Sprintf("%T", v)
}

func (c *checker) value(s *Shape, path string, v any) {
	switch s.Kind {
	case Structure, Union:
		obj, ok := v.(map[string]any)
		if !ok {
			c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be %s, got %s", s.Kind, jsonType(v))
			return
		}
		c.object(s, path, obj)
	case List:
		arr, ok := v.([]any)
		if !ok {
			c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be %s, got %s", s.Kind, jsonType(v))
			return
		}
		if s.MinLen >= 0 && len(arr) < s.MinLen {
			c.add(path, types.ValidationExceptionErrorCodeNotEnoughValues, "must have at least %d items, got %d", s.MinLen, len(arr))
		}
		if s.MaxLen >= 0 && len(arr) > s.MaxLen {
			c.add(path, types.ValidationExceptionErrorCodeTooManyValues, "must have at most %d items, got %d", s.MaxLen, len(arr))
		}
		for i, item := range arr {
			if item != nil {
				c.value(s.Item, fmt.Sprintf("%s[%d]", path, i), item)
			}
		}
	case String:
		str, ok := v.(string)
		if !ok {
			c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be %s, got %s", s.Kind, jsonType(v))
			return
		}
		c.str(s, path, str)
	case Timestamp:
		str, ok := v.(string)
		if !ok {
			c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be an RFC 3339 date-time string, got %s", jsonType(v))
			return
		}
		if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
			c.add(path, types.ValidationExceptionErrorCodeInvalidStringFormat, "%s is not an RFC 3339 date-time (2026-11-26T06:13:08.123Z)", quote(s, str))
		}
	}
}

func (c *checker) object(s *Shape, path string, obj map[string]any) {
	var unknown []string
	for k := range obj {
		if s.Member(k) == nil {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		c.add(join(path, k), types.ValidationExceptionErrorCodeInvalidValue, "unknown field (%s takes %s)", where(path), memberNames(s))
	}
	var set []string
	for _, m := range s.Members {
		v, present := obj[m.Name]
		if !present || v == nil {
			if m.Required {
				c.add(join(path, m.Name), types.ValidationExceptionErrorCodeRequiredFieldMissing, "is required")
			}
			continue
		}
		set = append(set, m.Name)
		c.value(m.Shape, join(path, m.Name), v)
	}
	if s.Kind == Union {
		switch {
		case len(set) == 0 && len(unknown) == 0:
			c.add(path, types.ValidationExceptionErrorCodeNotEnoughValues, "must set exactly one of %s", memberNames(s))
		case len(set) > 1:
			c.add(path, types.ValidationExceptionErrorCodeTooManyValues, "sets %s; a union takes exactly one", strings.Join(set, " and "))
		}
	}
}

func memberNames(s *Shape) string {
	names := make([]string, len(s.Members))
	for i, m := range s.Members {
		names[i] = m.Name
	}
	return strings.Join(names, ", ")
}

func (c *checker) str(s *Shape, path, v string) {
	if s.Enum != nil {
		if !slices.Contains(s.Enum, v) {
			c.add(path, types.ValidationExceptionErrorCodeInvalidEnumValue, "%s is not %s%s", quoteEnum(v), enumDesc(s), suggest(s, v))
		}
		return
	}
	n := utf8.RuneCountInString(v)
	switch {
	case s.MinLen > 0 && n < s.MinLen && s.MinLen == 1:
		c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must not be empty")
		return
	case s.MinLen > 0 && n < s.MinLen:
		c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be at least %d characters, got %d", s.MinLen, n)
		return
	case s.MaxLen >= 0 && n > s.MaxLen:
		c.add(path, types.ValidationExceptionErrorCodeInvalidValue, "must be at most %d characters, got %d", s.MaxLen, n)
		return
	}
	if s.Pattern != nil && !s.Pattern.MatchString(v) {
		c.add(path, types.ValidationExceptionErrorCodeInvalidStringFormat, "%s is not %s", quote(s, v), patternDesc(s))
		return
	}
	if s.Date {
		if _, err := time.Parse(time.DateOnly, v); err != nil {
			c.add(path, types.ValidationExceptionErrorCodeInvalidStringFormat, "%s is not a calendar date", quote(s, v))
		}
	}
}

func quote(s *Shape, v string) string {
	if s.Sensitive {
		return "the value"
	}
	if utf8.RuneCountInString(v) > maxQuoted {
		r := []rune(v)
		return fmt.Sprintf("%q…", string(r[:maxQuoted]))
	}
	return fmt.Sprintf("%q", v)
}

// quoteEnum quotes a value that should have been an enum member. The model
// marks some enums sensitive (CountryCode, as part of an address), but a
// category is not personal data and the bad value is what the reader needs;
// quote cuts anything long.
func quoteEnum(v string) string { return quote(&Shape{}, v) }

func enumDesc(s *Shape) string {
	if s.Desc != "" {
		return s.Desc
	}
	return "one of " + strings.Join(s.Enum, ", ")
}

func patternDesc(s *Shape) string {
	if s.Desc != "" {
		return s.Desc
	}
	return "in the form the model's pattern " + s.Pattern.String() + " requires"
}

// suggest offers the enum value that differs from v only in case or
// surrounding space, the commonest slip in hand-made exports.
func suggest(s *Shape, v string) string {
	t := strings.TrimSpace(v)
	for _, e := range s.Enum {
		if strings.EqualFold(e, t) {
			return fmt.Sprintf(" (did you mean %q?)", e)
		}
	}
	return ""
}

package schema

import (
	"strings"
	"testing"
)

func TestDecodeRejects(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"empty", "  \n", "body is empty"},
		{"invalid UTF-8", "{\"a\":\"\xc3\x28\"}", "not valid UTF-8"},
		{"duplicate nested key", `{"a":{"b":1,"b":2}}`, `duplicate key "b" in a`},
		{"duplicate top key", `{"a":1,"a":1}`, `duplicate key "a" in the top-level object`},
		{"too deep", strings.Repeat(`{"a":`, MaxDepth+1) + "1" + strings.Repeat("}", MaxDepth+1), "deeper than 32"},
		{"two documents", `{} {}`, "after the JSON document"},
		{"truncated", `{"a":[1,`, "ends too early"},
		{"bad token", `{"a":tru}`, "not valid JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.body))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestDecodeAccepts(t *testing.T) {
	doc, err := Decode([]byte(strings.Repeat(`{"a":`, MaxDepth) + "1" + strings.Repeat("}", MaxDepth)))
	if err != nil {
		t.Fatalf("nesting of exactly MaxDepth: got %v, want no error", err)
	}
	if _, ok := doc.(map[string]any); !ok {
		t.Errorf("got %T, want an object", doc)
	}
}

func TestCheckList(t *testing.T) {
	item := &Shape{Name: "Tag", Kind: String, MinLen: 1, MaxLen: 3}
	list := &Shape{Name: "Tags", Kind: List, Item: item, MinLen: 1, MaxLen: 2}
	tests := []struct {
		body string
		want []string
	}{
		{`["a","bb"]`, nil},
		{`[]`, []string{": must have at least 1 items, got 0"}},
		{`["a","b","c"]`, []string{": must have at most 2 items, got 3"}},
		{`["abcd",7]`, []string{"[0]: must be at most 3 characters, got 4", "[1]: must be a string, got a number"}},
		{`{"a":1}`, []string{": must be an array, got an object"}},
	}
	for _, tt := range tests {
		doc, err := Decode([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range Check(list, doc) {
			got = append(got, v.Field+": "+v.Rule)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") {
			t.Errorf("%s: got %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestQuoteCutsLongValues(t *testing.T) {
	s := &Shape{Name: "Code", Kind: String, Enum: []string{"A"}}
	doc, _ := Decode([]byte(`"` + strings.Repeat("x", 500) + `"`))
	vs := Check(s, doc)
	if len(vs) != 1 {
		t.Fatalf("got %v, want one violation", vs)
	}
	if len(vs[0].Rule) > 120 || !strings.Contains(vs[0].Rule, "…") {
		t.Errorf("got %q, want the value cut to %d characters", vs[0].Rule, maxQuoted)
	}
}

func TestModelShapes(t *testing.T) {
	m := New()
	req := m.UpdateEngagementContextRequest
	for _, name := range []string{"Catalog", "EngagementIdentifier", "ContextIdentifier", "EngagementLastModifiedAt", "Type", "Payload"} {
		mem := req.Member(name)
		if mem == nil || !mem.Required {
			t.Errorf("UpdateEngagementContextRequest.%s: got %+v, want a required member", name, mem)
		}
	}
	// The shape is shared; With must not change it.
	_ = req.With(func(ms []Member) []Member { ms[0].Required = false; return ms[:1] })
	if !req.Member("Catalog").Required || len(req.Members) != 6 {
		t.Errorf("With changed the shared shape: %+v", req.Members)
	}
}

package schema

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// parser reads a document that json.Valid accepted into the same tree as
// decodeTokens, with the same duplicate-key and depth rules and the same
// messages, in one pass and without the token reader's allocations. Jobs
// are decoded once per message received, so this is on the hot path.
//
// Since the syntax is known to be valid, it does not recheck it; a
// differential fuzz test holds it to decodeTokens.
type parser struct {
	data []byte
	pos  int
	// path is where the parser is, kept as segments and joined only for
	// an error message, so that reading a valid body builds no strings.
	path []segment
}

// segment is one step of a path: an object key, or an array index.
type segment struct {
	key   string
	index int // -1 for a key
}

// where names the current path as Decode's messages do: "a.b[2].c".
func (p *parser) where() string {
	var b strings.Builder
	for i, seg := range p.path {
		switch {
		case seg.index >= 0:
			b.WriteString("[" + strconv.Itoa(seg.index) + "]")
		case i > 0:
			b.WriteString("." + seg.key)
		default:
			b.WriteString(seg.key)
		}
	}
	return where(b.String())
}

func (p *parser) document() (any, error) {
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.space()
	if p.pos != len(p.data) {
		// Unreachable after json.Valid; kept so a change there cannot
		// make trailing data pass silently.
		return nil, fmt.Errorf("unexpected data after the JSON document at offset %d", p.pos)
	}
	return v, nil
}

func (p *parser) space() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(depth int) (any, error) {
	p.space()
	switch c := p.data[p.pos]; c {
	case '{':
		if depth >= MaxDepth {
			return nil, fmt.Errorf("JSON nests deeper than %d levels", MaxDepth)
		}
		return p.object(depth)
	case '[':
		if depth >= MaxDepth {
			return nil, fmt.Errorf("JSON nests deeper than %d levels", MaxDepth)
		}
		return p.array(depth)
	case '"':
		return p.string()
	case 't':
		p.pos += len("true")
		return true, nil
	case 'f':
		p.pos += len("false")
		return false, nil
	case 'n':
		p.pos += len("null")
		return nil, nil
	default: // a number
		start := p.pos
		for p.pos < len(p.data) && strings.IndexByte("+-.0123456789eE", p.data[p.pos]) >= 0 {
			p.pos++
		}
		return json.Number(p.data[start:p.pos]), nil
	}
}

func (p *parser) object(depth int) (any, error) {
	p.pos++ // '{'
	obj := map[string]any{}
	p.space()
	if p.data[p.pos] == '}' {
		p.pos++
		return obj, nil
	}
	for {
		p.space()
		k, err := p.string()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[k]; dup {
			return nil, fmt.Errorf("duplicate key %q in %s", k, p.where())
		}
		p.space()
		p.pos++ // ':'
		p.path = append(p.path, segment{key: k, index: -1})
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		obj[k] = v
		p.space()
		c := p.data[p.pos]
		p.pos++ // ',' or '}'
		if c == '}' {
			return obj, nil
		}
	}
}

func (p *parser) array(depth int) (any, error) {
	p.pos++ // '['
	arr := []any{}
	p.space()
	if p.data[p.pos] == ']' {
		p.pos++
		return arr, nil
	}
	for {
		p.path = append(p.path, segment{index: len(arr)})
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.path = p.path[:len(p.path)-1]
		arr = append(arr, v)
		p.space()
		c := p.data[p.pos]
		p.pos++ // ',' or ']'
		if c == ']' {
			return arr, nil
		}
	}
}

// string reads a string at p.pos. One without escapes is taken as it is
// (the document is valid UTF-8); one with escapes is unquoted by
// encoding/json, so that odd escapes (lone surrogates) read the same as
// everywhere else the body is decoded.
func (p *parser) string() (string, error) {
	start := p.pos
	p.pos++ // '"'
	escaped := false
	for {
		c := p.data[p.pos]
		if c == '"' {
			break
		}
		if c == '\\' {
			escaped = true
			p.pos++
		}
		p.pos++
	}
	p.pos++ // '"'
	if !escaped {
		return string(p.data[start+1 : p.pos-1]), nil
	}
	var s string
	if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
		return "", errors.New("body is not valid JSON: " + err.Error())
	}
	return s, nil
}

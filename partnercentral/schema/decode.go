package schema

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// MaxDepth is how deeply Decode lets objects and arrays nest. The deepest
// request shape nests six levels; anything far deeper is hostile.
const MaxDepth = 32

// Decode parses one JSON document into a tree of map[string]any, []any,
// string, json.Number, bool and nil. Unlike encoding/json's Unmarshal it
// rejects what a careful service rejects and what could make two readers
// disagree about a job: invalid UTF-8 (Unmarshal would replace it
// silently), duplicate keys (Unmarshal keeps the last), nesting deeper than
// MaxDepth, and anything after the document.
func Decode(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("body is not valid UTF-8")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("body is empty")
	}
	if !json.Valid(data) {
		// The slow reader says where and why the syntax breaks, the way
		// encoding/json words it.
		return decodeTokens(data)
	}
	p := parser{data: data}
	return p.document()
}

// decodeTokens is Decode through encoding/json's token reader: exact
// syntax errors, at about five times the cost of the parser below.
func decodeTokens(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("unexpected data after the JSON document at offset %d", dec.InputOffset())
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int, path string) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, errors.New("body is not valid JSON: it ends too early")
		}
		return nil, fmt.Errorf("body is not valid JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil
	}
	if depth >= MaxDepth {
		return nil, fmt.Errorf("JSON nests deeper than %d levels", MaxDepth)
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("body is not valid JSON: %w", err)
			}
			k := kt.(string)
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("duplicate key %q in %s", k, where(path))
			}
			v, err := decodeValue(dec, depth+1, join(path, k))
			if err != nil {
				return nil, err
			}
			obj[k] = v
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %w", err)
		}
		return obj, nil
	default: // '['
		arr := []any{}
		for dec.More() {
			v, err := decodeValue(dec, depth+1, fmt.Sprintf("%s[%d]", path, len(arr)))
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		if _, err := dec.Token(); err != nil {
			return nil, fmt.Errorf("body is not valid JSON: %w", err)
		}
		return arr, nil
	}
}

func where(path string) string {
	if path == "" {
		return "the top-level object"
	}
	return path
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

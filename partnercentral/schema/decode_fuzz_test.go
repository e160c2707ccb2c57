package schema

import (
	"reflect"
	"testing"
)

// FuzzDecodeParser holds the fast parser to the token reader: for every
// body they return the same tree, or errors with the same message.
func FuzzDecodeParser(f *testing.F) {
	for _, seed := range []string{`{}`, `[]`, `null`, `{"a":[1,-2.5e3,"x\u00e9\ud800",true,false,null,{}]}`,
		`{"a":{"b":1,"b":2}}`, `{"a":[{"b":[{"c":1,"c":2}]}]}`, ` {"a" : "b\"c" } `, `"\u0000"`, `{"a":1} x`,
		`[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]`, `{"":{"":""}}`, `1e400`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, gotErr := Decode(body)
		if gotErr != nil && (gotErr.Error() == "body is not valid UTF-8" || gotErr.Error() == "body is empty") {
			return // checked before either reader runs
		}
		want, wantErr := decodeTokens(body)
		if gotErr != nil || wantErr != nil {
			if gotErr == nil || wantErr == nil || gotErr.Error() != wantErr.Error() {
				t.Fatalf("errors differ:\nDecode:       %v\ntoken reader: %v", gotErr, wantErr)
			}
			return
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("trees differ:\nDecode:       %#v\ntoken reader: %#v", got, want)
		}
	})
}

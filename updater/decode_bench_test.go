package updater

import (
	"testing"

	"github.com/pcsync/pcsync/partnercentral/schema"
)

// BenchmarkDecode is the cost of decoding and checking one job: it runs
// for every message the worker receives.
func BenchmarkDecode(b *testing.B) {
	dec := NewDecoder(schema.New())
	body := []byte(goodProject)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := dec.Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}

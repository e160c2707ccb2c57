package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"strings"
	"time"
)

// This file is what the database holds, record by record, and how the text
// log of older pcsync versions is read.

// The buckets.
var (
	// bucketContexts maps a context key to its version record
	// (encodeVersion).
	bucketContexts = []byte("contexts")
	// bucketOrder maps a write sequence number (8 bytes, big-endian) to
	// the context key written then, least recently written first: the
	// order in which contexts are forgotten beyond MaxContexts.
	bucketOrder = []byte("order")
	// bucketWrites holds a key per budgeted write: its time in Unix
	// nanoseconds (8 bytes, big-endian), with an empty value.
	bucketWrites = []byte("writes")
	// bucketMeta holds keyCount: how many contexts bucketContexts holds,
	// so that a write knows when to forget one without counting them.
	bucketMeta = []byte("meta")
	keyCount   = []byte("contexts")

	allBuckets = [][]byte{bucketContexts, bucketOrder, bucketWrites, bucketMeta}
)

const (
	// maxKeyLen bounds a context key: "Sandbox/eng-abcdefghij1234/1" is
	// under 40 bytes, and the job's checks bound each part. A longer key
	// was not written by this package.
	maxKeyLen = 1024
	// recordFormat is the first byte of a version record.
	recordFormat = 1
	// maxRecordLen bounds a version record: the format byte, the sequence
	// number and a binary time (15 or 16 bytes).
	maxRecordLen = 1 + 8 + 16
	// maxLineLen bounds a line of the text log: longer ones are skipped.
	maxLineLen = 64 << 10
)

var errBadRecord = errors.New("unreadable record")

// encodeVersion is a context's record: the format, the sequence number of
// its last write, and the version.
func encodeVersion(v time.Time, seq uint64) []byte {
	b := make([]byte, 0, maxRecordLen)
	b = append(b, recordFormat)
	b = binary.BigEndian.AppendUint64(b, seq)
	t, _ := v.UTC().MarshalBinary() // fails only for zone offsets UTC has not
	return append(b, t...)
}

func decodeVersion(b []byte) (time.Time, uint64, error) {
	if len(b) < 1+8+1 || len(b) > maxRecordLen || b[0] != recordFormat {
		return time.Time{}, 0, errBadRecord
	}
	var t time.Time
	if err := t.UnmarshalBinary(b[9:]); err != nil || t.IsZero() {
		return time.Time{}, 0, errBadRecord
	}
	return t, binary.BigEndian.Uint64(b[1:9]), nil
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

func timeKey(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }

func readCount(meta interface{ Get([]byte) []byte }) int {
	b := meta.Get(keyCount)
	if len(b) != 8 {
		return 0
	}
	return int(binary.BigEndian.Uint64(b))
}

// version is one context's record, as read.
type version struct {
	key string
	v   time.Time
	seq uint64 // its place in the order of writes
}

// contents is what could be read from a file: the versions, least recently
// written first, and the budgeted writes, oldest first.
type contents struct {
	versions []version
	writes   []time.Time
}

// readTextLog reads the state file of pcsync versions before this store:
// lines of "context<TAB>RFC 3339 time", appended as versions were intended
// and compacted now and then, so a context's newest version may be on any
// of its lines. Lines that do not read so (cut short by a kill, too long,
// binary) are counted in skipped. A file with no good line is not such a
// log.
func readTextLog(path string) (c contents, skipped int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return contents{}, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, maxLineLen)
	newest := map[string]int{} // key -> index in c.versions
	for n := uint64(1); ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// Over maxLineLen: skip to the end of the line.
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = r.ReadSlice('\n')
			}
			skipped++
			if err == io.EOF {
				break
			}
			if err != nil {
				return contents{}, 0, err
			}
			continue
		}
		if err != nil && err != io.EOF {
			return contents{}, 0, err
		}
		if s := strings.TrimRight(string(line), "\r\n"); s != "" {
			key, ts, ok := strings.Cut(s, "\t")
			t, terr := time.Parse(time.RFC3339Nano, ts)
			switch {
			case !ok || terr != nil || key == "" || len(key) > maxKeyLen || t.IsZero():
				skipped++
			default:
				if i, seen := newest[key]; seen {
					if c.versions[i].v.After(t) {
						t = c.versions[i].v
					}
					c.versions[i].seq = 0 // superseded by this line, below
				}
				newest[key] = len(c.versions)
				c.versions = append(c.versions, version{key: key, v: t, seq: n})
			}
		}
		if err == io.EOF {
			break
		}
	}
	// Keep each context's last line, in the order of the lines.
	kept := c.versions[:0]
	for _, v := range c.versions {
		if v.seq != 0 {
			kept = append(kept, v)
		}
	}
	c.versions = kept
	return c, skipped, nil
}

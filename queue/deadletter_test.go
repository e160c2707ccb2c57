package queue

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// testConsumerDeadLetter: a DeadLetter outcome puts the body, unchanged, on
// the dead-letter queue with its reason, then deletes the message; without
// a dead-letter queue the message is kept and comes back.
func testConsumerDeadLetter(t *testing.T, endpoint string) {
	const class, reason = "validation", "Payload.Customer.CountryCode: value XX is not in the enum"
	for _, tc := range []struct {
		name string
		// setup makes the source queue and returns its URL and the DLQ URL
		// to configure ("" to leave it to discovery) and the DLQ to check.
		setup func(t *testing.T) (url, configured, dlq string)
	}{
		{"configured", func(t *testing.T) (string, string, string) {
			client := newClient(endpoint, nil)
			dlq := createQueue(t, client, queueName(t, "-dlq"), nil)
			url := createQueue(t, client, queueName(t, ""), nil)
			return url, dlq, dlq
		}},
		{"discovered from RedrivePolicy", func(t *testing.T) (string, string, string) {
			client := newClient(endpoint, nil)
			dlq := createQueue(t, client, queueName(t, "-dlq"), nil)
			policy := fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"5"}`, queueARN(t, client, dlq))
			url := createQueue(t, client, queueName(t, ""), map[string]string{"RedrivePolicy": policy})
			return url, "", dlq
		}},
		{"no dead-letter queue", func(t *testing.T) (string, string, string) {
			return createQueue(t, newClient(endpoint, nil), queueName(t, ""), nil), "", ""
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			client := newClient(endpoint, nil)
			url, configured, dlq := tc.setup(t)
			attrs := map[string]types.MessageAttributeValue{}
			for i := 1; i <= 7; i++ {
				attrs[fmt.Sprintf("a%d", i)] = stringAttr("String", fmt.Sprintf("v%d", i))
			}
			body := `{"EngagementIdentifier":"eng-abcdefghij1234","bad":true}`
			ids := sendBodies(t, client, url, []string{body}, attrs)

			var mu sync.Mutex
			var calls []time.Time
			var counts []int
			rec := newRecorder()
			log, _ := newLogger(t)
			c, err := NewConsumer(client, Config{
				QueueURL: url, DLQURL: configured, Workers: 2, WaitTime: time.Second, KeepDelay: time.Second,
				Observer: rec, Logger: log,
			}, handlerFuncs{handle: func(_ context.Context, batch []*Message) []Outcome {
				mu.Lock()
				defer mu.Unlock()
				calls = append(calls, time.Now())
				counts = append(counts, batch[0].ReceiveCount)
				if len(calls) == 1 {
					return []Outcome{DeadLetter(class, reason)}
				}
				return ackAll(batch)
			}})
			if err != nil {
				t.Fatal(err)
			}
			r := startConsumer(t, c)
			waitFor(t, 15*time.Second, "the message deleted", func() bool { return rec.acked.Load() == 1 })
			if err := r.stop(t); err != nil {
				t.Fatalf("Run: got %v, want nil", err)
			}
			if v, f := depth(t, client, url); v != 0 || f != 0 {
				t.Errorf("source queue: got %d visible and %d in flight, want 0 and 0", v, f)
			}

			if dlq == "" {
				if got := rec.kept.Load(); got != 1 {
					t.Errorf("kept without DLQ: got %d, want 1", got)
				}
				if len(calls) != 2 || counts[1] != 2 {
					t.Fatalf("handler calls: got %d with receive counts %v, want 2: the message kept and back", len(calls), counts)
				}
				if gap := calls[1].Sub(calls[0]); gap < time.Second {
					t.Errorf("kept message came back after %v, want at least KeepDelay (1s)", gap)
				}
				return
			}

			if got := rec.dead[class]; got != 1 {
				t.Errorf("dead-lettered %q: got %d, want 1", class, got)
			}
			got := receiveAll(t, client, dlq, 1, 5*time.Second)
			if len(got) != 1 {
				t.Fatalf("messages on the DLQ: got %d, want 1", len(got))
			}
			m := got[0]
			if *m.Body != body {
				t.Errorf("DLQ body: got %q, want the original %q", *m.Body, body)
			}
			want := map[string]string{
				AttrErrorClass: class, AttrErrorReason: reason, AttrSourceMessageID: ids[0], AttrReceiveCount: "1",
				"a1": "v1", "a2": "v2", "a3": "v3", "a4": "v4", "a5": "v5",
			}
			for name, v := range want {
				if a, ok := m.MessageAttributes[name]; !ok || deref(a.StringValue) != v {
					t.Errorf("DLQ attribute %s: got %q (present %v), want %q", name, deref(a.StringValue), ok, v)
				}
			}
			at, err := time.Parse(time.RFC3339Nano, deref(m.MessageAttributes[AttrDeadLetteredAt].StringValue))
			if err != nil || time.Since(at) > time.Minute {
				t.Errorf("DLQ attribute %s: got %v (%v), want a recent RFC 3339 time", AttrDeadLetteredAt, at, err)
			}
			if n := len(m.MessageAttributes); n != maxMessageAttributes {
				t.Errorf("DLQ attributes: got %d, want %d (SQS's limit)", n, maxMessageAttributes)
			}
		})
	}
}

func TestDeadLetterEntry(t *testing.T) {
	now := time.Date(2026, 11, 26, 6, 13, 8, 0, time.UTC)
	big := strings.Repeat("x", 300)
	for _, tc := range []struct {
		name        string
		msg         Message
		out         Outcome
		fifo        bool
		maxSize     int
		wantAttrs   []string
		wantDropped []string
		wantGroup   string
		wantReason  string
	}{
		{
			name:      "few attributes kept",
			msg:       Message{ID: "id-1", Body: "b", ReceiveCount: 3, Attributes: map[string]types.MessageAttributeValue{"correlation": stringAttr("String", "c-1")}},
			out:       DeadLetter("validation", "bad"),
			maxSize:   MaxMessageSize,
			wantAttrs: []string{"correlation"}, wantReason: "bad",
		},
		{
			name: "ten-attribute limit keeps the first by name",
			msg: Message{ID: "id-2", Body: "b", Attributes: map[string]types.MessageAttributeValue{
				"g": stringAttr("String", "1"), "f": stringAttr("String", "1"), "e": stringAttr("String", "1"),
				"d": stringAttr("String", "1"), "c": stringAttr("String", "1"), "b": stringAttr("String", "1"),
				"a": stringAttr("String", "1"), AttrErrorClass: stringAttr("String", "old"),
			}},
			out:         DeadLetter("validation", "bad"),
			maxSize:     MaxMessageSize,
			wantAttrs:   []string{"a", "b", "c", "d", "e"},
			wantDropped: []string{AttrErrorClass, "f", "g"},
			wantReason:  "bad",
		},
		{
			name: "size limit drops the largest original first",
			msg: Message{ID: "id-3", Body: "b", Attributes: map[string]types.MessageAttributeValue{
				"small": stringAttr("String", "1"), "large": stringAttr("String", big),
			}},
			out:         DeadLetter("validation", "bad"),
			maxSize:     250,
			wantAttrs:   []string{"small"},
			wantDropped: []string{"large"},
			wantReason:  "bad",
		},
		{
			name:       "FIFO copy keeps the group and dedups on the source id",
			msg:        Message{ID: "id-4", Body: "b", GroupID: "eng-1"},
			out:        DeadLetter("", ""),
			fifo:       true,
			maxSize:    MaxMessageSize,
			wantGroup:  "eng-1",
			wantReason: "(no reason given)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, dropped := deadLetterEntry(&tc.msg, tc.out, now, tc.fifo, tc.maxSize)
			if e.Body != tc.msg.Body {
				t.Errorf("body: got %q, want %q", e.Body, tc.msg.Body)
			}
			if size := e.size(); size > tc.maxSize {
				t.Errorf("size: got %d, want <= %d", size, tc.maxSize)
			}
			for _, name := range append([]string{AttrErrorClass, AttrErrorReason, AttrSourceMessageID, AttrReceiveCount, AttrDeadLetteredAt}, tc.wantAttrs...) {
				if _, ok := e.Attributes[name]; !ok {
					t.Errorf("attribute %s: missing", name)
				}
			}
			if got, want := len(e.Attributes), 5+len(tc.wantAttrs); got != want {
				t.Errorf("attributes: got %d, want %d", got, want)
			}
			if fmt.Sprint(dropped) != fmt.Sprint(tc.wantDropped) {
				t.Errorf("dropped: got %v, want %v", dropped, tc.wantDropped)
			}
			if got := deref(e.Attributes[AttrErrorReason].StringValue); got != tc.wantReason {
				t.Errorf("reason: got %q, want %q", got, tc.wantReason)
			}
			if got := deref(e.Attributes[AttrSourceMessageID].StringValue); got != tc.msg.ID {
				t.Errorf("source id: got %q, want %q", got, tc.msg.ID)
			}
			if e.GroupID != tc.wantGroup {
				t.Errorf("group: got %q, want %q", e.GroupID, tc.wantGroup)
			}
			if tc.fifo && e.DeduplicationID != tc.msg.ID {
				t.Errorf("dedup id: got %q, want the source id %q", e.DeduplicationID, tc.msg.ID)
			}
			for name, v := range e.Attributes {
				if deref(v.StringValue) == "" && len(v.BinaryValue) == 0 {
					t.Errorf("attribute %s: empty value, which SQS refuses", name)
				}
			}
		})
	}
}

// TestKeepDelayLargeReceiveCounts: a message that keeps failing to be
// dead-lettered can be received hundreds of times; its delay stays at the
// cap, without overflowing, and is the same every time it is computed, since
// it is logged as "returns_in" apart from being set.
func TestKeepDelayLargeReceiveCounts(t *testing.T) {
	tests := []struct {
		receives int
		want     time.Duration
	}{
		{0, 5 * time.Minute},
		{8, 10*time.Hour + 40*time.Minute},
		{9, maxVisibility - time.Minute},
		{64, maxVisibility - time.Minute},
		{300, maxVisibility - time.Minute},
		{math.MaxInt, maxVisibility - time.Minute},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.receives), func(t *testing.T) {
			for range 10 {
				if got := keepDelay(5*time.Minute, tt.receives); got != tt.want {
					t.Fatalf("keepDelay(5m, %d): got %v, want %v", tt.receives, got, tt.want)
				}
			}
		})
	}
}

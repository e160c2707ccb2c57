package queue

import (
	"testing"
	"time"
)

func TestOutcome(t *testing.T) {
	for _, tc := range []struct {
		name          string
		o             Outcome
		kind          OutcomeKind
		delay         time.Duration
		class, reason string
		text          string
	}{
		{"ack", Ack(), OutcomeAck, 0, "", "", "ack"},
		{"retry", RetryAfter(90 * time.Second), OutcomeRetry, 90 * time.Second, "", "", "retry after 1m30s"},
		{"negative retry is now", RetryAfter(-time.Second), OutcomeRetry, 0, "", "", "retry after 0s"},
		{"dead letter", DeadLetter("validation", "Title too long"), OutcomeDeadLetter, 0, "validation", "Title too long", "dead letter (validation): Title too long"},
		{"abandon", Abandon(), OutcomeAbandon, 0, "", "", "abandon"},
		{"zero value", Outcome{}, OutcomeNone, 0, "", "", "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.o.Kind(); got != tc.kind {
				t.Errorf("Kind: got %v, want %v", got, tc.kind)
			}
			if got := tc.o.Delay(); got != tc.delay {
				t.Errorf("Delay: got %v, want %v", got, tc.delay)
			}
			if got, want := tc.o.Class()+"|"+tc.o.Reason(), tc.class+"|"+tc.reason; got != want {
				t.Errorf("Class|Reason: got %q, want %q", got, want)
			}
			if got := tc.o.String(); got != tc.text {
				t.Errorf("String: got %q, want %q", got, tc.text)
			}
		})
	}
}

func TestMessageKey(t *testing.T) {
	for _, tc := range []struct{ lane, want string }{
		{"eng-abcdefghij1234", "eng-abcdefghij1234"},
		{unkeyed + "5f1c", ""},
	} {
		if got := (&Message{key: tc.lane}).Key(); got != tc.want {
			t.Errorf("Key of lane %q: got %q, want %q", tc.lane, got, tc.want)
		}
	}
}

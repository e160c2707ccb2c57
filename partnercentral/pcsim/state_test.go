package pcsim

import (
	"errors"
	"testing"
	"time"
)

func TestNextModifiedAt(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		prev, now time.Time
		want      string
	}{
		{"the clock's millisecond, finer digits dropped", base.Add(1500 * time.Microsecond), base.Add(123999999), "2026-01-01T00:00:00.123Z"},
		{"clock did not move", base.Add(123 * time.Millisecond), base.Add(123456 * time.Microsecond), "2026-01-01T00:00:00.124Z"},
		{"clock moved less than a millisecond past", base.Add(123 * time.Millisecond), base.Add(123999 * time.Microsecond), "2026-01-01T00:00:00.124Z"},
		{"clock went back", base.Add(time.Second), base, "2026-01-01T00:00:01.001Z"},
		{"whole second", time.Time{}, base.Add(5 * time.Second), "2026-01-01T00:00:05.000Z"},
		{"local zone", time.Time{}, base.Add(7 * time.Millisecond).In(time.FixedZone("X", 3600)), "2026-01-01T00:00:00.007Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatTime(nextModifiedAt(tt.prev, tt.now)); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSameVersion(t *testing.T) {
	current := time.Date(2026, 1, 1, 0, 0, 0, 120*int(time.Millisecond), time.UTC)
	tests := []struct {
		sent string
		want bool
	}{
		{"2026-01-01T00:00:00.120Z", true},      // the string the simulator sent
		{"2026-01-01T00:00:00.12Z", true},       // smithy-go's FormatDateTime
		{"2026-01-01T00:00:00.120000Z", true},   // botocore's microseconds
		{"2026-01-01T01:00:00.120+01:00", true}, // another offset
		{"2026-01-01T00:00:00.120999Z", true},   // finer digits are dropped, not rounded
		{"2026-01-01T00:00:00.121Z", false},     // the next version
		{"2026-01-01T00:00:00.119Z", false},     // the previous version
		{"2026-01-01T00:00:00Z", false},
	}
	for _, tt := range tests {
		sent, err := time.Parse(time.RFC3339Nano, tt.sent)
		if err != nil {
			t.Fatal(err)
		}
		if got := sameVersion(sent, current); got != tt.want {
			t.Errorf("sameVersion(%s, %s): got %v, want %v", tt.sent, formatTime(current), got, tt.want)
		}
	}
}

func TestResolveIdentifier(t *testing.T) {
	id := "eng-abcdefghij1234"
	tests := []struct {
		ident, catalog string
		want           string
		ok             bool
	}{
		{id, "Sandbox", id, true},
		{"arn:aws:partnercentral:us-east-1::catalog/Sandbox/engagement/" + id, "Sandbox", id, true},
		{"arn:aws:partnercentral:us-east-1:123456789012:catalog/Sandbox/engagement/" + id, "Sandbox", id, true},
		{"arn:aws:partnercentral:us-east-1::catalog/AWS/engagement/" + id, "Sandbox", "", false},
		{"arn:aws:partnercentral:us-east-1::catalog/Sandbox/opportunity/" + id, "Sandbox", "", false},
		{"arn:aws:partnercentral:us-east-1::catalog/Sandbox/engagement/eng-short", "Sandbox", "", false},
		{"arn:aws:s3:::bucket", "Sandbox", "", false},
		{"eng-ABCDEFGHIJ1234", "Sandbox", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.ident, func(t *testing.T) {
			got, ok := resolveIdentifier(tt.ident, tt.catalog)
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q %v, want %q %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestGoAPIErrors(t *testing.T) {
	sim := New(Options{Unlimited: true})
	defer sim.Close()
	defer sim.Close() // idempotent
	if err := sim.AddEngagement(NewEngagement{Id: engID(1), Catalog: "Sandbox"}); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddEngagement(NewEngagement{Id: engID(1), Catalog: "Sandbox"}); !errors.Is(err, ErrExists) {
		t.Errorf("add twice: got %v, want ErrExists", err)
	}
	if err := sim.AddEngagement(NewEngagement{Id: engID(2), Catalog: "Sandbox", Title: "a title much longer than forty characters, surely"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("long title: got %v, want ErrInvalid", err)
	}
	if _, err := sim.Touch(engID(3)); !errors.Is(err, ErrNotFound) {
		t.Errorf("touch unknown: got %v, want ErrNotFound", err)
	}
	if _, ok := sim.Engagement(engID(3)); ok {
		t.Errorf("got an engagement %s never created", engID(3))
	}
	sim.SetFaults(Faults{Error5xx: 2, Drop: -1, Latency: -time.Second})
	if f := sim.Faults(); f.Error5xx != 1 || f.Drop != 0 || f.Latency != 0 {
		t.Errorf("got faults %+v, want them clamped", f)
	}
}

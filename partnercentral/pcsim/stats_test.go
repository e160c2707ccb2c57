package pcsim

import "testing"

func TestStatsAdmitted(t *testing.T) {
	s := Stats{Calls: map[string]map[string]int{
		"UpdateEngagementContext": {"200": 10, "409": 2, "429": 3, "500": 1, "drop": 1, "lost": 2, "canceled": 1, "400": 1},
	}}
	if got := s.Admitted("UpdateEngagementContext"); got != 15 {
		t.Errorf("Admitted: got %d, want 15 (200, 409, lost and 400 spent quota; 429, 500, drop and canceled did not)", got)
	}
	if got := s.Admitted("GetEngagement"); got != 0 {
		t.Errorf("Admitted of an operation never called: got %d, want 0", got)
	}
}

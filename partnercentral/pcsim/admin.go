package pcsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// maxAdminBody bounds admin request bodies: five contexts with payloads
// fit in far less.
const maxAdminBody = 1 << 20

// adminHandler serves the admin API, which needs no signature:
//
//	POST /_sim/engagements             create (201 with the state; 409 if it exists; 400 if malformed)
//	GET  /_sim/engagements/{id}        the state, with each context's write count
//	POST /_sim/engagements/{id}/touch  one outside write (200 with the state)
//	GET  /_sim/stats                   {"calls":{"UpdateEngagementContext":{"200":n,...},...},"outsideWrites":n,
//	                                    "otherClients":{"writesAdmitted":n,"writesThrottled":n,"readsAdmitted":n,"readsThrottled":n}}
//	GET  /_sim/faults                  the faults in force
//	PUT  /_sim/faults                  replace them (durations as "250ms")
//	GET  /_sim/other-clients           other clients' calls per second on the quotas: {"writeRps":n,"readRps":n}
//	PUT  /_sim/other-clients           replace both (an absent field is 0, none); in force at once
//
// Errors are {"error":"..."} with a 4xx status.
func (s *Sim) adminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /_sim/engagements", s.adminCreate)
	mux.HandleFunc("GET /_sim/engagements/{id}", s.adminGet)
	mux.HandleFunc("POST /_sim/engagements/{id}/touch", s.adminTouch)
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.Stats())
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.Faults())
	})
	mux.HandleFunc("PUT /_sim/faults", s.adminPutFaults)
	mux.HandleFunc("GET /_sim/other-clients", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, "application/json", s.otherClientsJSON())
	})
	mux.HandleFunc("PUT /_sim/other-clients", s.adminPutOtherClients)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, fmt.Sprintf("no admin route %s %s", r.Method, r.URL.Path))
	})
	return mux
}

func adminError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, "application/json", map[string]string{"error": msg})
}

// decodeAdmin reads one JSON document into v, refusing unknown fields so
// that a typo in a seed file is an error, not a silently ignored field.
func decodeAdmin(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody+1))
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxAdminBody {
		return fmt.Errorf("body is over %d bytes", maxAdminBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("body is not the expected JSON: %w", err)
	}
	if dec.More() {
		return errors.New("body has data after the JSON document")
	}
	return nil
}

func (s *Sim) adminCreate(w http.ResponseWriter, r *http.Request) {
	var ne NewEngagement
	if err := decodeAdmin(r, &ne); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	switch err := s.AddEngagement(ne); {
	case errors.Is(err, ErrExists):
		adminError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	st, _ := s.Engagement(ne.Id)
	writeJSON(w, http.StatusCreated, "application/json", st)
}

func (s *Sim) adminGet(w http.ResponseWriter, r *http.Request) {
	st, ok := s.Engagement(r.PathValue("id"))
	if !ok {
		adminError(w, http.StatusNotFound, fmt.Sprintf("engagement %s not found", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, "application/json", st)
}

func (s *Sim) adminTouch(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, err := s.Touch(id); err != nil {
		adminError(w, http.StatusNotFound, err.Error())
		return
	}
	st, _ := s.Engagement(id)
	writeJSON(w, http.StatusOK, "application/json", st)
}

func (s *Sim) adminPutFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeAdmin(r, &f); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, "application/json", s.Faults())
}

// otherClientsRates is the body of /_sim/other-clients.
type otherClientsRates struct {
	WriteRPS float64 `json:"writeRps"`
	ReadRPS  float64 `json:"readRps"`
}

func (s *Sim) otherClientsJSON() otherClientsRates {
	w, r := s.OtherClients()
	return otherClientsRates{WriteRPS: w, ReadRPS: r}
}

func (s *Sim) adminPutOtherClients(w http.ResponseWriter, r *http.Request) {
	var in otherClientsRates
	if err := decodeAdmin(r, &in); err != nil {
		// A string or a boolean for a rate: name the field plainly.
		if ute := (*json.UnmarshalTypeError)(nil); errors.As(err, &ute) && ute.Field != "" {
			err = fmt.Errorf("%s: got a %s, want a number of calls per second", ute.Field, ute.Value)
		}
		adminError(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"writeRps", in.WriteRPS}, {"readRps", in.ReadRPS}} {
		if err := validateOtherClientsRate(f.name, f.v); err != nil {
			adminError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	s.SetOtherClients(in.WriteRPS, in.ReadRPS)
	writeJSON(w, http.StatusOK, "application/json", s.otherClientsJSON())
}

package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// health reports whether the server and its database answer (no auth).
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status, code := "ok", http.StatusOK
	dbStatus := "ok"
	latency, err := s.db.Ping(ctx)
	if err != nil {
		status, dbStatus, code = "degraded", "error", http.StatusServiceUnavailable
		s.log.Warn("health check: database unavailable", "err", err)
	}
	return reply(w, code, map[string]any{
		"status": status, "timestamp": ts(s.now()), "version": s.cfg.Version,
		"checks": map[string]any{"database": map[string]any{"status": dbStatus, "latency_ms": float64(latency.Microseconds()) / 1000}},
	})
}

// openAPI serves the OpenAPI 3.1 document, built once at start-up.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) error {
	if s.openapiErr != nil {
		return fmt.Errorf("build OpenAPI document: %w", s.openapiErr)
	}
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(s.openapiDoc)
	return err
}

// listVoices answers the local voices installed on this server followed by
// the provider voice catalogs.
func (s *Server) listVoices(w http.ResponseWriter, r *http.Request) error {
	voices := []Voice{}
	if s.voices != nil {
		local, err := s.voices.LocalVoices(r.Context())
		if err != nil {
			s.log.Warn("listing local voices", "err", err)
		}
		voices = append(voices, local...)
	}
	for _, v := range s.cat.ProviderVoices() {
		// Only voices a call on this server can speak with.
		if s.valid != nil && !s.valid.ServesVoiceSet(v.Provider) {
			continue
		}
		voices = append(voices, Voice{ID: v.ID, Name: v.Name, Provider: v.Provider, Language: v.Language, Style: v.Style})
	}
	return reply(w, http.StatusOK, map[string]any{"voices": voices})
}

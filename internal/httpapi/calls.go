package httpapi

import (
	"math"
	"net/http"
	"strings"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

func (s *Server) listCalls(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	var f fault.Fields
	filter := store.CallFilter{Page: p}
	if v := r.URL.Query().Get("status"); v != "" {
		st, ok := call.ParseStatus(v)
		if !ok {
			names := make([]string, 0, 10)
			for _, s := range call.Statuses() {
				names = append(names, s.String())
			}
			f.Invalidf("status", "must be one of %s (got %q)", strings.Join(names, ", "), v)
		}
		filter.Status = &st
	}
	filter.Since = dateParam(r, "start_date", false, &f)
	filter.Until = dateParam(r, "end_date", true, &f)
	if err := f.Err(); err != nil {
		return err
	}
	calls, total, err := s.db.ListCalls(r.Context(), orgID(r), filter)
	if err != nil {
		return err
	}
	out := make([]any, len(calls))
	for i := range calls {
		out[i] = s.callObject(&calls[i])
	}
	return reply(w, http.StatusOK, map[string]any{"calls": out, "pagination": pagination(p, total)})
}

// getCall answers the bare call object. Call ids are opaque and may contain
// "+" (sent as %2B); ServeMux decodes the segment without turning "+" into a space.
func (s *Server) getCall(w http.ResponseWriter, r *http.Request) error {
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	c, err := s.db.GetCall(r.Context(), orgID(r), id)
	if err != nil {
		return err
	}
	return reply(w, http.StatusOK, s.callObject(c))
}

func (s *Server) listUsage(w http.ResponseWriter, r *http.Request) error {
	p, err := page(r, defaultLimit, maxLimit)
	if err != nil {
		return err
	}
	var f fault.Fields
	filter := store.UsageFilter{Page: p, Since: dateParam(r, "start_date", false, &f), Until: dateParam(r, "end_date", true, &f)}
	if err := f.Err(); err != nil {
		return err
	}
	logs, total, sum, err := s.db.ListUsage(r.Context(), orgID(r), filter)
	if err != nil {
		return err
	}
	out := make([]any, len(logs))
	for i, u := range logs {
		out[i] = map[string]any{
			// duration_seconds: the older guide's spelling of duration_sec
			"id": u.ID, "call_id": u.CallID, "duration_sec": u.DurationSec, "duration_seconds": u.DurationSec, "call_type": u.CallType,
			"byok_stt": u.BYOKSTT, "byok_llm": u.BYOKLLM, "byok_tts": u.BYOKTTS,
			"phone_number": u.PhoneNumber, "agent_name": u.AgentName, "business_name": u.BusinessName, "created_at": ts(u.CreatedAt),
			"minutes_used": minutes(u.MinutesUsed), "billed_org_id": u.BilledOrgID,
		}
	}
	return reply(w, http.StatusOK, map[string]any{
		"logs": out, "pagination": pagination(p, total),
		"summary": map[string]any{"total_calls": sum.TotalCalls, "total_duration_seconds": sum.TotalDurationSeconds,
			"total_duration_minutes": math.Round(float64(sum.TotalDurationSeconds)/60*100) / 100,
			"total_minutes_used":     minutes(sum.TotalMinutesUsed),
			// the older guide's summary: total_minutes (minutes used)
			"total_minutes": minutes(sum.TotalMinutesUsed)},
	})
}

// minutes shows a figure of minutes billed per second to four decimal
// places (a second is 0.0167 minutes), without float noise.
func minutes(m float64) float64 { return math.Round(m*1e4) / 1e4 }

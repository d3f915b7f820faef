package httpapi

import (
	"encoding/json"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/store"
)

// Response objects that are not stored documents. Structs (not maps) keep the
// field order stable and the encoding cheap on the hot list endpoints.

// numberJSON renders a number with both spellings of its assistant reference
// (assistant_id in the docs, agent_id in the SDK).
type numberJSON struct {
	ID                string  `json:"id"`
	OrgID             string  `json:"org_id"`
	PhoneNumber       string  `json:"phone_number"`
	Name              *string `json:"name"`
	AssistantID       *string `json:"assistant_id"`
	AgentID           *string `json:"agent_id"`
	AgentName         *string `json:"agent_name"`
	BusinessName      *string `json:"business_name"`
	TransferTrunkID   *string `json:"transfer_trunk_id"`
	TransferTrunkName *string `json:"transfer_trunk_name"`
	WorkflowID        *string `json:"workflow_id"`
	WorkflowName      *string `json:"workflow_name"`
	Source            *string `json:"source"`
	IsActive          bool    `json:"is_active"`
	CreatedAt         string  `json:"created_at"`
	UpdatedAt         string  `json:"updated_at"`
}

func numberObject(n *store.Number) numberJSON {
	return numberJSON{
		ID: n.ID, OrgID: n.OrgID, PhoneNumber: n.PhoneNumber, Name: n.Name,
		AssistantID: n.AssistantID, AgentID: n.AssistantID, AgentName: n.AssistantName, BusinessName: n.BusinessName,
		TransferTrunkID: n.TransferTrunkID, TransferTrunkName: n.TransferTrunkName,
		WorkflowID: n.WorkflowID, WorkflowName: n.WorkflowName, Source: n.Source, IsActive: n.IsActive,
		CreatedAt: ts(n.CreatedAt), UpdatedAt: ts(n.UpdatedAt),
	}
}

// callJSON renders a call (spec §8.11) with the alternative spellings the
// sources use: agent_phone for assistant_phone, assistant_name for agent_name,
// assistant_id for agent_id.
type callJSON struct {
	ID              string          `json:"id"`
	OrgID           string          `json:"org_id"`
	CallerPhone     *string         `json:"caller_phone"`
	AssistantPhone  *string         `json:"assistant_phone"`
	AgentPhone      *string         `json:"agent_phone"`
	Status          string          `json:"status"`
	Direction       *string         `json:"direction"`
	EndReason       *string         `json:"end_reason"`
	Error           *string         `json:"error"`
	StartedAt       any             `json:"started_at"`
	EndedAt         any             `json:"ended_at"`
	DurationSeconds *int            `json:"duration_seconds"`
	Summary         *string         `json:"summary"`
	AnalysisResult  json.RawMessage `json:"analysis_result"`
	Messages        json.RawMessage `json:"messages"`
	RoomName        *string         `json:"room_name"`
	RecordingURL    *string         `json:"recording_url"`
	Metrics         json.RawMessage `json:"metrics"`
	AgentID         *string         `json:"agent_id"`
	AssistantID     *string         `json:"assistant_id"`
	NumberID        *string         `json:"number_id"`
	AgentName       *string         `json:"agent_name"`
	AssistantName   *string         `json:"assistant_name"`
	BusinessName    *string         `json:"business_name"`
	PhoneNumber     *string         `json:"phone_number"`
	// Parley's additions: why the structured analysis produced nothing,
	// and the caller's answer to the recording-consent prompt.
	AnalysisError *string `json:"analysis_error"`
	Consent       *string `json:"consent"`
	CreatedAt     string  `json:"created_at"`
	UpdatedAt     string  `json:"updated_at"`
}

var jsonNull = json.RawMessage("null")

func (s *Server) callObject(c *store.Call) callJSON {
	out := callJSON{
		ID: c.ID, OrgID: c.OrgID, CallerPhone: c.CallerPhone, AssistantPhone: c.AssistantPhone, AgentPhone: c.AssistantPhone,
		Status: c.Status.String(), EndReason: c.EndReason, Error: c.Error,
		StartedAt: tsPtr(c.StartedAt), EndedAt: tsPtr(c.EndedAt), DurationSeconds: c.DurationSeconds,
		Summary: c.Summary, AnalysisResult: c.AnalysisResult, Messages: c.Messages, RoomName: c.RoomName, RecordingURL: s.recordingURL(c), Metrics: c.Metrics,
		AnalysisError: c.AnalysisError, Consent: c.Consent,
		AgentID: c.AgentID, AssistantID: c.AgentID, NumberID: c.NumberID, AgentName: c.AgentName, AssistantName: c.AgentName,
		BusinessName: c.BusinessName, PhoneNumber: c.PhoneNumber, CreatedAt: ts(c.CreatedAt), UpdatedAt: ts(c.UpdatedAt),
	}
	if c.Direction != call.DirectionUnknown {
		d := c.Direction.String()
		out.Direction = &d
	}
	if out.AnalysisResult == nil {
		out.AnalysisResult = jsonNull
	}
	if out.Messages == nil {
		out.Messages = jsonNull
	}
	return out
}

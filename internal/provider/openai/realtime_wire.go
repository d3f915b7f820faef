package openai

import (
	"encoding/json"

	"github.com/parley-voice/parley/internal/llm"
)

// Wire types of the Realtime protocol (OpenAI GA and the dialects that copy
// it, xAI's Grok voice agents). Only what the adapter sends and reads is
// modelled; other fields of server events are ignored.

// Audio formats of the protocol.
const (
	// FormatPCMU is G.711 µ-law at 8 kHz, the format the adapter uses both
	// ways: the call's own audio, so nothing is resampled.
	FormatPCMU = "audio/pcmu"
)

// RealtimeTool is a flat function tool of session.update ("name" at the top
// level, unlike Chat Completions).
type RealtimeTool struct {
	Type        string          `json:"type"` // "function"
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

// rtEmptyParameters is sent for a tool without a schema: the service wants
// an object schema.
var rtEmptyParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// RealtimeFunctionTools returns specs as flat function tools.
func RealtimeFunctionTools(specs []llm.ToolSpec) []RealtimeTool {
	if len(specs) == 0 {
		return nil
	}
	out := make([]RealtimeTool, len(specs))
	for i, s := range specs {
		p := s.Parameters
		if len(p) == 0 {
			p = rtEmptyParameters
		}
		out[i] = RealtimeTool{Type: "function", Name: s.Name, Description: s.Description, Parameters: p}
	}
	return out
}

// RealtimeFormat is an audio format object, {"type":"audio/pcmu"}.
type RealtimeFormat struct {
	Type string `json:"type"`
	Rate int    `json:"rate,omitempty"`
}

// Client events.
type (
	rtSessionUpdate struct {
		Type    string `json:"type"` // session.update
		Session any    `json:"session"`
	}
	rtAppend struct {
		Type  string `json:"type"` // input_audio_buffer.append
		Audio string `json:"audio"`
	}
	rtItemCreate struct {
		Type string `json:"type"` // conversation.item.create
		Item rtItem `json:"item"`
	}
	rtItem struct {
		Type    string          `json:"type"` // message, function_call_output
		Role    string          `json:"role,omitempty"`
		Content []rtItemContent `json:"content,omitempty"`
		CallID  string          `json:"call_id,omitempty"`
		Output  *string         `json:"output,omitempty"`
	}
	rtItemContent struct {
		Type string `json:"type"` // input_text
		Text string `json:"text"`
	}
	rtResponseCreate struct {
		Type     string      `json:"type"` // response.create
		Response *rtResponse `json:"response,omitempty"`
	}
	rtResponse struct {
		Instructions string `json:"instructions,omitempty"`
	}
	rtTruncate struct {
		Type         string `json:"type"` // conversation.item.truncate
		ItemID       string `json:"item_id"`
		ContentIndex int    `json:"content_index"`
		AudioEndMs   int64  `json:"audio_end_ms"`
	}
	rtCancel struct {
		Type string `json:"type"` // response.cancel
	}
)

// rtServerEvent is any server event, with the fields of the ones the
// adapter reads.
type rtServerEvent struct {
	Type       string          `json:"type"`
	ItemID     string          `json:"item_id"`
	Delta      string          `json:"delta"`
	Transcript string          `json:"transcript"`
	CallID     string          `json:"call_id"`
	Name       string          `json:"name"`
	Arguments  string          `json:"arguments"`
	ResponseID string          `json:"response_id"`
	Response   *rtServerResp   `json:"response"`
	Item       *rtOutItem      `json:"item"`
	Error      *rtErrorObject  `json:"error"`
	Message    string          `json:"message"` // errors sent flat by some dialects
	Code       json.RawMessage `json:"code"`
}

type rtServerResp struct {
	ID            string          `json:"id"`
	Status        string          `json:"status"`
	StatusDetails json.RawMessage `json:"status_details"`
}

type rtErrorObject struct {
	Type    string          `json:"type"`
	Code    json.RawMessage `json:"code"`
	Message string          `json:"message"`
	Param   json.RawMessage `json:"param"`
	EventID string          `json:"event_id"`
}

// rtOutItem is an output item of response.output_item.added|done.
type rtOutItem struct {
	ID        string `json:"id"`
	Type      string `json:"type"` // message, function_call
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

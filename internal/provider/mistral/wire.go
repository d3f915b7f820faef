package mistral

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Client → server message types.
const (
	typeSessionUpdate = "session.update"
	typeAppend        = "input_audio.append"
	typeFlush         = "input_audio.flush"
	typeEnd           = "input_audio.end"
)

// Server → client message types.
const (
	typeSessionCreated = "session.created"
	typeSessionUpdated = "session.updated"
	typeTextDelta      = "transcription.text.delta"
	typeSegment        = "transcription.segment"
	typeLanguage       = "transcription.language"
	typeDone           = "transcription.done"
	typeError          = "error"
)

// maxAppendBytes is the largest decoded audio payload of one append.
const maxAppendBytes = 262144

type audioFormat struct {
	Encoding   string `json:"encoding"`
	SampleRate int    `json:"sample_rate"`
}

type sessionInfo struct {
	RequestID              string       `json:"request_id,omitempty"`
	Model                  string       `json:"model,omitempty"`
	AudioFormat            *audioFormat `json:"audio_format,omitempty"`
	TargetStreamingDelayMs *int         `json:"target_streaming_delay_ms,omitempty"`
}

type sessionUpdate struct {
	Type    string      `json:"type"`
	Session sessionInfo `json:"session"`
}

type appendMsg struct {
	Type  string `json:"type"`
	Audio []byte `json:"audio"` // base64 by encoding/json
}

type controlMsg struct {
	Type string `json:"type"`
}

// serverMsg is the union of the server events this client reads.
type serverMsg struct {
	Type          string          `json:"type"`
	Session       *sessionInfo    `json:"session,omitempty"`
	Text          string          `json:"text"`
	AudioLanguage string          `json:"audio_language"`
	Language      string          `json:"language"`
	Start         float64         `json:"start"`
	End           float64         `json:"end"`
	Error         json.RawMessage `json:"error,omitempty"`
}

// parseServerMsg decodes one server event; a message that is not a JSON
// object with a type is an error.
func parseServerMsg(data []byte) (serverMsg, error) {
	var m serverMsg
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("decoding server message: %w", err)
	}
	if m.Type == "" {
		return m, errors.New("server message has no type")
	}
	return m, nil
}

// errorText extracts the message of an error event, whose "error" is an
// object with a string (or {detail}) message, or a plain string.
func errorText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil && s != "" {
		return s
	}
	var obj struct {
		Message json.RawMessage `json:"message"`
		Code    any             `json:"code"`
	}
	if json.Unmarshal(raw, &obj) != nil {
		return truncate(string(raw), 200)
	}
	if json.Unmarshal(obj.Message, &s) == nil && s != "" {
		return s
	}
	var detail struct {
		Detail string `json:"detail"`
	}
	if json.Unmarshal(obj.Message, &detail) == nil && detail.Detail != "" {
		return detail.Detail
	}
	return truncate(string(raw), 200)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

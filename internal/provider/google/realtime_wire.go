package google

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/realtime"
)

// The BidiGenerateContent messages used here (genai-go types.go:
// LiveClientMessage, LiveServerMessage). Exactly one field of each message
// is set.

// liveReadLimit bounds one server message (100 ms of 24 kHz audio is about
// 6.4 KB of base64; the service sends larger pieces).
const liveReadLimit = 4 << 20

type liveClientMessage struct {
	Setup         *liveSetup         `json:"setup,omitempty"`
	RealtimeInput *liveRealtimeInput `json:"realtimeInput,omitempty"`
	ClientContent *liveClientContent `json:"clientContent,omitempty"`
	ToolResponse  *liveToolResponse  `json:"toolResponse,omitempty"`
}

type liveSetup struct {
	Model               string                   `json:"model"`
	GenerationConfig    liveGenerationConfig     `json:"generationConfig"`
	SystemInstruction   *liveContent             `json:"systemInstruction,omitempty"`
	Tools               []liveTool               `json:"tools,omitempty"`
	RealtimeInputConfig *liveRealtimeInputConfig `json:"realtimeInputConfig,omitempty"`
	// Empty objects switch the transcriptions on.
	InputAudioTranscription  *struct{} `json:"inputAudioTranscription,omitempty"`
	OutputAudioTranscription *struct{} `json:"outputAudioTranscription,omitempty"`
	// SessionResumption asks for resumption handles; with a handle it
	// resumes that session.
	SessionResumption *liveResumption `json:"sessionResumption,omitempty"`
}

type liveResumption struct {
	Handle string `json:"handle,omitempty"`
}

type liveResumptionUpdate struct {
	NewHandle string `json:"newHandle"`
	Resumable bool   `json:"resumable"`
}

type liveGenerationConfig struct {
	ResponseModalities []string         `json:"responseModalities"`
	SpeechConfig       liveSpeechConfig `json:"speechConfig"`
	Temperature        *float64         `json:"temperature,omitempty"`
	MaxOutputTokens    int              `json:"maxOutputTokens,omitempty"`
}

type liveSpeechConfig struct {
	VoiceConfig struct {
		PrebuiltVoiceConfig struct {
			VoiceName string `json:"voiceName"`
		} `json:"prebuiltVoiceConfig"`
	} `json:"voiceConfig"`
}

type liveContent struct {
	Role  string     `json:"role,omitempty"`
	Parts []livePart `json:"parts"`
}

type livePart struct {
	Text       string    `json:"text,omitempty"`
	InlineData *liveBlob `json:"inlineData,omitempty"`
	Thought    bool      `json:"thought,omitempty"`
}

type liveBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type liveTool struct {
	FunctionDeclarations []liveFunctionDeclaration `json:"functionDeclarations"`
}

// liveFunctionDeclaration gives the parameters as JSON Schema
// (parametersJsonSchema), as llm.ToolSpec holds them, rather than
// Google's OpenAPI subset (parameters).
type liveFunctionDeclaration struct {
	Name                 string          `json:"name"`
	Description          string          `json:"description,omitempty"`
	ParametersJSONSchema json.RawMessage `json:"parametersJsonSchema,omitempty"`
}

type liveRealtimeInputConfig struct {
	AutomaticActivityDetection liveActivityDetection `json:"automaticActivityDetection"`
}

type liveActivityDetection struct {
	StartOfSpeechSensitivity string `json:"startOfSpeechSensitivity,omitempty"`
	EndOfSpeechSensitivity   string `json:"endOfSpeechSensitivity,omitempty"`
	PrefixPaddingMs          int64  `json:"prefixPaddingMs,omitempty"`
	SilenceDurationMs        int64  `json:"silenceDurationMs,omitempty"`
}

type liveRealtimeInput struct {
	Audio *liveBlob `json:"audio,omitempty"`
}

type liveClientContent struct {
	Turns        []liveContent `json:"turns"`
	TurnComplete bool          `json:"turnComplete"`
}

type liveToolResponse struct {
	FunctionResponses []liveFunctionResponse `json:"functionResponses"`
}

type liveFunctionResponse struct {
	ID       string         `json:"id,omitempty"`
	Name     string         `json:"name"`
	Response map[string]any `json:"response"`
}

type liveServerMessage struct {
	SetupComplete           *json.RawMessage      `json:"setupComplete"`
	ServerContent           *liveServerContent    `json:"serverContent"`
	ToolCall                *liveToolCall         `json:"toolCall"`
	ToolCallCancellation    *liveToolCancel       `json:"toolCallCancellation"`
	GoAway                  *liveGoAway           `json:"goAway"`
	SessionResumptionUpdate *liveResumptionUpdate `json:"sessionResumptionUpdate"`
	UsageMetadata           *json.RawMessage      `json:"usageMetadata"`
	Error                   *liveServerErrorBody  `json:"error"`
}

type liveServerErrorBody struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Status  string `json:"status"`
}

type liveServerContent struct {
	ModelTurn           *liveContent       `json:"modelTurn"`
	TurnComplete        bool               `json:"turnComplete"`
	GenerationComplete  bool               `json:"generationComplete"`
	Interrupted         bool               `json:"interrupted"`
	InputTranscription  *liveTranscription `json:"inputTranscription"`
	OutputTranscription *liveTranscription `json:"outputTranscription"`
}

type liveTranscription struct {
	Text string `json:"text"`
}

type liveToolCall struct {
	FunctionCalls []liveFunctionCall `json:"functionCalls"`
}

type liveFunctionCall struct {
	ID   string          `json:"id"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args"`
}

type liveToolCancel struct {
	IDs []string `json:"ids"`
}

type liveGoAway struct {
	TimeLeft string `json:"timeLeft"`
}

// kind names the message's field, for errors and logs.
func (m *liveServerMessage) kind() string {
	switch {
	case m.SetupComplete != nil:
		return "setupComplete"
	case m.ServerContent != nil:
		return "serverContent"
	case m.ToolCall != nil:
		return "toolCall"
	case m.ToolCallCancellation != nil:
		return "toolCallCancellation"
	case m.GoAway != nil:
		return "goAway"
	case m.SessionResumptionUpdate != nil:
		return "sessionResumptionUpdate"
	case m.UsageMetadata != nil:
		return "usageMetadata"
	case m.Error != nil:
		return "error"
	}
	return "an unknown message"
}

// decodeServerMessage parses one server message (text or binary frame).
func decodeServerMessage(data []byte) (*liveServerMessage, error) {
	var m liveServerMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("google: Gemini Live sent a message that is not JSON: %w", err)
	}
	return &m, nil
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("google: encoding a Gemini Live message: %w", err)
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// setupMessage is the first message of a session.
func setupMessage(model string, cfg realtime.Config) liveClientMessage {
	voice := cfg.Voice
	if voice == "" {
		voice = DefaultLiveVoice
	}
	s := &liveSetup{
		Model: model,
		GenerationConfig: liveGenerationConfig{
			ResponseModalities: []string{"AUDIO"},
			Temperature:        cfg.Temperature,
			MaxOutputTokens:    cfg.MaxOutputTokens,
		},
		InputAudioTranscription:  &struct{}{},
		OutputAudioTranscription: &struct{}{},
	}
	s.GenerationConfig.SpeechConfig.VoiceConfig.PrebuiltVoiceConfig.VoiceName = voice
	if strings.TrimSpace(cfg.Instructions) != "" {
		s.SystemInstruction = &liveContent{Parts: []livePart{{Text: cfg.Instructions}}}
	}
	if len(cfg.Tools) > 0 {
		decls := make([]liveFunctionDeclaration, 0, len(cfg.Tools))
		for _, t := range cfg.Tools {
			d := liveFunctionDeclaration{Name: t.Name, Description: t.Description}
			if len(bytes.TrimSpace(t.Parameters)) > 0 && string(bytes.TrimSpace(t.Parameters)) != "null" {
				d.ParametersJSONSchema = t.Parameters
			}
			decls = append(decls, d)
		}
		s.Tools = []liveTool{{FunctionDeclarations: decls}}
	}
	if vad := activityDetection(cfg.Turn); vad != (liveActivityDetection{}) {
		s.RealtimeInputConfig = &liveRealtimeInputConfig{AutomaticActivityDetection: vad}
	}
	return liveClientMessage{Setup: s}
}

// activityDetection maps the turn settings onto Gemini's VAD. Gemini has no
// numeric threshold: a high one (≥ 0.7, ignore more noise) is a low start
// sensitivity, a low one (≤ 0.3) a high start sensitivity; others keep the
// service's default.
func activityDetection(t realtime.TurnDetection) liveActivityDetection {
	var a liveActivityDetection
	switch {
	case t.Threshold >= 0.7:
		a.StartOfSpeechSensitivity = "START_SENSITIVITY_LOW"
	case t.Threshold > 0 && t.Threshold <= 0.3:
		a.StartOfSpeechSensitivity = "START_SENSITIVITY_HIGH"
	}
	if t.PrefixPadding > 0 {
		a.PrefixPaddingMs = t.PrefixPadding.Milliseconds()
	}
	if t.Silence > 0 {
		a.SilenceDurationMs = t.Silence.Milliseconds()
	}
	return a
}

// errorBodyMessage reads Google's error body, bounded: status and message,
// or the text.
func errorBodyMessage(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 8<<10))
	var e struct {
		Error liveServerErrorBody `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		if e.Error.Status != "" {
			return clipText(e.Error.Status + ": " + e.Error.Message)
		}
		return clipText(e.Error.Message)
	}
	return clipText(string(b))
}

// parseTimeLeft reads a protobuf Duration ("10s", "1.5s"); 0 when absent.
func parseTimeLeft(s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0
	}
	return d
}

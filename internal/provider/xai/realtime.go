package xai

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/provider/openai"
	"github.com/parley-voice/parley/internal/realtime"
)

// Speech-to-speech with Grok voice agents (wss://api.x.ai/v1/realtime):
// OpenAI's Realtime event vocabulary with xAI's own, flatter session
// (voice, instructions and turn_detection at session level), server-side
// tools (web_search, x_search, file_search) and no
// conversation.item.truncate (the service cuts its context itself, so
// Truncate is a no-op). The protocol client is openai's; this file is the
// dialect.

const (
	// DefaultRealtimeURL is xAI's realtime endpoint.
	DefaultRealtimeURL = "wss://api.x.ai/v1/realtime"
	// DefaultRealtimeModel is used when realtime.Config.Model is empty.
	DefaultRealtimeModel = "grok-voice-think-fast-2.0"
)

// RealtimeModels returns the Grok voice models, the default first.
func RealtimeModels() []string {
	return []string{"grok-voice-think-fast-2.0", "grok-voice-think-fast-1.0", "grok-voice-latest", "grok-realtime-v1"}
}

// RealtimeConfig configures the xAI realtime provider.
type RealtimeConfig struct {
	// URL is the websocket endpoint; empty is DefaultRealtimeURL.
	URL string
	// DialTimeout bounds the dial and the session set-up; 0 is 10 s.
	DialTimeout time.Duration
	// HTTPClient performs the upgrade; nil is http.DefaultClient.
	HTTPClient *http.Client
	// Logger is used when realtime.Config.Logger is nil; nil discards.
	Logger *slog.Logger
}

// NewRealtime returns the xAI realtime provider.
func NewRealtime(cfg RealtimeConfig) realtime.Provider {
	return openai.NewRealtimeDialect(openai.RealtimeConfig{
		URL: cfg.URL, DialTimeout: cfg.DialTimeout, HTTPClient: cfg.HTTPClient, Logger: cfg.Logger,
	}, openai.RealtimeDialect{
		Name:         "xai",
		Service:      "xAI",
		DefaultURL:   DefaultRealtimeURL,
		DefaultModel: DefaultRealtimeModel,
		Session:      realtimeSession,
		// Truncation is sent as on OpenAI: integrators' notes say xAI
		// lacks it, its API claims Realtime compatibility. Refused, it
		// comes back as an error event, a Warning, and the call goes on.
	})
}

// xAI's session object.
type (
	rtSession struct {
		Voice           string          `json:"voice"`
		Instructions    string          `json:"instructions,omitempty"`
		TurnDetection   rtTurnDetection `json:"turn_detection"`
		Audio           rtAudio         `json:"audio"`
		Temperature     *float64        `json:"temperature,omitempty"`
		MaxOutputTokens int             `json:"max_output_tokens,omitempty"`
		ReasoningEffort string          `json:"reasoning_effort,omitempty"`
		Speed           float64         `json:"speed,omitempty"`
		Tools           []any           `json:"tools,omitempty"`
	}
	rtTurnDetection struct {
		Type              string   `json:"type"` // server_vad
		Threshold         *float64 `json:"threshold,omitempty"`
		SilenceDurationMs *int64   `json:"silence_duration_ms,omitempty"`
		PrefixPaddingMs   *int64   `json:"prefix_padding_ms,omitempty"`
		IdleTimeoutMs     *int64   `json:"idle_timeout_ms,omitempty"`
	}
	rtAudio struct {
		Input  rtAudioInput  `json:"input"`
		Output rtAudioOutput `json:"output"`
	}
	rtAudioInput struct {
		Format        openai.RealtimeFormat `json:"format"`
		Transcription *rtTranscription      `json:"transcription,omitempty"`
	}
	rtAudioOutput struct {
		Format openai.RealtimeFormat `json:"format"`
	}
	// rtTranscription carries the llm_config transcription hints.
	rtTranscription struct {
		LanguageHint string   `json:"language_hint,omitempty"`
		Keyterms     []string `json:"keyterms,omitempty"`
	}
	rtServerTool struct {
		Type            string   `json:"type"`
		AllowedXHandles []string `json:"allowed_x_handles,omitempty"`
		VectorStoreIDs  []string `json:"vector_store_ids,omitempty"`
		MaxNumResults   int      `json:"max_num_results,omitempty"`
	}
)

// realtimeSession builds xAI's session object from cfg. Values are passed
// as given (the service clamps them); Delegation is OpenAI's and ignored.
func realtimeSession(cfg realtime.Config) (any, error) {
	if cfg.Speed < 0 || cfg.MaxOutputTokens < 0 {
		return nil, errors.New("speed and max output tokens must not be negative")
	}
	switch cfg.ReasoningEffort {
	case "", "none", "high":
	default:
		return nil, fmt.Errorf("reasoning effort %q (want none or high)", cfg.ReasoningEffort)
	}
	voice := strings.ToLower(strings.TrimSpace(cfg.Voice))
	if voice == "" {
		voice = DefaultVoice
	}
	t := openai.RealtimeTurnFields(cfg.Turn)
	s := rtSession{
		Voice:        voice,
		Instructions: cfg.Instructions,
		TurnDetection: rtTurnDetection{Type: "server_vad", Threshold: t.Threshold, SilenceDurationMs: t.SilenceDurationMs,
			PrefixPaddingMs: t.PrefixPaddingMs, IdleTimeoutMs: t.IdleTimeoutMs},
		Audio: rtAudio{
			Input:  rtAudioInput{Format: openai.RealtimeFormat{Type: openai.FormatPCMU}},
			Output: rtAudioOutput{Format: openai.RealtimeFormat{Type: openai.FormatPCMU}},
		},
		Temperature:     cfg.Temperature,
		MaxOutputTokens: cfg.MaxOutputTokens,
		ReasoningEffort: cfg.ReasoningEffort,
		Speed:           cfg.Speed,
	}
	if cfg.Language != "" || len(cfg.Keyterms) > 0 {
		s.Audio.Input.Transcription = &rtTranscription{LanguageHint: cfg.Language, Keyterms: cfg.Keyterms}
	}
	for _, ft := range openai.RealtimeFunctionTools(cfg.Tools) {
		s.Tools = append(s.Tools, ft)
	}
	for _, st := range cfg.ServerTools {
		switch st.Type {
		case "web_search":
			s.Tools = append(s.Tools, rtServerTool{Type: st.Type})
		case "x_search":
			s.Tools = append(s.Tools, rtServerTool{Type: st.Type, AllowedXHandles: st.AllowedXHandles})
		case "file_search":
			if len(st.VectorStoreIDs) == 0 {
				return nil, errors.New("file_search needs at least one vector store id")
			}
			s.Tools = append(s.Tools, rtServerTool{Type: st.Type, VectorStoreIDs: st.VectorStoreIDs, MaxNumResults: st.MaxResults})
		default:
			return nil, fmt.Errorf("server tool %q (want web_search, x_search or file_search)", st.Type)
		}
	}
	return s, nil
}

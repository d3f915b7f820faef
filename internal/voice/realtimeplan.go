package voice

import (
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/live"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/realtime"
)

// realtimeDoc is the part of llm_config only realtime providers have
// (catalog: xai_realtime, openai_live, google_realtime). The validator
// has clamped and defaulted it.
type realtimeDoc struct {
	Voice         string `json:"voice"`
	TurnDetection *struct {
		Threshold       *float64 `json:"threshold"`
		PrefixPaddingMS *float64 `json:"prefix_padding_ms"`
		SilenceMS       *float64 `json:"silence_duration_ms"`
		IdleTimeoutMS   *float64 `json:"idle_timeout_ms"`
	} `json:"turn_detection"`
	ReasoningEffort string  `json:"reasoning_effort"`
	Speed           float64 `json:"speed"`
	Transcription   *struct {
		LanguageHint string   `json:"language_hint"`
		Keyterms     []string `json:"keyterms"`
	} `json:"transcription"`
	ProviderTools []struct {
		Type            string   `json:"type"`
		AllowedXHandles []string `json:"allowed_x_handles"`
		VectorStoreIDs  []string `json:"vector_store_ids"`
		MaxNumResults   int      `json:"max_num_results"`
	} `json:"provider_tools"`
	Delegation *struct {
		Model        string `json:"model"`
		Instructions string `json:"instructions"`
	} `json:"delegation"`
	Location        string `json:"location"`
	MaxOutputTokens int    `json:"max_output_tokens"`
}

// realtimePlan is a realtime assistant's session settings and provider.
type realtimePlan struct {
	provider realtime.Provider
	session  realtime.Config
	byok     bool
}

// planRealtime resolves a realtime assistant's provider, key and session
// settings.
func (e *Engine) planRealtime(a *assistantDoc, keys map[string]string) (*realtimePlan, error) {
	id := a.LLM.Provider
	p, ok := e.cfg.Providers.Realtime[id]
	if !ok {
		return nil, fmt.Errorf("realtime provider %q is not available on this server", id)
	}
	rp := &realtimePlan{provider: p}
	s := &rp.session
	var err error
	if s.APIKey, rp.byok, err = e.keyFor(keys, catalog.LLM, id, a.LLM.Model); err != nil {
		return nil, err
	}
	d := &a.LLM.realtimeDoc
	s.Model, s.Voice, s.Temperature = a.LLM.Model, d.Voice, a.LLM.Temperature
	s.MaxOutputTokens = d.MaxOutputTokens
	s.ReasoningEffort, s.Speed, s.Location = d.ReasoningEffort, d.Speed, d.Location
	if t := d.TurnDetection; t != nil {
		if t.Threshold != nil {
			s.Turn.Threshold = *t.Threshold
		}
		s.Turn.PrefixPadding = millis(t.PrefixPaddingMS)
		s.Turn.Silence = millis(t.SilenceMS)
		s.Turn.IdleTimeout = millis(t.IdleTimeoutMS)
	}
	if t := d.Transcription; t != nil {
		s.Language, s.Keyterms = t.LanguageHint, t.Keyterms
	}
	for _, t := range d.ProviderTools {
		s.ServerTools = append(s.ServerTools, realtime.ServerTool{Type: t.Type, AllowedXHandles: t.AllowedXHandles,
			VectorStoreIDs: t.VectorStoreIDs, MaxResults: t.MaxNumResults})
	}
	if g := d.Delegation; g != nil {
		s.Delegation = &realtime.Delegation{Model: g.Model, Instructions: g.Instructions}
	}
	return rp, nil
}

func millis(ms *float64) time.Duration {
	if ms == nil {
		return 0
	}
	return time.Duration(*ms * float64(time.Millisecond))
}

// liveConfig is the realtime conversation's settings: the session's, and
// what it shares with a pipeline call.
func (p *plan) liveConfig(fallback FallbackVoice) live.Config {
	c := p.cfg
	s := p.rt.session
	for _, m := range c.System {
		if m.Role == llm.System {
			if s.Instructions != "" {
				s.Instructions += "\n\n"
			}
			s.Instructions += m.Content
		}
	}
	return live.Config{
		Session:          s,
		FirstMessage:     c.FirstMessage,
		EndCallMessage:   c.EndCallMessage,
		EndCallTool:      c.EndCallTool,
		Tools:            c.Tools,
		Transfers:        c.Transfers,
		MaxDuration:      c.MaxDuration,
		Silence:          c.Silence,
		Apology:          c.Apology,
		ApologyVoice:     fallback.Voice,
		DTMFDigitTimeout: c.DTMFDigitTimeout,
	}
}

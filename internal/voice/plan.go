package voice

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/mcp"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/secret"
)

// plan is a call's conversation, resolved: settings plus provider clients.
type plan struct {
	cfg       pipeline.Config
	providers pipeline.Providers
	// rt is set for a realtime assistant: the conversation runs on a
	// realtime session; cfg holds what both kinds share (tools, first
	// message, silence, limits) and its STT, LLM and TTS parts are unused.
	rt   *realtimePlan
	byok struct{ stt, llm, tts bool }
	// doc is the resolved assistant document, echoed in webhooks.
	doc json.RawMessage
	// hook is where the call's webhooks go (nil: nowhere).
	hook *hookTarget
	// routes says how each function tool is run.
	routes map[string]toolRoute
	// sessions are the MCP connections the call holds open.
	sessions []*mcp.Session
	// firstOutbound is speech_config.first_message_outbound: the opening
	// line of outbound calls when set.
	firstOutbound string
	// record is recording_enabled: the call is recorded (unless gdpr).
	record bool
	// consent is recording_consent.message when the consent prompt is on
	// (inbound calls only).
	consent string
	// gdpr is gdpr_mode: no recording, content kept only for the
	// organization's content retention, the caller's number masked in logs.
	gdpr bool
}

// close releases the plan's MCP connections.
func (p *plan) close() {
	for _, s := range p.sessions {
		s.Close()
	}
	p.sessions = nil
}

// assistantDoc is the part of a stored (normalised) assistant the pipeline
// runs on; see internal/assistant for the full shape.
type assistantDoc struct {
	FirstMessage     *string `json:"first_message"`
	RecordingEnabled bool    `json:"recording_enabled"`
	GDPRMode         bool    `json:"gdpr_mode"`
	RecordingConsent *struct {
		Enabled bool   `json:"enabled"`
		Message string `json:"message"`
	} `json:"recording_consent"`
	MaxDurationSeconds *int           `json:"max_duration_seconds"`
	STT                map[string]any `json:"stt_config"`
	TTS                map[string]any `json:"tts_config"`
	LLM                struct {
		Provider            string       `json:"provider"`
		Model               string       `json:"model"`
		Temperature         *float64     `json:"temperature"`
		MaxCompletionTokens int          `json:"max_completion_tokens"`
		Messages            []docMessage `json:"messages"`
		Tools               []docTool    `json:"tools"`
		realtimeDoc
	} `json:"llm_config"`
	Speech *struct {
		TurnTaking *struct {
			MinDelay       *float64 `json:"endpointing_min_delay"`
			MaxDelay       *float64 `json:"endpointing_max_delay"`
			InterruptDur   *float64 `json:"interruption_min_duration"`
			InterruptWords *int     `json:"interruption_min_words"`
			// FalseInterrupt is absent (default), null (off) or seconds.
			FalseInterrupt json.RawMessage `json:"false_interruption_timeout"`
		} `json:"turn_taking"`
		Pronunciation  []struct{ From, To string } `json:"pronunciation"`
		EndCallMessage *string                     `json:"end_call_message"`
		FirstOutbound  *string                     `json:"first_message_outbound"`
	} `json:"speech_config"`
}

type docMessage struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// docTool is a canonical llm_config.tools entry (see assistant.Tools).
type docTool struct {
	Type     string `json:"type"`
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
	} `json:"function"`
	Server *struct {
		URL    string  `json:"url"`
		Secret *string `json:"secret"`
	} `json:"server"`
	Async        bool    `json:"async"`
	Message      *string `json:"message"`
	Destinations []struct {
		Number      string  `json:"number"`
		Description string  `json:"description"`
		Message     *string `json:"message"`
	} `json:"destinations"`
	MCPServerID  string   `json:"mcp_server_id"`
	AllowedTools []string `json:"allowed_tools"`
	Required     *bool    `json:"required"`
}

// plan builds the conversation for an assistant body.
func (e *Engine) plan(ctx context.Context, orgID string, body []byte) (*plan, error) {
	var a assistantDoc
	if err := json.Unmarshal(body, &a); err != nil {
		return nil, fmt.Errorf("assistant configuration is unreadable: %w", err)
	}
	p := &plan{doc: body, routes: map[string]toolRoute{}}
	keys, err := e.orgKeys(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if e.cfg.Catalog.IsRealtime(a.LLM.Provider) {
		if p.rt, err = e.planRealtime(&a, keys); err != nil {
			return nil, err
		}
		p.byok.llm = p.rt.byok
		return e.planCommon(ctx, orgID, p, &a, body)
	}
	sttP, _ := a.STT["provider"].(string)
	ttsP, _ := a.TTS["provider"].(string)
	llmP := a.LLM.Provider
	var ok bool
	if p.providers.STT, ok = e.cfg.Providers.STT[sttP]; !ok {
		return nil, fmt.Errorf("speech-to-text provider %q is not available on this server", sttP)
	}
	if p.providers.LLM, ok = e.cfg.Providers.LLM[llmP]; !ok {
		return nil, fmt.Errorf("language model provider %q is not available on this server", llmP)
	}
	if p.providers.TTS, ok = e.cfg.Providers.TTS[ttsP]; !ok {
		return nil, fmt.Errorf("text-to-speech provider %q is not available on this server", ttsP)
	}
	c := &p.cfg
	if c.STT.APIKey, p.byok.stt, err = e.key(keys, catalog.STT, sttP); err != nil {
		return nil, err
	}
	if c.LLM.APIKey, p.byok.llm, err = e.key(keys, catalog.LLM, llmP); err != nil {
		return nil, err
	}
	if c.TTS.APIKey, p.byok.tts, err = e.key(keys, catalog.TTS, ttsP); err != nil {
		return nil, err
	}

	c.STT.SampleRate = pipeline.SampleRate
	c.STT.Model, _ = a.STT["model"].(string)
	c.STT.Language, _ = a.STT["language"].(string)
	if ms, ok := a.STT["endpointing"].(float64); ok {
		c.STT.Endpointing = time.Duration(ms) * time.Millisecond
	}
	if ms, ok := a.STT["utterance_end_ms"].(float64); ok {
		c.STT.UtteranceEnd = time.Duration(ms) * time.Millisecond
	}
	if terms, ok := a.STT["keyterms"].([]any); ok {
		for _, t := range terms {
			if s, ok := t.(string); ok {
				c.STT.Keyterms = append(c.STT.Keyterms, s)
			}
		}
	}
	c.STT.Options = without(a.STT, "provider", "model", "language", "keyterms")

	c.TTS.SampleRate = pipeline.SampleRate
	c.TTS.Voice, _ = a.TTS["voice_id"].(string)
	c.TTS.Model, _ = a.TTS["model"].(string)
	c.TTS.Language, _ = a.TTS["language"].(string)
	c.TTS.Speed, _ = a.TTS["speed"].(float64)
	c.TTS.Options = without(a.TTS, "provider", "model", "voice_id", "language", "speed")

	c.LLM.Model, c.LLM.Temperature, c.LLM.MaxTokens = a.LLM.Model, a.LLM.Temperature, a.LLM.MaxCompletionTokens
	return e.planCommon(ctx, orgID, p, &a, body)
}

// planCommon fills what pipeline and realtime calls share: the system
// prompt, webhooks, tools, first message, recording, limits, silence and
// speech settings.
func (e *Engine) planCommon(ctx context.Context, orgID string, p *plan, a *assistantDoc, body []byte) (*plan, error) {
	c := &p.cfg
	for _, m := range a.LLM.Messages {
		c.System = append(c.System, llm.Message{Role: llm.Role(m.Role), Content: m.Content})
	}
	p.hook = assistantHook(body)
	org, err := e.orgHook(ctx, orgID)
	if err != nil {
		return nil, err
	}
	if p.hook == nil {
		p.hook = org
	}
	if err := e.planTools(ctx, orgID, p, a.LLM.Tools, org); err != nil {
		p.close()
		return nil, err
	}
	if a.FirstMessage != nil {
		c.FirstMessage = *a.FirstMessage
	}
	p.record, p.gdpr = a.RecordingEnabled, a.GDPRMode
	if rc := a.RecordingConsent; rc != nil && rc.Enabled && strings.TrimSpace(rc.Message) != "" {
		p.consent = rc.Message
	}
	if a.MaxDurationSeconds != nil && *a.MaxDurationSeconds > 0 {
		c.MaxDuration = time.Duration(*a.MaxDurationSeconds) * time.Second
	} else {
		c.MaxDuration = e.maxCallDuration() // silenceplan.go
	}
	c.Silence = planSilence(body)
	c.Turn = pipeline.DefaultTurnTaking()
	if s := a.Speech; s != nil {
		if t := s.TurnTaking; t != nil {
			setSeconds(&c.Turn.EndpointingMinDelay, t.MinDelay)
			setSeconds(&c.Turn.EndpointingMaxDelay, t.MaxDelay)
			setSeconds(&c.Turn.InterruptionMinDur, t.InterruptDur)
			if t.InterruptWords != nil {
				c.Turn.InterruptionMinWords = *t.InterruptWords
			}
			switch raw := string(t.FalseInterrupt); raw {
			case "":
			case "null":
				c.Turn.FalseInterruptTimeout = 0
			default:
				var v float64
				if json.Unmarshal(t.FalseInterrupt, &v) == nil {
					setSeconds(&c.Turn.FalseInterruptTimeout, &v)
				}
			}
		}
		for _, r := range s.Pronunciation {
			c.Pronunciation = append(c.Pronunciation, pipeline.Replacement{From: r.From, To: r.To})
		}
		if s.EndCallMessage != nil {
			c.EndCallMessage = *s.EndCallMessage
		}
		if s.FirstOutbound != nil {
			p.firstOutbound = *s.FirstOutbound
		}
	}
	return p, nil
}

func setSeconds(d *time.Duration, s *float64) {
	if s != nil {
		*d = time.Duration(*s * float64(time.Second))
	}
}

func without(m map[string]any, keys ...string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	for _, k := range keys {
		delete(out, k)
	}
	return out
}

// orgKeys opens the organization's BYOK keys for this call.
func (e *Engine) orgKeys(ctx context.Context, orgID string) (map[string]string, error) {
	rows, err := e.db.BYOKKeys(ctx, orgID)
	if err != nil {
		return nil, storeError{fmt.Errorf("load provider keys: %w", err)}
	}
	out := make(map[string]string, len(rows))
	for _, k := range rows {
		pt, err := e.keys.Open(k.Sealed, secret.Binding{OrgID: orgID, Table: "byok_keys", Field: k.Provider})
		if err != nil {
			return nil, fmt.Errorf("the stored %s key cannot be decrypted (was the master key changed?)", k.Provider)
		}
		out[k.Provider] = string(pt)
	}
	return out, nil
}

// key picks the organization's key (any of the BYOK secrets the catalog
// lists for the provider), else the server's. Providers the catalog lists
// without secrets (local) and ones marked keyless need none.
func (e *Engine) key(org map[string]string, s catalog.Section, provider string) (string, bool, error) {
	return e.keyFor(org, s, provider, "")
}

// keyFor is key for a model that may need one BYOK secret in particular
// (catalog model_requires: a Vertex AI model wants the service-account
// key, not the AI Studio one).
func (e *Engine) keyFor(org map[string]string, s catalog.Section, provider, model string) (string, bool, error) {
	var secrets []string
	if p := e.cfg.Catalog.Provider(s, provider); p != nil {
		secrets = p.SecretsFor(model)
	}
	for _, sec := range secrets {
		if k := org[strings.TrimSuffix(sec, "_secret_id")]; k != "" {
			return k, true, nil
		}
	}
	vendor := provider
	if len(secrets) > 0 {
		vendor = serverKeyName(secrets[0])
	}
	if k := e.cfg.Providers.ServerKeys[provider]; k != "" {
		return k, false, nil
	}
	// A realtime provider takes its vendor's server key: xai_realtime the
	// xAI key, openai_live the OpenAI key, google_realtime the Google key.
	if k := e.cfg.Providers.ServerKeys[vendor]; k != "" {
		return k, false, nil
	}
	if len(secrets) == 0 || e.cfg.Providers.Keyless[provider] {
		return "", false, nil
	}
	return "", false, errNoKey(provider, vendor)
}

// serverKeyName is the vendor whose server key (PARLEY_<VENDOR>_API_KEY)
// stands in for a BYOK secret: xai_secret_id → xai, and both Google
// secrets → google, whose server key may be either kind.
func serverKeyName(secret string) string {
	return strings.TrimSuffix(strings.TrimSuffix(secret, "_secret_id"), "_vertex")
}

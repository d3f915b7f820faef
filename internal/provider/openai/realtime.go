package openai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/realtime"
)

// Speech-to-speech over the Realtime protocol (GA interface):
//
//	GET wss://api.openai.com/v1/realtime?model=<model>
//	Authorization: Bearer <key>
//
// The adapter sends session.update (G.711 µ-law both ways, server VAD that
// creates and interrupts responses, input transcription, flat function
// tools) and waits for session.updated; then the caller's audio goes up as
// input_audio_buffer.append and the service's events come back through
// Recv. The same client speaks xAI's dialect (package xai) through a
// RealtimeDialect.

const (
	// DefaultRealtimeURL is OpenAI's Realtime endpoint.
	DefaultRealtimeURL = "wss://api.openai.com/v1/realtime"
	// DefaultRealtimeModel is used when realtime.Config.Model is empty.
	DefaultRealtimeModel = "gpt-live-1"
	// DefaultRealtimeVoice is used when realtime.Config.Voice is empty.
	DefaultRealtimeVoice = "marin"
	// RealtimeTranscriptionModel transcribes the caller's turns.
	RealtimeTranscriptionModel = "gpt-4o-mini-transcribe"
	// DefaultDialTimeout bounds the dial and the session set-up.
	DefaultDialTimeout = 10 * time.Second
)

// RealtimeVoices returns the voices of gpt-live-1, DefaultRealtimeVoice
// first. Connect does not check against it.
func RealtimeVoices() []string { return []string{"marin", "beacon", "cinder", "stone", "vesper"} }

// RealtimeConfig configures a realtime provider.
type RealtimeConfig struct {
	// URL is the websocket endpoint without query; empty is the dialect's
	// default (DefaultRealtimeURL for OpenAI). http(s) maps to ws(s).
	URL string
	// DialTimeout bounds the dial and the set-up (session.update until
	// session.updated); 0 is DefaultDialTimeout.
	DialTimeout time.Duration
	// HTTPClient performs the upgrade; nil is http.DefaultClient.
	HTTPClient *http.Client
	// Logger is used when realtime.Config.Logger is nil; nil discards.
	Logger *slog.Logger
}

// RealtimeDialect is what a service speaking the Realtime protocol does
// its own way. The event vocabulary is shared; the reader accepts the GA
// names and their beta aliases (response.audio.delta,
// response.audio_transcript.*, response.text.*) whatever the dialect.
type RealtimeDialect struct {
	// Name prefixes errors and logs ("openai", "xai").
	Name string
	// Service names the service in messages ("OpenAI", "xAI").
	Service string
	// DefaultURL is used when RealtimeConfig.URL is empty.
	DefaultURL string
	// DefaultModel is used when realtime.Config.Model is empty.
	DefaultModel string
	// Session returns the "session" object of session.update for cfg
	// (cfg.Model already defaulted). It is marshalled with encoding/json.
	Session func(cfg realtime.Config) (any, error)
	// NoTruncate makes Truncate a no-op: the service cuts its context by
	// itself (xAI has no conversation.item.truncate).
	NoTruncate bool
}

// Realtime is a realtime.Provider for one dialect. It is safe for
// concurrent use.
type Realtime struct {
	cfg     RealtimeConfig
	dialect RealtimeDialect
}

var _ realtime.Provider = (*Realtime)(nil)

// NewRealtime returns the OpenAI Realtime provider.
func NewRealtime(cfg RealtimeConfig) *Realtime {
	return NewRealtimeDialect(cfg, RealtimeDialect{
		Name:         "openai",
		Service:      "OpenAI",
		DefaultURL:   DefaultRealtimeURL,
		DefaultModel: DefaultRealtimeModel,
		Session:      openAISession,
	})
}

// NewRealtimeDialect returns a provider speaking dialect d (package xai
// builds its provider with it).
func NewRealtimeDialect(cfg RealtimeConfig, d RealtimeDialect) *Realtime {
	if cfg.URL == "" {
		cfg.URL = d.DefaultURL
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Realtime{cfg: cfg, dialect: d}
}

// Connect dials the service, configures the session and waits until the
// service has accepted the configuration. A refused upgrade (401 for a bad
// key), an error event or a close during set-up is a *RealtimeError.
func (p *Realtime) Connect(ctx context.Context, cfg realtime.Config) (realtime.Session, error) {
	d := &p.dialect
	if cfg.APIKey == "" {
		return nil, fmt.Errorf("%s realtime: connecting: no %s API key", d.Name, d.Service)
	}
	if cfg.Model == "" {
		cfg.Model = d.DefaultModel
	}
	u, err := realtimeURL(p.cfg.URL, cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("%s realtime: connecting: %w", d.Name, err)
	}
	session, err := d.Session(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s realtime: configuring session: %w", d.Name, err)
	}
	update, err := json.Marshal(rtSessionUpdate{Type: "session.update", Session: session})
	if err != nil {
		return nil, fmt.Errorf("%s realtime: configuring session: %w", d.Name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = p.cfg.Logger
	}
	log = log.With("provider", d.Name, "model", cfg.Model)

	setup, cancel := context.WithTimeout(ctx, p.cfg.DialTimeout)
	defer cancel()
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+cfg.APIKey)
	conn, resp, err := websocket.Dial(setup, u, &websocket.DialOptions{HTTPClient: p.cfg.HTTPClient, HTTPHeader: hdr})
	if err != nil {
		return nil, p.dialError(setup, ctx, err, resp, cfg.APIKey)
	}
	conn.SetReadLimit(rtReadLimit)
	if err := p.configure(setup, conn, update, cfg.APIKey); err != nil {
		_ = conn.CloseNow()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s realtime: connecting: %w", d.Name, ctx.Err())
		}
		return nil, err
	}
	log.Debug("realtime session configured")
	return newRTSession(ctx, conn, d, log, cfg.APIKey), nil
}

// configure sends session.update and reads until session.updated.
func (p *Realtime) configure(ctx context.Context, conn *websocket.Conn, update []byte, key string) error {
	d := &p.dialect
	if err := conn.Write(ctx, websocket.MessageText, update); err != nil {
		return p.setupError(ctx, conn, "sending session.update", err, key)
	}
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return p.setupError(ctx, conn, "waiting for session.updated", err, key)
		}
		if typ != websocket.MessageText {
			continue
		}
		var ev rtServerEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("%s realtime: malformed server event during set-up: %s", d.Name, clip(redact.Key(err.Error(), key)))
		}
		switch ev.Type {
		case "session.updated":
			return nil
		case "error":
			e := eventError(d, &ev, key)
			e.During = "configuring the session"
			return e
		}
	}
}

func (p *Realtime) setupError(ctx context.Context, conn *websocket.Conn, doing string, err error, key string) error {
	d := &p.dialect
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &RealtimeError{Provider: d.Name, During: "configuring the session", CloseCode: int(ce.Code), Message: clip(redact.Key(ce.Reason, key))}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s realtime: %s: timed out after %v", d.Name, doing, p.cfg.DialTimeout)
	}
	return fmt.Errorf("%s realtime: %s: %s", d.Name, doing, redact.Key(err.Error(), key))
}

// dialError explains a failed upgrade.
func (p *Realtime) dialError(setup, parent context.Context, err error, resp *http.Response, key string) error {
	d := &p.dialect
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		var body []byte
		if resp.Body != nil {
			body, _ = io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		}
		a := parseErrorBody(resp.StatusCode, body)
		return &RealtimeError{Provider: d.Name, Service: d.Service, StatusCode: resp.StatusCode,
			Type: a.Type, Code: redact.Key(a.Code, key), Message: redact.Key(a.Message, key)}
	}
	switch {
	case parent.Err() != nil:
		return fmt.Errorf("%s realtime: connecting: %w", d.Name, parent.Err())
	case setup.Err() != nil:
		return fmt.Errorf("%s realtime: connecting: timed out after %v", d.Name, p.cfg.DialTimeout)
	}
	return fmt.Errorf("%s realtime: connecting: %s", d.Name, redact.Key(err.Error(), key))
}

// realtimeURL adds ?model= to base.
func realtimeURL(base, model string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parsing URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("model", model)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// RealtimeError is a failure a realtime service reported: a refused
// upgrade (StatusCode), an error event (Type, Code, Message) or a close
// (CloseCode, Message being the reason). It never contains the API key.
type RealtimeError struct {
	Provider string // "openai", "xai"
	Service  string // "OpenAI", "xAI"; names the key that was rejected
	// During says what was going on ("configuring the session"); empty
	// mid-call.
	During     string
	StatusCode int
	CloseCode  int
	Type, Code string
	Param      string
	Message    string
}

func (e *RealtimeError) Error() string {
	var b strings.Builder
	b.WriteString(e.Provider)
	b.WriteString(" realtime: ")
	if e.During != "" {
		b.WriteString(e.During)
		b.WriteString(": ")
	}
	switch {
	case e.Unauthorized():
		svc := e.Service
		if svc == "" {
			svc = e.Provider
		}
		fmt.Fprintf(&b, "the %s API key was rejected (HTTP %d %s)", svc, e.StatusCode, http.StatusText(e.StatusCode))
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "websocket upgrade refused: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	case e.CloseCode != 0:
		fmt.Fprintf(&b, "the service closed the session with status %d", e.CloseCode)
	default:
		b.WriteString("service error")
	}
	if e.Type != "" || e.Code != "" {
		b.WriteString(" [")
		b.WriteString(strings.Trim(e.Type+" "+e.Code, " "))
		b.WriteString("]")
	}
	if e.Param != "" {
		b.WriteString(" (param ")
		b.WriteString(e.Param)
		b.WriteString(")")
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unauthorized reports a rejected key (HTTP 401 or 403).
func (e *RealtimeError) Unauthorized() bool {
	return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
}

// eventError makes a *RealtimeError of an error event.
func eventError(d *RealtimeDialect, ev *rtServerEvent, key string) *RealtimeError {
	e := &RealtimeError{Provider: d.Name, Service: d.Service}
	if ev.Error != nil {
		e.Type, e.Code, e.Param = ev.Error.Type, scalarText(ev.Error.Code), scalarText(ev.Error.Param)
		e.Message = ev.Error.Message
	} else {
		e.Code, e.Message = scalarText(ev.Code), ev.Message
	}
	e.Type, e.Code, e.Param = clip(redact.Key(e.Type, key)), clip(redact.Key(e.Code, key)), clip(redact.Key(e.Param, key))
	e.Message = clip(redact.Key(e.Message, key))
	return e
}

// openAI session.update ("session" object, GA shape).
type (
	oaSession struct {
		Type             string          `json:"type"` // realtime
		Model            string          `json:"model"`
		Instructions     string          `json:"instructions,omitempty"`
		OutputModalities []string        `json:"output_modalities"`
		Audio            oaAudio         `json:"audio"`
		Tools            []RealtimeTool  `json:"tools,omitempty"`
		ToolChoice       string          `json:"tool_choice,omitempty"`
		Temperature      *float64        `json:"temperature,omitempty"`
		MaxOutputTokens  json.RawMessage `json:"max_output_tokens,omitempty"`
		Delegation       *oaDelegation   `json:"delegation,omitempty"`
	}
	oaAudio struct {
		Input  oaAudioInput  `json:"input"`
		Output oaAudioOutput `json:"output"`
	}
	oaAudioInput struct {
		Format        RealtimeFormat   `json:"format"`
		TurnDetection *oaTurnDetection `json:"turn_detection"`
		Transcription *oaTranscription `json:"transcription,omitempty"`
	}
	oaTurnDetection struct {
		Type              string   `json:"type"` // server_vad
		Threshold         *float64 `json:"threshold,omitempty"`
		PrefixPaddingMs   *int64   `json:"prefix_padding_ms,omitempty"`
		SilenceDurationMs *int64   `json:"silence_duration_ms,omitempty"`
		IdleTimeoutMs     *int64   `json:"idle_timeout_ms,omitempty"`
		CreateResponse    bool     `json:"create_response"`
		InterruptResponse bool     `json:"interrupt_response"`
	}
	oaTranscription struct {
		Model    string `json:"model"`
		Language string `json:"language,omitempty"`
		Prompt   string `json:"prompt,omitempty"`
	}
	oaAudioOutput struct {
		Format RealtimeFormat `json:"format"`
		Voice  string         `json:"voice"`
		Speed  float64        `json:"speed,omitempty"`
	}
	// oaDelegation is GPT-Live's "responses" delegation: a Responses API
	// model reasons and calls tools for the voice model.
	oaDelegation struct {
		Type      string               `json:"type"` // responses
		Responses oaDelegatedResponses `json:"responses"`
	}
	oaDelegatedResponses struct {
		Model        string `json:"model,omitempty"`
		Instructions string `json:"instructions,omitempty"`
	}
)

// RealtimeTurn is the server VAD settings of t in the protocol's units,
// nil for the fields t leaves at the service's defaults.
type RealtimeTurn struct {
	Threshold                                         *float64
	PrefixPaddingMs, SilenceDurationMs, IdleTimeoutMs *int64
}

// RealtimeTurnFields converts t.
func RealtimeTurnFields(t realtime.TurnDetection) RealtimeTurn {
	var r RealtimeTurn
	if t.Threshold > 0 {
		v := t.Threshold
		r.Threshold = &v
	}
	ms := func(d time.Duration) *int64 {
		if d <= 0 {
			return nil
		}
		v := d.Milliseconds()
		return &v
	}
	r.PrefixPaddingMs, r.SilenceDurationMs, r.IdleTimeoutMs = ms(t.PrefixPadding), ms(t.Silence), ms(t.IdleTimeout)
	return r
}

// openAISession builds OpenAI's session object.
func openAISession(cfg realtime.Config) (any, error) {
	if cfg.Speed < 0 || cfg.MaxOutputTokens < 0 {
		return nil, errors.New("speed and max output tokens must not be negative")
	}
	voice := cfg.Voice
	if voice == "" {
		voice = DefaultRealtimeVoice
	}
	turn := RealtimeTurnFields(cfg.Turn)
	s := oaSession{
		Type:             "realtime",
		Model:            cfg.Model,
		Instructions:     cfg.Instructions,
		OutputModalities: []string{"audio"},
		Audio: oaAudio{
			Input: oaAudioInput{
				Format: RealtimeFormat{Type: FormatPCMU},
				TurnDetection: &oaTurnDetection{Type: "server_vad", Threshold: turn.Threshold,
					PrefixPaddingMs: turn.PrefixPaddingMs, SilenceDurationMs: turn.SilenceDurationMs,
					IdleTimeoutMs: turn.IdleTimeoutMs, CreateResponse: true, InterruptResponse: true},
				Transcription: &oaTranscription{Model: RealtimeTranscriptionModel, Language: cfg.Language},
			},
			Output: oaAudioOutput{Format: RealtimeFormat{Type: FormatPCMU}, Voice: voice, Speed: cfg.Speed},
		},
		Tools:       RealtimeFunctionTools(cfg.Tools),
		Temperature: cfg.Temperature,
	}
	if len(cfg.Keyterms) > 0 {
		s.Audio.Input.Transcription.Prompt = "Expect these terms: " + strings.Join(cfg.Keyterms, ", ")
	}
	if len(s.Tools) > 0 {
		s.ToolChoice = "auto"
	}
	if cfg.MaxOutputTokens > 0 {
		s.MaxOutputTokens = json.RawMessage(strconv.Itoa(cfg.MaxOutputTokens))
	}
	if dg := cfg.Delegation; dg != nil {
		s.Delegation = &oaDelegation{Type: "responses", Responses: oaDelegatedResponses{Model: dg.Model, Instructions: dg.Instructions}}
	}
	return s, nil
}

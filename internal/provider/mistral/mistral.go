// Package mistral adapts Mistral's Voxtral realtime transcription API (a
// websocket carrying JSON events: base64 audio up, text deltas down) to the
// stt contract. The service does not detect the end of an utterance, so the
// stream runs an energy VAD on the caller's audio and flushes the service
// when the caller has been silent for stt.Config.Endpointing. Mistral wire
// types stay inside this package.
package mistral

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
	"github.com/parley-voice/parley/internal/stt"
)

// Defaults applied by NewSTT and Open.
const (
	// DefaultBaseURL is Mistral's public API.
	DefaultBaseURL = "https://api.mistral.ai/v1"
	// DefaultModel is the realtime transcription model, used when
	// stt.Config.Model is empty or names a batch-only model.
	DefaultModel = "voxtral-mini-transcribe-realtime-2602"
	// DefaultEndpointing is the caller's silence that ends an utterance
	// when stt.Config.Endpointing is zero.
	DefaultEndpointing = 400 * time.Millisecond
	// DefaultFinalTimeout bounds the wait for transcription.done after a
	// flush; then the utterance's deltas are reported as its Final.
	DefaultFinalTimeout = 2 * time.Second
	// DefaultQueueFrames bounds the audio queued for sending (250 frames of
	// 20 ms are 5 s of audio).
	DefaultQueueFrames = 250
	// DefaultCloseTimeout bounds how long Close waits for the last
	// transcription.
	DefaultCloseTimeout = 3 * time.Second

	realtimePath   = "/audio/transcriptions/realtime"
	dialTimeout    = 10 * time.Second
	readLimit      = 1 << 20
	errorBodyLimit = 4096
)

// Config configures an STT. The zero value talks to Mistral's public API.
type Config struct {
	// BaseURL is the API root, default "https://api.mistral.ai/v1"; http(s)
	// is mapped to ws(s) and "/audio/transcriptions/realtime" appended.
	BaseURL string
	// HTTPClient performs the websocket handshake; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives diagnostics; nil discards them. Keys are never logged.
	Logger *slog.Logger
	// StreamingDelay is sent as target_streaming_delay_ms (the latency the
	// model may use to improve accuracy); zero keeps the server's value.
	// stt.Config.Options["target_streaming_delay_ms"] overrides it.
	StreamingDelay time.Duration
	// FinalTimeout is how long to wait for transcription.done after a
	// flush before reporting the deltas as the Final; default 2 s.
	FinalTimeout time.Duration
	// QueueFrames is how many audio frames may wait to be sent; when full
	// the oldest is dropped. Default 250.
	QueueFrames int
	// CloseTimeout bounds Close's wait for the server; default 3 s.
	CloseTimeout time.Duration
}

// STT opens Voxtral realtime recognition streams. It implements
// stt.Provider and is safe for concurrent use.
type STT struct {
	cfg Config
}

var _ stt.Provider = (*STT)(nil)

// NewSTT returns an STT with cfg's zero fields set to their defaults.
func NewSTT(cfg Config) *STT {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.FinalTimeout <= 0 {
		cfg.FinalTimeout = DefaultFinalTimeout
	}
	if cfg.QueueFrames <= 0 {
		cfg.QueueFrames = DefaultQueueFrames
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	return &STT{cfg: cfg}
}

// Open connects a stream, waits for session.created and sends the audio
// format. The returned stt.Stream is a *Stream.
func (c *STT) Open(ctx context.Context, sc stt.Config) (stt.Stream, error) {
	if sc.SampleRate <= 0 {
		return nil, fmt.Errorf("mistral: opening stream: sample rate %d is not positive", sc.SampleRate)
	}
	u, err := realtimeURL(c.cfg.BaseURL, sc)
	if err != nil {
		return nil, fmt.Errorf("mistral: building realtime URL: %w", err)
	}
	enc, err := newEncoder(sc.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("mistral: opening stream: %w", err)
	}
	header := http.Header{}
	if sc.APIKey != "" {
		header.Set("Authorization", "Bearer "+sc.APIKey)
	}

	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, u, &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient, HTTPHeader: header})
	if err != nil {
		return nil, dialError(resp, err, sc.APIKey)
	}
	conn.SetReadLimit(readLimit)

	created, err := awaitSessionCreated(dialCtx, conn)
	if err != nil {
		conn.CloseNow()
		return nil, err
	}
	log := c.cfg.Logger.With("provider", "mistral")
	if created.RequestID != "" {
		log = log.With("request_id", created.RequestID)
	}
	update := sessionUpdateFor(enc.format(), c.streamingDelay(sc, created))
	if err := writeJSON(dialCtx, conn, update); err != nil {
		conn.CloseNow()
		return nil, fmt.Errorf("mistral: sending session.update: %w", err)
	}
	if len(sc.Keyterms) > 0 {
		log.Debug("mistral: realtime transcription has no keyterm boosting; keyterms ignored", "keyterms", len(sc.Keyterms))
	}
	log.Debug("mistral stream opened", "model", modelOrDefault(sc.Model), "encoding", enc.encoding, "rate", enc.rate)
	return newStream(ctx, conn, log, c.cfg, sc, enc), nil
}

// awaitSessionCreated reads the first server event, which must be
// session.created (or an error event explaining the refusal).
func awaitSessionCreated(ctx context.Context, conn *websocket.Conn) (sessionInfo, error) {
	_, data, err := conn.Read(ctx)
	if err != nil {
		return sessionInfo{}, fmt.Errorf("mistral: waiting for session.created: %w", err)
	}
	m, err := parseServerMsg(data)
	if err != nil {
		return sessionInfo{}, fmt.Errorf("mistral: waiting for session.created: %w", err)
	}
	switch {
	case m.Type == typeError:
		return sessionInfo{}, fmt.Errorf("mistral: session refused: %s", errorText(m.Error))
	case m.Type != typeSessionCreated:
		return sessionInfo{}, fmt.Errorf("mistral: waiting for session.created: got %q", m.Type)
	case m.Session == nil:
		return sessionInfo{}, nil
	}
	return *m.Session, nil
}

// streamingDelay picks target_streaming_delay_ms: the option, then Config,
// then the value the server announced (the update must carry both fields).
func (c *STT) streamingDelay(sc stt.Config, created sessionInfo) *int {
	if v, ok := optionInt(sc.Options["target_streaming_delay_ms"]); ok && v > 0 {
		return &v
	}
	if c.cfg.StreamingDelay > 0 {
		ms := int(c.cfg.StreamingDelay.Milliseconds())
		return &ms
	}
	return created.TargetStreamingDelayMs
}

func sessionUpdateFor(f audioFormat, delayMs *int) sessionUpdate {
	return sessionUpdate{Type: typeSessionUpdate, Session: sessionInfo{AudioFormat: &f, TargetStreamingDelayMs: delayMs}}
}

func writeJSON(ctx context.Context, conn *websocket.Conn, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return conn.Write(ctx, websocket.MessageText, data)
}

// modelOrDefault keeps realtime models and replaces batch-only ones (the
// API's voxtral-mini-latest) with DefaultModel.
func modelOrDefault(model string) string {
	m := strings.TrimSpace(model)
	if !strings.Contains(m, "realtime") {
		return DefaultModel
	}
	return m
}

// realtimeURL builds the websocket URL for sc on base. It is pure so that
// it can be table-tested.
func realtimeURL(base string, sc stt.Config) (string, error) {
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "ws", "wss":
		u.Scheme = strings.ToLower(u.Scheme)
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("base URL %q: scheme must be http, https, ws or wss", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("base URL %q has no host", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + realtimePath
	u.RawPath, u.Fragment = "", ""
	q := u.Query()
	q.Set("model", modelOrDefault(sc.Model))
	if lang := strings.TrimSpace(sc.Language); lang != "" && lang != "multi" {
		q.Set("language", lang)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// HTTPError is returned by Open when Mistral refuses the websocket
// handshake (bad key, no credit, rate limit, bad model). It never contains
// the key.
type HTTPError struct {
	StatusCode int    // HTTP status, e.g. 401
	Message    string // Mistral's message, or the start of the body
}

// Error names the HTTP status, what it means and Mistral's explanation.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mistral: opening realtime transcription: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if hint := statusHint(e.StatusCode); hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	return b.String()
}

func statusHint(code int) string {
	switch {
	case code == http.StatusUnauthorized:
		return "the Mistral API key is missing or invalid"
	case code == http.StatusPaymentRequired || code == http.StatusForbidden:
		return "the Mistral account may not use realtime transcription"
	case code == http.StatusTooManyRequests:
		return "Mistral rate limit reached"
	case code == http.StatusBadRequest || code == http.StatusNotFound || code == http.StatusUnprocessableEntity:
		return "Mistral rejected the model or parameters"
	case code >= 500:
		return "Mistral is unavailable"
	}
	return ""
}

// dialError describes a failed handshake with the key scrubbed out.
func dialError(resp *http.Response, err error, apiKey string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("mistral: opening realtime transcription: %s", redact.Key(err.Error(), apiKey))
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	}
	return &HTTPError{StatusCode: resp.StatusCode, Message: redact.Key(bodyMessage(body), apiKey)}
}

// bodyMessage reads Mistral's {"message"} or {"detail"} error body, or
// the start of any other body.
func bodyMessage(body []byte) string {
	var e struct {
		Message any `json:"message"`
		Detail  any `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		for _, v := range []any{e.Message, e.Detail} {
			if s, ok := v.(string); ok && s != "" {
				return s
			}
		}
	}
	return truncate(strings.TrimSpace(string(body)), 200)
}

// optionInt reads a whole number decoded from JSON, a Go int or a string.
func optionInt(v any) (int, bool) {
	switch x := v.(type) {
	case float64:
		if x != float64(int(x)) {
			return 0, false
		}
		return int(x), true
	case int:
		return x, true
	case json.Number:
		n, err := x.Int64()
		return int(n), err == nil
	case string:
		n, err := strconv.Atoi(strings.TrimSpace(x))
		return n, err == nil
	}
	return 0, false
}

// errClosed is returned by Write after Close.
var errClosed = errors.New("mistral: stream is closed")

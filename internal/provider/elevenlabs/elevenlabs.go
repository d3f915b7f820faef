// Package elevenlabs adapts two ElevenLabs websocket APIs: text-to-speech
// (stream-input) to the tts contract, where text goes up sentence by
// sentence and 16-bit PCM comes back while it is being generated, and Scribe
// v2 Realtime speech-to-text to the stt contract (see NewSTT and scribe.go).
//
// One tts.Stream is one websocket:
//
//	GET wss://api.elevenlabs.io/v1/text-to-speech/{voice_id}/stream-input?model_id=…&output_format=pcm_8000
//	xi-api-key: …
//
// The client sends an init message ({"text":" ", "voice_settings":…,
// "generation_config":…}) when the stream opens, one {"text":"…", "flush":true}
// message per Send and {"text":""} on Flush. The service answers with
// {"audio":"<base64 PCM16 LE>", …} messages and finally {"isFinal":true}.
package elevenlabs

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
	"github.com/parley-voice/parley/internal/provider/wstts"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/tts"
)

const (
	// DefaultBaseURL is where the ElevenLabs API lives.
	DefaultBaseURL = "wss://api.elevenlabs.io"
	// DefaultModel is the model used when tts.Config.Model is empty: the
	// lowest-latency one, meant for voice agents.
	DefaultModel = "eleven_flash_v2_5"

	// readLimit bounds one server message; audio messages are a few tens of
	// kilobytes of base64.
	readLimit = 4 << 20
	// writeTimeout bounds one client message.
	writeTimeout = 10 * time.Second
	// drainTimeout bounds the wait for the service's close frame after
	// {"isFinal":true}.
	drainTimeout = 5 * time.Second
	// failureGrace is how long a failed write waits for the reader to learn
	// why the service dropped the connection.
	failureGrace = time.Second
)

// DefaultChunkSchedule returns the generation_config.chunk_length_schedule
// sent when Config.ChunkSchedule is empty: the service's own default. Each
// Send flushes anyway, so the schedule only matters for long sentences.
func DefaultChunkSchedule() []int { return []int{120, 160, 250, 290} }

// SampleRates returns the PCM sample rates the service can produce directly.
func SampleRates() []int { return []int{8000, 16000, 22050, 24000, 44100, 48000} }

// ErrClosed is returned by a stream's methods after Close.
var ErrClosed = errors.New("elevenlabs: stream closed")

// Config configures the ElevenLabs provider.
type Config struct {
	// BaseURL is the API's address; empty means DefaultBaseURL. http and
	// https URLs are mapped to ws and wss.
	BaseURL string
	// HTTPClient performs the websocket upgrade; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives debug events; nil discards them. API keys are never
	// logged.
	Logger *slog.Logger
	// ChunkSchedule is the generation_config.chunk_length_schedule sent in
	// the init message; empty means DefaultChunkSchedule(). For low latency
	// the pipeline sends whole sentences and each Send flushes, so the
	// schedule only splits sentences longer than its first entry.
	ChunkSchedule []int

	// STTKeepAlive is how long a Scribe stream may send no audio before it
	// sends an empty chunk to keep the socket open; 0 means
	// DefaultSTTKeepAlive. Scribe only.
	STTKeepAlive time.Duration
	// STTQueueFrames is how many Write calls of audio may wait to be sent;
	// when full the oldest is dropped. 0 means DefaultSTTQueueFrames. Scribe
	// only.
	STTQueueFrames int
	// STTCloseTimeout bounds how long Close waits for the transcript of the
	// audio still uncommitted; 0 means DefaultSTTCloseTimeout. Scribe only.
	STTCloseTimeout time.Duration
	// STTReconnects is how many times in a row a Scribe stream reconnects
	// after the service or the network dropped it mid-stream; 0 means
	// DefaultSTTReconnects, negative disables reconnecting.
	STTReconnects int
	// STTReconnectBackoff is the wait before the first reconnection, doubled
	// for each further one in a row; 0 means DefaultSTTReconnectBackoff.
	STTReconnectBackoff time.Duration
}

// TTS opens ElevenLabs synthesis streams. It is safe for concurrent use.
type TTS struct {
	baseURL  string
	client   *http.Client
	log      *slog.Logger
	schedule []int
}

var _ tts.Provider = (*TTS)(nil)

// NewTTS returns a provider using cfg, with defaults filled in.
func NewTTS(cfg Config) *TTS {
	t := &TTS{
		baseURL:  cfg.BaseURL,
		client:   cfg.HTTPClient,
		log:      cfg.Logger,
		schedule: append([]int(nil), cfg.ChunkSchedule...),
	}
	if t.baseURL == "" {
		t.baseURL = DefaultBaseURL
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if len(t.schedule) == 0 {
		t.schedule = DefaultChunkSchedule()
	}
	return t
}

// initMessage is the first client message of a stream.
type initMessage struct {
	Text             string            `json:"text"`
	VoiceSettings    map[string]any    `json:"voice_settings,omitempty"`
	GenerationConfig *generationConfig `json:"generation_config,omitempty"`
}

type generationConfig struct {
	ChunkLengthSchedule []int `json:"chunk_length_schedule"`
}

// textMessage carries text to speak, or with empty Text the end of input.
type textMessage struct {
	Text  string `json:"text"`
	Flush bool   `json:"flush,omitempty"`
}

// Open dials the stream-input websocket for cfg and sends the init message.
// ctx bounds the whole stream, not only the dial: the stream lives until
// Close, the end of the audio, a failure or the cancellation of ctx,
// whichever comes first, and no goroutine outlives it.
//
// The returned stream expects Send and Flush to be called from one
// goroutine (the text side) while Recv runs in another (the audio side);
// writes are serialised all the same. Close may be called from any
// goroutine at any time, including while Recv blocks. A refused upgrade is
// a *ServerError with the HTTP status and the body's message; a bad key
// that the service reports after the upgrade surfaces from Open or Recv as
// a *ServerError with CloseStatus 1008.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	if cfg.Voice == "" {
		return nil, errors.New("elevenlabs: opening stream: no voice id")
	}
	format, err := outputFormat(cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening stream: %w", err)
	}
	settings, err := voiceSettings(cfg)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening stream: %w", err)
	}
	model := cfg.Model
	if model == "" {
		model = DefaultModel
	}
	u, err := streamURL(t.baseURL, cfg.Voice, model, format, cfg.Language)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening stream: %w", err)
	}

	hdr := http.Header{}
	if cfg.APIKey != "" {
		hdr.Set("xi-api-key", cfg.APIKey)
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: t.client,
		HTTPHeader: hdr,
	})
	if err != nil {
		return nil, dialError(err, resp, cfg.APIKey)
	}
	conn.SetReadLimit(readLimit)

	log := t.log.With("voice", cfg.Voice, "model", model, "format", format)
	s := &stream{
		Stream: wstts.New(ctx, conn, log, cfg.APIKey, wstts.Vendor{Name: "elevenlabs", Log: "elevenlabs", ErrClosed: ErrClosed}),
		log:    log,
	}
	go s.readLoop()

	init := initMessage{
		Text:             " ",
		VoiceSettings:    settings,
		GenerationConfig: &generationConfig{ChunkLengthSchedule: t.schedule},
	}
	if err := s.WriteJSON(init); err != nil {
		err = s.WriteError("sending init message", err)
		_ = s.Close()
		return nil, err
	}
	s.log.Debug("elevenlabs stream opened")
	return s, nil
}

// outputFormat returns the output_format query value giving mono 16-bit PCM
// at rate, or an error naming the rate when the service cannot produce it.
func outputFormat(rate int) (string, error) {
	for _, r := range SampleRates() {
		if r == rate {
			return "pcm_" + strconv.Itoa(rate), nil
		}
	}
	return "", fmt.Errorf("unsupported sample rate %d Hz (ElevenLabs PCM rates: 8000, 16000, 22050, 24000, 44100, 48000)", rate)
}

// voiceSettings returns the init message's voice_settings for cfg: the
// Options keys stability, similarity_boost, style, use_speaker_boost and
// speed when present (and not null), with cfg.Speed overriding speed when it
// is non-zero. It returns nil when no setting is given, so the voice's stored
// settings apply. A value of the wrong type is an error naming the key.
func voiceSettings(cfg tts.Config) (map[string]any, error) {
	settings := map[string]any{}
	for _, key := range []string{"stability", "similarity_boost", "style", "speed"} {
		v, ok := cfg.Options[key]
		if !ok || v == nil {
			continue
		}
		f, err := toFloat(v)
		if err != nil {
			return nil, fmt.Errorf("option %s: %w", key, err)
		}
		settings[key] = f
	}
	if v, ok := cfg.Options["use_speaker_boost"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("option use_speaker_boost: want a boolean, got %T", v)
		}
		settings["use_speaker_boost"] = b
	}
	if cfg.Speed != 0 {
		settings["speed"] = cfg.Speed
	}
	if len(settings) == 0 {
		return nil, nil
	}
	return settings, nil
}

// toFloat accepts the number types decoded JSON and Go callers produce.
func toFloat(v any) (float64, error) {
	switch n := v.(type) {
	case float64:
		return n, nil
	case float32:
		return float64(n), nil
	case int:
		return float64(n), nil
	case int64:
		return float64(n), nil
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0, fmt.Errorf("want a number: %w", err)
		}
		return f, nil
	default:
		return 0, fmt.Errorf("want a number, got %T", v)
	}
}

// streamURL builds the stream-input address. The voice id is escaped as one
// path segment, so a slash or a space in it cannot change the route.
func streamURL(base, voice, model, format, language string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	rawBase := u.EscapedPath()
	u.Path += "/v1/text-to-speech/" + voice + "/stream-input"
	u.RawPath = rawBase + "/v1/text-to-speech/" + url.PathEscape(voice) + "/stream-input"
	q := url.Values{}
	q.Set("model_id", model)
	q.Set("output_format", format)
	if language != "" {
		q.Set("language_code", language)
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String(), nil
}

// ServerError is a failure the service reported: a refused websocket
// upgrade, an error message on the stream, or an abnormal close.
type ServerError struct {
	// HTTPStatus is the upgrade response's status when the upgrade was
	// refused (401 for a bad key), else 0.
	HTTPStatus int
	// CloseStatus is the websocket close code when the service closed the
	// stream abnormally (1008 policy violation: bad key, quota, inactivity;
	// 1011 internal error), else 0.
	CloseStatus int
	// Kind is the error message's "error" field (e.g. "invalid_api_key"),
	// or the upgrade response's detail status.
	Kind string
	// Code is the error message's "code" field, 0 when absent.
	Code int
	// Message is the human-readable explanation.
	Message string
}

// Error describes the failure; it never contains the API key.
func (e *ServerError) Error() string {
	var b strings.Builder
	b.WriteString("elevenlabs: ")
	switch {
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "websocket upgrade refused: HTTP %d %s", e.HTTPStatus, http.StatusText(e.HTTPStatus))
	case e.CloseStatus != 0:
		fmt.Fprintf(&b, "stream closed by the service with status %d (%s)", e.CloseStatus, websocket.StatusCode(e.CloseStatus))
	default:
		b.WriteString("service error")
	}
	if e.Kind != "" {
		fmt.Fprintf(&b, " [%s]", e.Kind)
	}
	if e.Code != 0 && e.Code != e.CloseStatus {
		fmt.Fprintf(&b, " code %d", e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.HTTPStatus == http.StatusUnauthorized || e.HTTPStatus == http.StatusForbidden || e.Kind == "auth_error" {
		b.WriteString(" (check the ElevenLabs API key)")
	}
	return b.String()
}

// dialError turns a failed upgrade into an error with the HTTP status and
// the body's message, redacting the key should the server echo it.
func dialError(err error, resp *http.Response, key string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("elevenlabs: connecting: %s", redact.Key(err.Error(), key))
	}
	var body []byte
	if resp.Body != nil {
		// Dial leaves at most the first 1024 bytes of the body readable.
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 1024))
	}
	kind, msg := bodyMessage(body)
	return &ServerError{
		HTTPStatus: resp.StatusCode,
		Kind:       redact.Key(kind, key),
		Message:    redact.Key(msg, key),
	}
}

// bodyMessage extracts the explanation from an error response body:
// {"detail":{"status":…,"message":…}}, {"detail":"…"},
// {"error":…,"message":…} or plain text.
func bodyMessage(body []byte) (kind, msg string) {
	var v struct {
		Detail  json.RawMessage `json:"detail"`
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		var d struct {
			Status  string `json:"status"`
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(v.Detail, &d) == nil && (d.Status != "" || d.Message != ""):
			return d.Status, d.Message
		case json.Unmarshal(v.Detail, &s) == nil && s != "":
			return "", s
		case v.Message != "" || len(v.Error) > 0:
			return rawText(v.Error), v.Message
		}
	}
	return "", truncate(strings.TrimSpace(string(body)), 200)
}

// rawText renders a JSON value that is normally a string.
func rawText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// rawInt renders a JSON value that is normally a number, 0 when it is not.
func rawInt(raw json.RawMessage) int {
	var n json.Number
	if json.Unmarshal(raw, &n) != nil {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return 0
		}
		n = json.Number(s)
	}
	i, err := strconv.Atoi(n.String())
	if err != nil {
		return 0
	}
	return i
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Package inworld adapts the Inworld text-to-speech bidirectional websocket
// API to the tts contract: text goes up sentence by sentence while the model
// writes it, 16-bit PCM comes back while it is being generated.
//
// One tts.Stream is one websocket carrying one synthesis context:
//
//	GET wss://api.inworld.ai/tts/v1/voice:streamBidirectional
//	Authorization: Basic <key>
//
// The client sends {"contextId":…,"create":{voiceId, modelId, audioConfig:
// {audioEncoding:"LINEAR16", sampleRateHertz, speakingRate?}, language?, …}}
// when the stream opens, {"contextId":…,"send_text":{"text":…}} followed by
// {"contextId":…,"flush_context":{}} per Send, and
// {"contextId":…,"close_context":{}} on Flush. The service answers with
// {"result":{"contextId":…,"audioChunk":{"audioContent":"<base64>"}}}
// messages, {"result":{…,"flushCompleted":{}}} after each flush and
// {"result":{…,"contextClosed":{}}} after the last audio. Errors arrive as
// {"error":{"code","message"}} or as a non-zero {"result":{"status":{…}}}.
//
// The websocket is preferred over the HTTP NDJSON stream (POST
// /tts/v1/voice:stream) because the pipeline sends text while the LLM is
// still writing it: one connection per reply carries every sentence, so
// the second sentence costs no new request, TLS handshake or voice load,
// and the service keeps prosody across sentences of one context.
package inworld

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/tts"
)

const (
	// DefaultBaseURL is where the Inworld API lives (no EU host is known).
	DefaultBaseURL = "wss://api.inworld.ai"
	// StreamPath is the bidirectional synthesis websocket's path.
	StreamPath = "/tts/v1/voice:streamBidirectional"
	// DefaultModel is the model used when tts.Config.Model is empty.
	DefaultModel = "inworld-tts-2"
	// Encoding is the audioEncoding requested: raw 16-bit little-endian PCM
	// (some chunks may still open with a WAV header, which is stripped).
	Encoding = "LINEAR16"

	// readLimit bounds one server message (LiveKit needed a large buffer).
	readLimit = 10 << 20
	// errorBodyLimit bounds the error body read from a refused upgrade.
	errorBodyLimit = 1024
)

// Models returns the model ids the API exposes, default first; the last two
// are legacy.
func Models() []string {
	return []string{"inworld-tts-2", "inworld-tts-2-flash", "inworld-tts-1.5-max", "inworld-tts-1.5-mini"}
}

// SampleRates returns the sampleRateHertz values requested directly. Other
// pipeline rates are produced by resampling from the next higher one.
func SampleRates() []int { return []int{8000, 16000, 22050, 24000, 32000, 44100, 48000} }

// DeliveryModes returns the accepted values of the delivery_mode option.
func DeliveryModes() []string { return []string{"STABLE", "BALANCED", "CREATIVE"} }

// ErrClosed is returned by a stream's methods after Close.
var ErrClosed = errors.New("inworld: stream closed")

// Config configures the Inworld provider.
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
	// ServiceRate, when positive, is the sampleRateHertz always requested;
	// the audio is then resampled to tts.Config.SampleRate. Zero requests
	// the pipeline's rate when SampleRates lists it. It exists in case the
	// service refuses a rate (8000 Hz is not confirmed by Inworld's docs).
	ServiceRate int
}

// TTS opens Inworld synthesis streams. It is safe for concurrent use.
type TTS struct {
	baseURL     string
	client      *http.Client
	log         *slog.Logger
	serviceRate int
}

var _ tts.Provider = (*TTS)(nil)

// NewTTS returns a provider using cfg, with defaults filled in.
func NewTTS(cfg Config) *TTS {
	t := &TTS{baseURL: cfg.BaseURL, client: cfg.HTTPClient, log: cfg.Logger, serviceRate: cfg.ServiceRate}
	if t.baseURL == "" {
		t.baseURL = DefaultBaseURL
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// Open dials the bidirectional websocket and creates the stream's context.
// ctx bounds the whole stream, not only the dial: the stream lives until
// Close, the end of the audio, a failure or the cancellation of ctx,
// whichever comes first, and no goroutine outlives it.
//
// Send and Flush are meant for one goroutine (the text side) while Recv
// runs in another (the audio side); Close may be called from any goroutine
// at any time. A refused upgrade (401 for a bad key) is a *ServerError with
// the HTTP status; an error the service reports on the stream surfaces from
// Recv as a *ServerError with its gRPC-style code.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	create, err := t.createRequest(cfg)
	if err != nil {
		return nil, fmt.Errorf("inworld: opening stream: %w", err)
	}
	u, err := streamURL(t.baseURL)
	if err != nil {
		return nil, fmt.Errorf("inworld: opening stream: %w", err)
	}
	conv, err := newConverter(create.AudioConfig.SampleRateHertz, cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("inworld: opening stream: %w", err)
	}
	contextID := newID()
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{
		HTTPClient: t.client,
		HTTPHeader: requestHeader(cfg.APIKey, contextID),
	})
	if err != nil {
		return nil, dialError(err, resp, cfg.APIKey)
	}
	conn.SetReadLimit(readLimit)

	s := newStream(ctx, conn, streamParams{
		log: t.log.With("voice", create.VoiceID, "model", create.ModelID,
			"service_rate", create.AudioConfig.SampleRateHertz, "context", contextID),
		key:       cfg.APIKey,
		contextID: contextID,
		conv:      conv,
	})
	if err := s.WriteJSON(clientMessage{ContextID: contextID, Create: create}); err != nil {
		err = s.WriteError("creating the synthesis context", err)
		_ = s.Close()
		return nil, err
	}
	s.log.Debug("inworld stream opened")
	return s, nil
}

// requestHeader carries the key verbatim (the portal's key already is the
// Basic credential) and a request id for Inworld's support.
func requestHeader(key, requestID string) http.Header {
	hdr := http.Header{}
	if key != "" {
		hdr.Set("Authorization", "Basic "+key)
	}
	hdr.Set("X-Request-Id", requestID)
	hdr.Set("X-User-Agent", "parley")
	return hdr
}

// newID returns a random 16-hex-digit id for a context and request.
func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// createRequest builds the create message's body from cfg: the voice, the
// model (DefaultModel when empty), LINEAR16 at the service rate, and the
// options the API exposes.
func (t *TTS) createRequest(cfg tts.Config) (*createContext, error) {
	if strings.TrimSpace(cfg.Voice) == "" {
		return nil, errors.New("no voice id")
	}
	rate, err := serviceRate(cfg.SampleRate, t.serviceRate)
	if err != nil {
		return nil, err
	}
	c := &createContext{
		VoiceID:     cfg.Voice,
		ModelID:     cfg.Model,
		Language:    cfg.Language,
		AudioConfig: audioConfig{AudioEncoding: Encoding, SampleRateHertz: rate},
	}
	if c.ModelID == "" {
		c.ModelID = DefaultModel
	}
	if err := applyOptions(c, cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// serviceRate chooses the sampleRateHertz for a pipeline rate: forced when
// positive, else the pipeline rate when the service lists it, else the next
// higher listed rate (downsampling loses nothing the pipeline can carry).
func serviceRate(pipelineRate, forced int) (int, error) {
	if pipelineRate <= 0 {
		return 0, fmt.Errorf("unsupported sample rate %d Hz", pipelineRate)
	}
	if forced > 0 {
		return forced, nil
	}
	rates := SampleRates()
	if i := slices.IndexFunc(rates, func(r int) bool { return r >= pipelineRate }); i >= 0 {
		return rates[i], nil
	}
	return 0, fmt.Errorf("unsupported sample rate %d Hz (Inworld produces at most %d Hz)", pipelineRate, rates[len(rates)-1])
}

// applyOptions sets the speaking rate (cfg.Speed, else the speed option;
// 0.5–2), temperature, delivery_mode and apply_text_normalization. A value
// of the wrong type or out of range is an error naming the option.
func applyOptions(c *createContext, cfg tts.Config) error {
	speed := cfg.Speed
	if speed == 0 {
		f, ok, err := floatOption(cfg.Options, "speed")
		if err != nil {
			return err
		}
		if ok {
			speed = f
		}
	}
	if speed != 0 {
		if speed < 0.5 || speed > 2 {
			return fmt.Errorf("speed %g: want 0.5 to 2", speed)
		}
		c.AudioConfig.SpeakingRate = speed
	}
	temp, ok, err := floatOption(cfg.Options, "temperature")
	if err != nil {
		return err
	}
	if ok {
		c.Temperature = &temp
	}
	if c.DeliveryMode, err = enumOption(cfg.Options, "delivery_mode", DeliveryModes()); err != nil {
		return err
	}
	c.ApplyTextNormalization, err = enumOption(cfg.Options, "apply_text_normalization", []string{"ON", "OFF"})
	return err
}

// floatOption reads a numeric option; absent and null are not set.
func floatOption(opts map[string]any, key string) (float64, bool, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return 0, false, nil
	}
	switch n := v.(type) {
	case float64:
		return n, true, nil
	case float32:
		return float64(n), true, nil
	case int:
		return float64(n), true, nil
	case int64:
		return float64(n), true, nil
	case json.Number:
		f, err := n.Float64()
		if err != nil {
			return 0, false, fmt.Errorf("option %s: want a number: %w", key, err)
		}
		return f, true, nil
	default:
		return 0, false, fmt.Errorf("option %s: want a number, got %T", key, v)
	}
}

// enumOption reads a string option, upper-cased, that must be one of
// allowed; absent, null and "" give "".
func enumOption(opts map[string]any, key string, allowed []string) (string, error) {
	v, ok := opts[key]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("option %s: want a string, got %T", key, v)
	}
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" || slices.Contains(allowed, s) {
		return s, nil
	}
	return "", fmt.Errorf("option %s: %q is not one of %s", key, s, strings.Join(allowed, ", "))
}

// streamURL builds the websocket address from the base URL.
func streamURL(base string) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	u.Path += StreamPath
	u.RawPath = ""
	u.RawQuery = ""
	u.Fragment = ""
	return u.String(), nil
}

// dialError turns a failed upgrade into an error with the HTTP status and
// the body's message, redacting the key should the server echo it.
func dialError(err error, resp *http.Response, key string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("inworld: connecting: %s", redact.Key(err.Error(), key))
	}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	}
	code, msg := bodyMessage(body)
	return &ServerError{HTTPStatus: resp.StatusCode, Code: code, Message: redact.Key(msg, key)}
}

// bodyMessage extracts the code and explanation from an error body:
// {"code":16,"message":…} (gRPC gateway), {"error":{"code","message"}} or
// plain text.
func bodyMessage(body []byte) (code int, msg string) {
	var v struct {
		rpcStatus
		Error *rpcStatus `json:"error"`
	}
	if json.Unmarshal(body, &v) == nil {
		if v.Error != nil && (v.Error.Message != "" || v.Error.Code != 0) {
			return v.Error.Code, v.Error.Message
		}
		if v.Message != "" || v.Code != 0 {
			return v.Code, v.Message
		}
	}
	return 0, truncate(strings.TrimSpace(string(body)), 200)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

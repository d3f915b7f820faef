// Package xai adapts xAI's Grok text-to-speech websocket API to the tts
// contract: text goes up sentence by sentence while the model writes it, and
// audio comes back while it is being generated.
//
// One tts.Stream is one websocket:
//
//	GET wss://api.x.ai/v1/tts?voice=ara&language=auto&codec=pcm&sample_rate=8000[&speed=…]
//	Authorization: Bearer <key>
//
// The client sends {"type":"text.delta","delta":"…"} per Send and
// {"type":"text.done"} on Flush. The service answers with
// {"type":"audio.delta","delta":"<base64 audio>"} messages, then
// {"type":"audio.done"}; {"type":"error","message":"…"} reports a failure.
// The service keeps the websocket open after audio.done (it may be reused),
// so the client closes it.
//
// The websocket is used rather than the HTTP POST /v1/tts (which streams the
// audio of one whole text): the pipeline hands text over while the language
// model is still writing, and over one websocket each sentence is spoken as
// soon as it arrives, with one connection set-up per reply instead of one
// request per sentence and with the service seeing the reply as one text.
//
// Audio: the service produces 16-bit PCM (codec pcm), G.711 μ-law (mulaw) or
// A-law (alaw) at 8000, 16000, 22050, 24000, 44100 or 48000 Hz. The stream
// asks for PCM at tts.Config.SampleRate when the service has that rate (so a
// phone call gets 8 kHz audio with no resampling), or G.711 at 8 kHz when
// Config.Codec says so; for any other rate it asks for the next supported
// rate up and resamples with internal/audio.
package xai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/tts"
)

const (
	// DefaultBaseURL is where the xAI API lives (us-east-1 only).
	DefaultBaseURL = "wss://api.x.ai"
	// DefaultVoice is the voice used when tts.Config.Voice is empty.
	DefaultVoice = "ara"
	// DefaultLanguage lets the service detect the text's language.
	DefaultLanguage = "auto"

	// CodecPCM is 16-bit little-endian PCM, the default.
	CodecPCM = "pcm"
	// CodecMulaw is G.711 μ-law, one byte per sample; 8 kHz only here.
	CodecMulaw = "mulaw"
	// CodecAlaw is G.711 A-law, one byte per sample; 8 kHz only here.
	CodecAlaw = "alaw"

	// ttsPath is the websocket's path below the base URL.
	ttsPath = "/v1/tts"
)

// SampleRates returns the output sample rates the service can produce.
func SampleRates() []int { return []int{8000, 16000, 22050, 24000, 44100, 48000} }

// Voices returns the xAI voice ids the API exposes, DefaultVoice first.
// The service matches them case-insensitively; the adapter sends them in
// lower case and does not reject others, so new voices work unchanged.
func Voices() []string {
	return []string{"ara", "eve", "leo", "rex", "sal", "altair", "atlas", "carina", "castor", "celeste", "cosmo",
		"helios", "helix", "iris", "kepler", "lumen", "luna", "lux", "naksh", "orion", "perseus", "rigel",
		"sirius", "ursa", "zagan", "zenith"}
}

// ErrClosed is returned by a stream's methods after Close.
var ErrClosed = errors.New("xai: stream closed")

// Config configures the xAI provider.
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
	// Codec is the wire encoding asked for at 8 kHz: CodecPCM (empty) or
	// CodecMulaw/CodecAlaw, which halve the bytes and are decoded with
	// internal/audio. At other rates PCM is always used.
	Codec string
}

// TTS opens xAI synthesis streams. It is safe for concurrent use.
type TTS struct {
	baseURL string
	client  *http.Client
	log     *slog.Logger
	codec   string
}

var _ tts.Provider = (*TTS)(nil)

// NewTTS returns a provider using cfg, with defaults filled in.
func NewTTS(cfg Config) *TTS {
	t := &TTS{baseURL: cfg.BaseURL, client: cfg.HTTPClient, log: cfg.Logger, codec: cfg.Codec}
	if t.baseURL == "" {
		t.baseURL = DefaultBaseURL
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.codec == "" {
		t.codec = CodecPCM
	}
	return t
}

// wireFormat is the audio the stream asks the service for.
type wireFormat struct {
	codec string
	rate  int
}

// chooseFormat picks the wire format for a stream that must return PCM at
// rate: PCM (or the configured G.711 codec at 8 kHz) at rate when the
// service has it, else PCM at the lowest supported rate above it (48 kHz
// at most), to be resampled.
func chooseFormat(codec string, rate int) (wireFormat, error) {
	switch codec {
	case CodecPCM, CodecMulaw, CodecAlaw:
	default:
		return wireFormat{}, fmt.Errorf("unsupported codec %q (want pcm, mulaw or alaw)", codec)
	}
	if rate <= 0 {
		return wireFormat{}, fmt.Errorf("invalid sample rate %d Hz", rate)
	}
	if rate != 8000 {
		codec = CodecPCM
	}
	rates := SampleRates()
	if slices.Contains(rates, rate) {
		return wireFormat{codec: codec, rate: rate}, nil
	}
	for _, r := range rates {
		if r > rate {
			return wireFormat{codec: CodecPCM, rate: r}, nil
		}
	}
	return wireFormat{codec: CodecPCM, rate: rates[len(rates)-1]}, nil
}

// params are a stream's query parameters besides the audio format.
type params struct {
	voice, language string
	speed           float64 // 0 = the service's default
	latency         *int    // optimize_streaming_latency
	normalize       *bool   // text_normalization
}

// streamParams reads cfg: the voice (lower-cased, DefaultVoice when empty),
// the language (DefaultLanguage when empty), cfg.Speed or the "speed"
// option, and the "optimize_streaming_latency" and "text_normalization"
// options. A value of the wrong type is an error naming the option.
func streamParams(cfg tts.Config) (params, error) {
	p := params{voice: strings.ToLower(strings.TrimSpace(cfg.Voice)), language: strings.TrimSpace(cfg.Language), speed: cfg.Speed}
	if p.voice == "" {
		p.voice = DefaultVoice
	}
	if p.language == "" {
		p.language = DefaultLanguage
	}
	if v, ok := cfg.Options["speed"]; ok && v != nil && p.speed == 0 {
		f, err := toFloat(v)
		if err != nil {
			return params{}, fmt.Errorf("option speed: %w", err)
		}
		p.speed = f
	}
	if v, ok := cfg.Options["optimize_streaming_latency"]; ok && v != nil {
		f, err := toFloat(v)
		if err != nil || f != float64(int(f)) {
			return params{}, fmt.Errorf("option optimize_streaming_latency: want an integer, got %v", v)
		}
		n := int(f)
		p.latency = &n
	}
	if v, ok := cfg.Options["text_normalization"]; ok && v != nil {
		b, ok := v.(bool)
		if !ok {
			return params{}, fmt.Errorf("option text_normalization: want a boolean, got %T", v)
		}
		p.normalize = &b
	}
	if p.speed < 0 {
		return params{}, fmt.Errorf("invalid speed %v", p.speed)
	}
	return p, nil
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
		return n.Float64()
	default:
		return 0, fmt.Errorf("want a number, got %T", v)
	}
}

// streamURL builds the websocket address with the stream's configuration
// in the query string.
func streamURL(base string, p params, f wireFormat) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	u.Path += ttsPath
	u.RawPath = ""
	q := url.Values{}
	q.Set("voice", p.voice)
	q.Set("language", p.language)
	q.Set("codec", f.codec)
	q.Set("sample_rate", strconv.Itoa(f.rate))
	if p.speed != 0 {
		q.Set("speed", strconv.FormatFloat(p.speed, 'g', -1, 64))
	}
	if p.latency != nil {
		q.Set("optimize_streaming_latency", strconv.Itoa(*p.latency))
	}
	if p.normalize != nil {
		q.Set("text_normalization", strconv.FormatBool(*p.normalize))
	}
	u.RawQuery = q.Encode()
	u.Fragment = ""
	return u.String(), nil
}

// Open dials the websocket for cfg. ctx bounds the whole stream, not only
// the dial: the stream lives until Close, the end of the audio, a failure
// or the cancellation of ctx, whichever comes first, and no goroutine
// outlives it.
//
// The returned stream expects Send and Flush from one goroutine (the text
// side) while Recv runs in another (the audio side); writes are serialised
// all the same. Close may be called from any goroutine at any time. A
// refused upgrade (a bad key: 401) is an *APIError with the HTTP status.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	if cfg.APIKey == "" {
		return nil, errors.New("xai: opening stream: no xAI API key")
	}
	format, err := chooseFormat(t.codec, cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("xai: opening stream: %w", err)
	}
	p, err := streamParams(cfg)
	if err != nil {
		return nil, fmt.Errorf("xai: opening stream: %w", err)
	}
	u, err := streamURL(t.baseURL, p, format)
	if err != nil {
		return nil, fmt.Errorf("xai: opening stream: %w", err)
	}
	dec, err := newDecoder(format, cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("xai: opening stream: %w", err)
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+cfg.APIKey)
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: t.client, HTTPHeader: hdr})
	if err != nil {
		return nil, dialError(err, resp, cfg.APIKey)
	}
	log := t.log.With("voice", p.voice, "codec", format.codec, "wire_rate", format.rate, "rate", cfg.SampleRate)
	s := newStream(ctx, conn, log, cfg.APIKey, dec)
	log.Debug("xai tts stream opened")
	return s, nil
}

// newDecoder returns the decoder from the wire format to PCM at rate.
func newDecoder(f wireFormat, rate int) (*decoder, error) {
	d := &decoder{codec: f.codec}
	if f.rate != rate {
		r, err := audio.NewResampler(f.rate, rate)
		if err != nil {
			return nil, fmt.Errorf("resampling %d Hz to %d Hz: %w", f.rate, rate, err)
		}
		d.resampler = r
	}
	return d, nil
}

// Package deepgram adapts Deepgram's streaming speech-to-text API (v1
// "listen", a websocket carrying raw audio up and JSON results down) to the
// stt contract. Deepgram wire types stay inside this package.
package deepgram

import (
	"context"
	"encoding/json"
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
	"github.com/parley-voice/parley/internal/stt"
)

// Defaults applied by New and Open.
const (
	// DefaultBaseURL is Deepgram's public API.
	DefaultBaseURL = "wss://api.deepgram.com"
	// DefaultModel is used when stt.Config.Model is empty.
	DefaultModel = "nova-3"
	// DefaultLanguage is used when stt.Config.Language is empty.
	DefaultLanguage = "en"
	// DefaultEndpointing is used when stt.Config.Endpointing is zero.
	DefaultEndpointing = 300 * time.Millisecond
	// DefaultKeepAlive is how long the stream may go without sending audio
	// before it sends a KeepAlive (the server gives up after 10 s).
	DefaultKeepAlive = 4 * time.Second
	// DefaultQueueFrames bounds the audio queued for sending (250 frames of
	// 20 ms are 5 s of audio).
	DefaultQueueFrames = 250
	// DefaultCloseTimeout bounds how long Close waits for the server to
	// flush its last results and close the socket.
	DefaultCloseTimeout = 3 * time.Second

	listenPath  = "/v1/listen"
	dialTimeout = 10 * time.Second
	// readLimit caps one server message; results with many words can be
	// larger than the websocket library's 32 KiB default.
	readLimit = 1 << 20
)

// Config configures a Client. The zero value talks to Deepgram's public API.
type Config struct {
	// BaseURL is the API's origin, default "wss://api.deepgram.com";
	// http:// and https:// are accepted and mapped to ws:// and wss://. A
	// path (for a proxy) is kept and "/v1/listen" is appended to it.
	BaseURL string
	// HTTPClient performs the websocket handshake; nil means
	// http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives diagnostics; nil discards them. API keys are never
	// logged.
	Logger *slog.Logger
	// KeepAlive is the silence on the uplink after which a KeepAlive
	// message is sent; default 4 s.
	KeepAlive time.Duration
	// QueueFrames is how many audio frames (Write calls) may wait to be
	// sent; when full the oldest is dropped. Default 250.
	QueueFrames int
	// CloseTimeout bounds Close's wait for the server to flush; default 3 s.
	CloseTimeout time.Duration
}

// Client opens Deepgram streaming recognition sessions. It implements
// stt.Provider and is safe for concurrent use.
type Client struct {
	cfg Config
}

var _ stt.Provider = (*Client)(nil)

// New returns a Client with cfg's zero fields set to their defaults.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	if cfg.QueueFrames <= 0 {
		cfg.QueueFrames = DefaultQueueFrames
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	return &Client{cfg: cfg}
}

// Open connects a recognition stream for sc. The stream lives until Close
// is called, ctx ends or the server ends it. The returned stt.Stream is a
// *Stream.
func (c *Client) Open(ctx context.Context, sc stt.Config) (stt.Stream, error) {
	u, err := listenURL(c.cfg.BaseURL, sc)
	if err != nil {
		return nil, fmt.Errorf("deepgram: building listen URL: %w", err)
	}
	header := http.Header{}
	if sc.APIKey != "" {
		header.Set("Authorization", "Token "+sc.APIKey)
	}

	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, u, &websocket.DialOptions{
		HTTPClient: c.cfg.HTTPClient,
		HTTPHeader: header,
	})
	if err != nil {
		return nil, dialError(resp, err, sc.APIKey)
	}
	conn.SetReadLimit(readLimit)

	log := c.cfg.Logger.With("provider", "deepgram")
	if resp != nil {
		if id := resp.Header.Get("dg-request-id"); id != "" {
			log = log.With("request_id", id)
		}
	}
	log.Debug("deepgram stream opened", "model", modelOrDefault(sc.Model), "sample_rate", sc.SampleRate)
	return newStream(ctx, conn, log, c.cfg), nil
}

// UpgradeError is returned by Open when Deepgram refuses the websocket
// handshake (bad key, no credit, bad parameters). It never contains the key.
type UpgradeError struct {
	StatusCode int    // HTTP status of the refused upgrade, e.g. 401
	Code       string // Deepgram's err_code, e.g. "INVALID_AUTH"
	Message    string // Deepgram's err_msg, or the start of the body
	RequestID  string // Deepgram's request_id, when given
}

// Error names the HTTP status and Deepgram's explanation.
func (e *UpgradeError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "deepgram: opening stream: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	switch {
	case e.Code != "" && e.Message != "":
		fmt.Fprintf(&b, ": %s: %s", e.Code, e.Message)
	case e.Message != "":
		fmt.Fprintf(&b, ": %s", e.Message)
	case e.Code != "":
		fmt.Fprintf(&b, ": %s", e.Code)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	}
	return b.String()
}

// dialError turns a failed handshake into an error that names the HTTP
// status and Deepgram's explanation, with the key scrubbed out of anything
// the server echoed.
func dialError(resp *http.Response, err error, apiKey string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("deepgram: opening stream: %s", redact.Key(err.Error(), apiKey))
	}
	ue := &UpgradeError{StatusCode: resp.StatusCode}
	var body []byte
	if resp.Body != nil {
		// The websocket library keeps at most the first 1 KiB of the body.
		body, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
	}
	var dg struct {
		ErrCode   string `json:"err_code"`
		ErrMsg    string `json:"err_msg"`
		RequestID string `json:"request_id"`
	}
	if json.Unmarshal(body, &dg) == nil && (dg.ErrCode != "" || dg.ErrMsg != "") {
		ue.Code, ue.Message, ue.RequestID = dg.ErrCode, dg.ErrMsg, dg.RequestID
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200] + "…"
		}
		ue.Message = msg
	}
	if ue.RequestID == "" {
		ue.RequestID = resp.Header.Get("dg-request-id")
	}
	ue.Code = redact.Key(ue.Code, apiKey)
	ue.Message = redact.Key(ue.Message, apiKey)
	return ue
}

func modelOrDefault(model string) string {
	if m := strings.TrimSpace(model); m != "" {
		return m
	}
	return DefaultModel
}

// listenURL builds the streaming URL for sc on base. It is pure so that the
// query can be table-tested.
func listenURL(base string, sc stt.Config) (string, error) {
	if sc.SampleRate <= 0 {
		return "", fmt.Errorf("sample rate %d is not positive", sc.SampleRate)
	}
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + listenPath
	u.RawPath = ""
	u.Fragment = ""

	model := modelOrDefault(sc.Model)
	language := strings.TrimSpace(sc.Language)
	if language == "" {
		language = DefaultLanguage
	}

	q := u.Query()
	q.Set("model", model)
	q.Set("language", language)
	q.Set("encoding", "linear16")
	q.Set("sample_rate", strconv.Itoa(sc.SampleRate))
	q.Set("channels", "1")
	q.Set("interim_results", "true")
	q.Set("vad_events", "true")
	q.Set("punctuate", "true")
	q.Set("endpointing", endpointingParam(sc.Endpointing))
	if sc.UtteranceEnd >= time.Second {
		q.Set("utterance_end_ms", strconv.FormatInt(sc.UtteranceEnd.Milliseconds(), 10))
	}
	termParam := "keywords"
	if strings.HasPrefix(model, "nova-3") {
		termParam = "keyterm"
	}
	for _, term := range sc.Keyterms {
		if term = strings.TrimSpace(term); term != "" {
			q.Add(termParam, term)
		}
	}
	applyOptions(q, sc.Options)

	// Deepgram documents %20 for spaces in keyterms; '+' literals are
	// already escaped as %2B, so this swap is lossless.
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), nil
}

// endpointingParam renders stt.Config.Endpointing: zero is the default,
// a negative value disables endpointing.
func endpointingParam(d time.Duration) string {
	switch {
	case d == 0:
		d = DefaultEndpointing
	case d < 0:
		return "false"
	}
	ms := d.Milliseconds()
	if ms < 1 {
		ms = 1
	}
	return strconv.FormatInt(ms, 10)
}

// applyOptions copies the provider options Deepgram understands into q.
// Values of the wrong type and unknown keys are ignored.
func applyOptions(q url.Values, opts map[string]any) {
	for _, key := range [...]string{"smart_format", "numerals", "filler_words", "no_delay"} {
		if b, ok := optionBool(opts[key]); ok {
			q.Set(key, strconv.FormatBool(b))
		}
	}
	if v, present := opts["endpointing"]; present {
		if b, ok := optionBool(v); ok {
			if !b {
				q.Set("endpointing", "false")
			}
		} else if n, ok := optionInt(v); ok {
			if n <= 0 {
				q.Set("endpointing", "false")
			} else {
				q.Set("endpointing", strconv.FormatInt(n, 10))
			}
		}
	}
	if v, present := opts["utterance_end_ms"]; present {
		if b, ok := optionBool(v); ok {
			if !b {
				q.Del("utterance_end_ms")
			}
		} else if n, ok := optionInt(v); ok {
			switch {
			case n <= 0:
				q.Del("utterance_end_ms")
			case n >= 1000:
				q.Set("utterance_end_ms", strconv.FormatInt(n, 10))
			}
		}
	}
}

// optionBool reads a JSON boolean (or "true"/"false").
func optionBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}

// optionInt reads a whole number decoded from JSON (float64 or
// json.Number), a Go integer, or a numeric string.
func optionInt(v any) (int64, bool) {
	switch x := v.(type) {
	case float64:
		if x != float64(int64(x)) {
			return 0, false
		}
		return int64(x), true
	case int:
		return int64(x), true
	case int64:
		return x, true
	case json.Number:
		n, err := x.Int64()
		return n, err == nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		return n, err == nil
	}
	return 0, false
}

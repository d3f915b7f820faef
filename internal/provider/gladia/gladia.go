// Package gladia adapts Gladia's live speech-to-text API v2 (model
// solaria-1) to the stt contract. A stream is opened in two steps: POST
// /v2/live with the session configuration and the X-Gladia-Key header
// returns a session id and a websocket URL carrying its own token; the
// websocket then takes raw audio up (binary frames) and sends JSON
// transcripts and speech events down. Gladia wire types stay inside this
// package.
package gladia

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/stt"
)

// Defaults applied by New and Open.
const (
	// DefaultBaseURL is Gladia's public API.
	DefaultBaseURL = "https://api.gladia.io"
	// DefaultRegion is where sessions run unless Config.Region or the
	// "region" option says otherwise.
	DefaultRegion = "eu-west"
	// DefaultModel is used when stt.Config.Model is empty.
	DefaultModel = "solaria-1"
	// DefaultQueueChunks bounds the audio waiting to be sent (50 chunks of
	// 100 ms are 5 s).
	DefaultQueueChunks = 50
	// DefaultCloseTimeout bounds how long Close waits for the last results.
	DefaultCloseTimeout = 5 * time.Second

	livePath       = "/v2/live"
	initTimeout    = 10 * time.Second
	dialTimeout    = 10 * time.Second
	readLimit      = 1 << 20
	errorBodyLimit = 4096
	// Gladia's accepted endpointing range, in seconds.
	minEndpointing = 0.01
	maxEndpointing = 10
)

// Config configures a Client. The zero value talks to Gladia's public API
// in eu-west.
type Config struct {
	// BaseURL is the API's origin, default "https://api.gladia.io". A path
	// (for a proxy) is kept and "/v2/live" is appended to it.
	BaseURL string
	// Region is the "region" query parameter of the session request,
	// "eu-west" or "us-west"; default eu-west. The stream's "region" option
	// overrides it.
	Region string
	// HTTPClient performs the session request and the websocket handshake;
	// nil means http.DefaultClient.
	HTTPClient *http.Client
	// Logger receives diagnostics; nil discards them. Keys are never logged.
	Logger *slog.Logger
	// QueueChunks is how many 100 ms audio chunks may wait to be sent; when
	// full the oldest is dropped. Default 50.
	QueueChunks int
	// CloseTimeout bounds Close's wait for the server's last results;
	// default 5 s.
	CloseTimeout time.Duration
}

// Client opens Gladia live sessions. It implements stt.Provider and is safe
// for concurrent use.
type Client struct {
	cfg Config
}

var _ stt.Provider = (*Client)(nil)

// New returns a Client with cfg's zero fields set to their defaults.
func New(cfg Config) *Client {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.QueueChunks <= 0 {
		cfg.QueueChunks = DefaultQueueChunks
	}
	if cfg.CloseTimeout <= 0 {
		cfg.CloseTimeout = DefaultCloseTimeout
	}
	return &Client{cfg: cfg}
}

// Open starts a live session for sc and connects its websocket. The stream
// lives until Close is called, ctx ends or the server ends it. The returned
// stt.Stream is a *Stream.
func (c *Client) Open(ctx context.Context, sc stt.Config) (stt.Stream, error) {
	enc, err := newEncoder(sc.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("gladia: opening stream: %w", err)
	}
	if sc.APIKey == "" {
		return nil, fmt.Errorf("gladia: opening stream: no API key (Gladia needs X-Gladia-Key)")
	}
	session, err := c.initSession(ctx, sc, enc)
	if err != nil {
		return nil, err
	}
	log := c.cfg.Logger.With("provider", "gladia", "session_id", session.ID)

	dialCtx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, session.URL, &websocket.DialOptions{HTTPClient: c.cfg.HTTPClient})
	if err != nil {
		return nil, dialError(resp, err)
	}
	conn.SetReadLimit(readLimit)
	log.Debug("gladia stream opened", "encoding", enc.wireEncoding, "sample_rate", enc.wireRate)
	return newStream(ctx, conn, log, enc, c.cfg), nil
}

// initSession performs POST /v2/live and returns the session's id and
// websocket URL.
func (c *Client) initSession(ctx context.Context, sc stt.Config, enc *encoder) (initResponse, error) {
	endpoint, err := initURL(c.cfg.BaseURL, regionFor(c.cfg.Region, sc.Options))
	if err != nil {
		return initResponse{}, fmt.Errorf("gladia: building session URL: %w", err)
	}
	body, err := json.Marshal(buildInitRequest(sc, enc))
	if err != nil {
		return initResponse{}, fmt.Errorf("gladia: encoding session request: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, initTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return initResponse{}, fmt.Errorf("gladia: building session request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Gladia-Key", sc.APIKey)
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		return initResponse{}, fmt.Errorf("gladia: starting live session: %s", redact.Key(err.Error(), sc.APIKey))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return initResponse{}, httpError(opInit, resp, sc.APIKey)
	}
	var out initResponse
	if err := json.NewDecoder(io.LimitReader(resp.Body, readLimit)).Decode(&out); err != nil {
		return initResponse{}, fmt.Errorf("gladia: decoding live session response: %w", err)
	}
	if err := checkWebsocketURL(out.URL); err != nil {
		return initResponse{}, fmt.Errorf("gladia: live session response: %w", err)
	}
	return out, nil
}

// Stages of Open that can be refused with an HTTP status.
const (
	opInit = "starting live session"
	opDial = "connecting live session websocket"
)

// HTTPError is returned by Open when Gladia refuses the session request
// (bad key, no credit, too many sessions, bad configuration) or the
// websocket handshake. It never contains the key or the session token.
type HTTPError struct {
	Op         string // what was refused: "starting live session" or "connecting live session websocket"
	StatusCode int    // HTTP status, e.g. 401
	Message    string // Gladia's message, or the start of the body
	RequestID  string // Gladia's request_id, when given
}

// Error names the step, the HTTP status, what it means and Gladia's
// explanation.
func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "gladia: %s: HTTP %d %s", e.Op, e.StatusCode, http.StatusText(e.StatusCode))
	if hint := statusHint(e.Op, e.StatusCode); hint != "" {
		fmt.Fprintf(&b, " (%s)", hint)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request_id %s)", e.RequestID)
	}
	return b.String()
}

// statusHint says what the caller can do about a refused request.
func statusHint(op string, code int) string {
	switch {
	case code == http.StatusUnauthorized && op == opDial:
		return "the live session token was refused or has expired"
	case code == http.StatusUnauthorized:
		return "the Gladia API key is missing or invalid"
	case code == http.StatusPaymentRequired || code == http.StatusForbidden:
		return "the Gladia account may not use live transcription"
	case code == http.StatusTooManyRequests:
		return "too many concurrent Gladia sessions or requests"
	case code == http.StatusBadRequest || code == http.StatusUnprocessableEntity:
		return "Gladia rejected the session configuration"
	case code >= 500:
		return "Gladia is unavailable"
	}
	return ""
}

// httpError reads a bounded part of a refused response into an HTTPError.
func httpError(op string, resp *http.Response, apiKey string) *HTTPError {
	e := &HTTPError{Op: op, StatusCode: resp.StatusCode}
	var body []byte
	if resp.Body != nil {
		body, _ = io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	}
	var ae apiError
	if json.Unmarshal(body, &ae) == nil && ae.Message != "" {
		e.Message, e.RequestID = ae.Message, ae.RequestID
	} else {
		e.Message = truncate(strings.TrimSpace(string(body)), 200)
	}
	e.Message = redact.Key(e.Message, apiKey)
	return e
}

// dialError describes a failed websocket handshake. The library's own
// error may quote the URL, whose token is a credential, so only the
// status or a fixed text is reported.
func dialError(resp *http.Response, err error) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("gladia: %s: %w", opDial, err)
	}
	return httpError(opDial, resp, "")
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// initURL builds the session request URL on base.
func initURL(base, region string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https":
		u.Scheme = strings.ToLower(u.Scheme)
	default:
		return "", fmt.Errorf("base URL %q: scheme must be http or https", base)
	}
	if u.Host == "" {
		return "", fmt.Errorf("base URL %q has no host", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + livePath
	u.RawPath, u.Fragment = "", ""
	q := u.Query()
	if region != "" {
		q.Set("region", region)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// checkWebsocketURL accepts only a ws:// or wss:// URL with a host.
func checkWebsocketURL(raw string) error {
	// The URL carries the session token, so it is never quoted in errors
	// (url.Parse's errors quote their input).
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("the websocket URL Gladia answered does not parse")
	}
	if s := strings.ToLower(u.Scheme); s != "ws" && s != "wss" {
		return fmt.Errorf("websocket URL has scheme %q, want ws or wss", truncate(u.Scheme, 20))
	}
	if u.Host == "" {
		return fmt.Errorf("websocket URL has no host")
	}
	return nil
}

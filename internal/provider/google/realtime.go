package google

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/oauth2"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/realtime"
)

// Gemini Live (providers-2.md §9).
const (
	// DefaultLiveStudioURL is the Gemini API's websocket origin.
	DefaultLiveStudioURL = "wss://generativelanguage.googleapis.com"
	// LiveStudioPath is BidiGenerateContent on the Gemini API (v1beta).
	LiveStudioPath = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
	// LiveVertexPath is BidiGenerateContent on Vertex AI (v1).
	LiveVertexPath = "/ws/google.cloud.aiplatform.v1.LlmBidiService/BidiGenerateContent"
	// DefaultLiveVoice is the catalog's default Gemini Live voice.
	DefaultLiveVoice = "Puck"
	// liveInRate and liveOutRate are the service's fixed audio rates.
	liveInRate, liveOutRate = 16000, 24000
)

// Gemini Live models and the key each needs (hms-api.md §10.1).
const (
	LiveModelVertex    = "gemini-live-2.5-flash-native-audio"
	LiveModelStudio25  = "gemini-2.5-flash-native-audio-preview-12-2025"
	LiveModelStudio31  = "gemini-3.1-flash-live-preview"
	defaultStudioModel = LiveModelStudio31
)

// liveModels says which service serves a catalog model: true for Vertex
// AI (a service-account key), false for the Gemini API (an AI Studio key).
// Other models go to the key's service as they are.
var liveModels = map[string]bool{
	LiveModelVertex:   true,
	LiveModelStudio25: false,
	LiveModelStudio31: false,
}

// RealtimeConfig says where Gemini Live is. Zero fields take the defaults.
type RealtimeConfig struct {
	// StudioURL is the Gemini API's websocket origin, for AI Studio keys
	// (default DefaultLiveStudioURL); LiveStudioPath is appended.
	StudioURL string
	// VertexURL is Vertex AI's websocket origin for every location
	// (default wss://<location>-aiplatform.googleapis.com,
	// wss://aiplatform.googleapis.com for "global" and
	// wss://aiplatform.<eu|us>.rep.googleapis.com for the multi-regions);
	// LiveVertexPath is appended.
	VertexURL string
	// Location is the Vertex AI region when the session's Config has none
	// (default DefaultLocation).
	Location string
	// TokenURL is where service-account keys get access tokens (default
	// DefaultTokenURL; Chat.Realtime uses its Chat's). A key's own
	// token_uri is never used.
	TokenURL string
	// AudioQueue is how much of the caller's audio may wait for the
	// network before the oldest is dropped (default 2 s).
	AudioQueue time.Duration
	// SetupTimeout bounds the wait for setupComplete (default 15 s).
	SetupTimeout time.Duration
	// HTTPClient dials the websocket and fetches tokens; it must not have a
	// Timeout (the session's context bounds it).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Realtime is Gemini Live (BidiGenerateContent) as a realtime.Provider.
// The key decides the service: an AI Studio key goes to the Gemini API, a
// service-account key to Vertex AI with an access token and the model
// named with its project and location. Safe for concurrent use.
type Realtime struct {
	cfg    RealtimeConfig
	tokens *tokens
	log    *slog.Logger
}

var _ realtime.Provider = (*Realtime)(nil)

// NewRealtime returns Gemini Live with its own access-token cache.
func NewRealtime(cfg RealtimeConfig) *Realtime { return newRealtime(cfg, nil) }

// Realtime is Gemini Live sharing c's access tokens (and token endpoint),
// so a service account is exchanged once for chat, speech and Live. An
// unset Location or HTTPClient is the Chat's.
func (c *Chat) Realtime(cfg RealtimeConfig) *Realtime {
	cfg.TokenURL = c.cfg.TokenURL
	if cfg.Location == "" {
		cfg.Location = c.cfg.Location
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = c.cfg.HTTPClient
	}
	return newRealtime(cfg, c.tokens)
}

func newRealtime(cfg RealtimeConfig, shared *tokens) *Realtime {
	if cfg.StudioURL == "" {
		cfg.StudioURL = DefaultLiveStudioURL
	}
	if cfg.Location == "" {
		cfg.Location = DefaultLocation
	}
	if cfg.TokenURL == "" {
		cfg.TokenURL = DefaultTokenURL
	}
	if cfg.AudioQueue <= 0 {
		cfg.AudioQueue = 2 * time.Second
	}
	if cfg.SetupTimeout <= 0 {
		cfg.SetupTimeout = 15 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if shared == nil {
		hc := cfg.HTTPClient
		shared = &tokens{tokenURL: cfg.TokenURL, ctx: func(ctx context.Context) context.Context {
			if hc == nil {
				return ctx
			}
			return context.WithValue(ctx, oauth2.HTTPClient, hc)
		}}
	}
	return &Realtime{cfg: cfg, tokens: shared, log: cfg.Logger}
}

// liveVertexOrigin is Vertex AI's websocket origin for location.
func (p *Realtime) liveVertexOrigin(location string) string {
	switch {
	case p.cfg.VertexURL != "":
		return p.cfg.VertexURL
	case location == "global":
		return "wss://aiplatform.googleapis.com"
	case location == "eu" || location == "us":
		return "wss://aiplatform." + location + ".rep.googleapis.com"
	}
	return "wss://" + location + "-aiplatform.googleapis.com"
}

// Connect opens a session: it dials the key's service, sends the setup and
// returns once the service answered setupComplete. A model that needs the
// other kind of key fails before dialling; a refused setup is a *LiveError
// naming the close code and the service's reason.
func (p *Realtime) Connect(ctx context.Context, cfg realtime.Config) (realtime.Session, error) {
	key, err := ParseKey(cfg.APIKey)
	if err != nil {
		return nil, err
	}
	model := cfg.Model
	if model == "" {
		model = defaultStudioModel
		if key.IsServiceAccount() {
			model = LiveModelVertex
		}
	}
	if vertex, known := liveModels[model]; known && vertex != key.IsServiceAccount() {
		if vertex {
			return nil, fmt.Errorf("google: Gemini Live model %s runs on Vertex AI and needs a service-account key (google_vertex_secret_id), not an AI Studio API key", model)
		}
		return nil, fmt.Errorf("google: Gemini Live model %s runs on the Gemini API and needs an AI Studio API key (google_secret_id), not a service-account key", model)
	}
	log := p.log
	if cfg.Logger != nil {
		log = cfg.Logger
	}

	location := cfg.Location
	if location == "" {
		location = p.cfg.Location
	}
	if key.IsServiceAccount() {
		if !strings.Contains(model, "/") {
			model = fmt.Sprintf("projects/%s/locations/%s/publishers/google/models/%s", key.Project(), location, model)
		}
		log = log.With("service", "vertex", "location", location)
	} else {
		if !strings.Contains(model, "/") {
			model = "models/" + model
		}
		log = log.With("service", "studio")
	}
	log = log.With("model", model)
	ignored(log, cfg)

	up, err := audio.NewResampler(realtime.SampleRate, liveInRate)
	if err != nil {
		return nil, err
	}
	down, err := audio.NewResampler(liveOutRate, realtime.SampleRate)
	if err != nil {
		return nil, err
	}
	setup := setupMessage(model, cfg)
	open := func(ctx context.Context, handle string) (*websocket.Conn, string, error) {
		setup.Setup.SessionResumption = &liveResumption{Handle: handle}
		return p.open(ctx, key, location, setup)
	}
	conn, secret, err := open(ctx, "")
	if err != nil {
		return nil, err
	}
	s := newLiveSession(ctx, conn, log, secret, up, down, int(p.cfg.AudioQueue*liveInRate/time.Second), open)
	log.Debug("gemini live session opened")
	return s, nil
}

// open dials the key's service and sends the setup; it returns the
// connection once the service answered setupComplete, and the secret to
// keep out of errors (the API key or the access token).
func (p *Realtime) open(ctx context.Context, key Key, location string, setup liveClientMessage) (*websocket.Conn, string, error) {
	hdr := http.Header{}
	var u, secret string
	if key.IsServiceAccount() {
		token, err := p.tokens.token(ctx, key.account)
		if err != nil {
			return nil, "", err
		}
		secret = token
		hdr.Set("Authorization", "Bearer "+token)
		u = strings.TrimRight(p.liveVertexOrigin(location), "/") + LiveVertexPath
	} else {
		secret = key.apiKey
		hdr.Set("x-goog-api-key", key.apiKey)
		u = strings.TrimRight(p.cfg.StudioURL, "/") + LiveStudioPath
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: p.cfg.HTTPClient, HTTPHeader: hdr})
	if err != nil {
		return nil, "", liveDialError(err, resp, secret)
	}
	conn.SetReadLimit(liveReadLimit)
	if err := p.setup(ctx, conn, setup, secret); err != nil {
		_ = conn.CloseNow()
		return nil, "", err
	}
	return conn, secret, nil
}

// ignored logs the settings Gemini Live has no place for.
func ignored(log *slog.Logger, cfg realtime.Config) {
	var names []string
	if cfg.ReasoningEffort != "" {
		names = append(names, "reasoning_effort")
	}
	if cfg.Speed != 0 {
		names = append(names, "speed")
	}
	if len(cfg.ServerTools) > 0 {
		names = append(names, "server tools")
	}
	if cfg.Delegation != nil {
		names = append(names, "delegation")
	}
	if len(cfg.Keyterms) > 0 {
		names = append(names, "keyterms")
	}
	if cfg.Turn.IdleTimeout > 0 {
		names = append(names, "idle timeout")
	}
	if len(names) > 0 {
		log.Debug("gemini live ignores these settings", "settings", strings.Join(names, ", "))
	}
}

// setup sends the setup message and waits for setupComplete.
func (p *Realtime) setup(ctx context.Context, conn *websocket.Conn, msg liveClientMessage, secret string) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.SetupTimeout)
	defer cancel()
	b, err := marshal(msg)
	if err != nil {
		return err
	}
	if err := conn.Write(ctx, websocket.MessageText, b); err != nil {
		return liveReadError(ctx, err, secret, true, "sending the setup")
	}
	_, data, err := conn.Read(ctx)
	if err != nil {
		return liveReadError(ctx, err, secret, true, "waiting for setupComplete")
	}
	m, err := decodeServerMessage(data)
	if err != nil {
		return err
	}
	if m.SetupComplete == nil {
		return fmt.Errorf("google: Gemini Live answered the setup with %s, not setupComplete", m.kind())
	}
	return nil
}

// LiveError is Gemini Live refusing or ending a session: a refused
// websocket upgrade (StatusCode) or a close frame (CloseCode and Reason).
// It never contains the key or the access token.
type LiveError struct {
	StatusCode int
	CloseCode  int
	Reason     string
	// Setup is set when the service refused the session's setup.
	Setup bool
}

// Error names the code, what it usually means and the service's reason.
func (e *LiveError) Error() string {
	var b strings.Builder
	b.WriteString("google: Gemini Live ")
	switch {
	case e.StatusCode != 0:
		fmt.Fprintf(&b, "refused the connection: HTTP %d %s", e.StatusCode, http.StatusText(e.StatusCode))
		if e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden {
			b.WriteString(" (check the Google key)")
		}
	case e.Setup:
		fmt.Fprintf(&b, "refused the session setup: close %d%s", e.CloseCode, closeHint(e.CloseCode))
	default:
		fmt.Fprintf(&b, "closed the session: close %d%s", e.CloseCode, closeHint(e.CloseCode))
	}
	if e.Reason != "" {
		b.WriteString(": ")
		b.WriteString(e.Reason)
	}
	return b.String()
}

// Retryable reports whether a new session may succeed: 1011 (internal
// error), 429 and 5xx; 1007 and 1008 are configuration errors.
func (e *LiveError) Retryable() bool {
	return e.CloseCode == int(websocket.StatusInternalError) || e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

func closeHint(code int) string {
	switch websocket.StatusCode(code) {
	case websocket.StatusPolicyViolation:
		return " (policy violation: the model is not served to this key's service; AI Studio models need an AI Studio key, gemini-live-* models a Vertex AI service-account key)"
	case websocket.StatusInvalidFramePayloadData:
		return " (invalid payload: a bad setup, or on the Gemini API a bad key)"
	case websocket.StatusInternalError:
		return " (internal error)"
	case websocket.StatusGoingAway:
		return " (going away)"
	}
	return ""
}

// liveDialError explains a failed upgrade.
func liveDialError(err error, resp *http.Response, secret string) error {
	if resp == nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return fmt.Errorf("google: connecting to Gemini Live: %s", redactText(err.Error(), secret))
	}
	var msg string
	if resp.Body != nil {
		msg = errorBodyMessage(resp.Body)
	}
	return &LiveError{StatusCode: resp.StatusCode, Reason: redactText(msg, secret)}
}

// liveReadError explains a failed read or write.
func liveReadError(ctx context.Context, err error, secret string, setup bool, doing string) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &LiveError{CloseCode: int(ce.Code), Reason: redactText(clipText(ce.Reason), secret), Setup: setup}
	}
	if ctx.Err() != nil && setup {
		return fmt.Errorf("google: Gemini Live %s: %w", doing, ctx.Err())
	}
	return fmt.Errorf("google: Gemini Live %s: %s", doing, redactText(err.Error(), secret))
}

// redactText removes a secret from server- or library-supplied text.
func redactText(s, secret string) string {
	if secret == "" {
		return s
	}
	return strings.ReplaceAll(s, secret, "[redacted]")
}

// clipText trims s to a bounded length of valid UTF-8.
func clipText(s string) string {
	const maxLen = 300
	s = strings.TrimSpace(s)
	if len(s) > maxLen {
		s = strings.ToValidUTF8(s[:maxLen], "") + "…"
	}
	return s
}

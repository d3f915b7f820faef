// Package httpapi serves Parley's REST control plane: the HMS Sovereign v1 API
// under /api/v1, its OpenAPI document and the health check.
//
// A request passes, in order: panic recovery and access logging (Handler),
// routing (routes.go), bearer authentication and the per-key rate limit
// (auth.go), the check of path parameters and query values (checkParams),
// then a handler that decodes and validates the body (decode.go),
// calls the store, and encodes the response (encode.go). Errors from any layer
// are *fault.Error values, turned into HTTP in exactly one place (writeError).
package httpapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/assistant"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/catalog"
	"github.com/parley-voice/parley/internal/netguard"
	"github.com/parley-voice/parley/internal/openapi"
	"github.com/parley-voice/parley/internal/ratelimit"
	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// Config tunes the API. Zero values take the documented defaults.
type Config struct {
	// Version is reported by /health and the OpenAPI document. Defaults to "dev".
	Version string
	// RateLimit is requests per minute per API key. Defaults to 100.
	RateLimit int
	// MaxBodyBytes caps request bodies; larger ones get 413. Defaults to 1 MiB.
	MaxBodyBytes int64
	// AllowPrivateURLs lets the URLs Parley calls (webhooks, tools, tool
	// templates, MCP servers) point at loopback and private addresses
	// (netguard.DevelopmentConfig), and use http://. For local development
	// and tests only.
	AllowPrivateURLs bool
}

// VoiceLister lists the local text-to-speech voices installed on this server.
type VoiceLister interface {
	LocalVoices(ctx context.Context) ([]Voice, error)
}

// Voice is one entry of GET /voices.
type Voice struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Provider    string            `json:"provider"`
	Language    string            `json:"language,omitempty"`
	Description map[string]string `json:"description,omitempty"`
	Style       string            `json:"style,omitempty"`
}

// Calls is the live-call engine as the API sees it (implemented by internal/voice).
type Calls interface {
	// Dial places a validated outbound call and returns its id at once (status "dialing").
	Dial(ctx context.Context, d call.Dial) (callID string, err error)
	// Control applies a command to a call in progress. It returns fault errors:
	// NotFound when the call is not live on this server, Invalid when the
	// command cannot apply.
	Control(ctx context.Context, orgID, callID string, cmd call.Command) error
}

// MCPTool is one tool an MCP server offers.
type MCPTool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// MCPTester connects to an MCP server and lists its tools (wired to
// internal/mcp through the SSRF guard by cmd/parley).
type MCPTester func(ctx context.Context, url, transport string, headers map[string]string, timeout time.Duration) ([]MCPTool, error)

// Deps are the collaborators the API needs.
type Deps struct {
	Store     *store.DB
	Keyring   *secret.Keyring
	Catalog   *catalog.Catalog
	Validator *assistant.Validator
	Voices    VoiceLister
	// Calls is the voice engine; nil when telephony is off (PARLEY_SIP_ADDR=off):
	// outbound calls and call control then answer 503.
	Calls Calls
	// TestMCP backs POST /mcp-servers/{id}/test; nil answers 503.
	TestMCP MCPTester
	// Recordings serves GET /calls/{id}/recording and signs recording_url;
	// nil: calls have no recordings.
	Recordings *Recordings
	Logger     *slog.Logger
	Now        func() time.Time // nil means time.Now

	// Domains backs /domains (e-mail sending domains); nil answers 503.
	Domains Domains
	// KeyChecks vet the BYOK keys of providers whose keys are documents
	// rather than tokens (google_vertex: a service-account JSON key); the
	// error says what is wrong without quoting the key. Other providers'
	// keys must be visible ASCII of at most 4096 bytes.
	KeyChecks map[string]func(key string) error
}

// controlLimit is how many control commands one call accepts per minute (spec §5).
const controlLimit = 10

// Server is the REST API. It is an http.Handler.
type Server struct {
	cfg     Config
	db      *store.DB
	keys    *secret.Keyring
	cat     *catalog.Catalog
	valid   *assistant.Validator
	urls    *netguard.URLCheck // the create-time check of URLs Parley calls
	voices  VoiceLister
	calls   Calls
	testMCP MCPTester
	keyChk  map[string]func(string) error
	rec     *Recordings
	domains Domains
	log     *slog.Logger
	now     func() time.Time
	limiter *ratelimit.Limiter
	// control counts call-control commands per call (org and call id).
	control *ratelimit.Limiter
	mux     *http.ServeMux
	routes  []route

	openapiDoc []byte
	openapiErr error
}

// NewServer builds the API handler.
func NewServer(cfg Config, d Deps) *Server {
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.RateLimit <= 0 {
		cfg.RateLimit = 100
	}
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 1 << 20
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, db: d.Store, keys: d.Keyring, cat: d.Catalog, valid: d.Validator, voices: d.Voices,
		calls: d.Calls, testMCP: d.TestMCP, keyChk: d.KeyChecks, rec: d.Recordings, domains: d.Domains, log: d.Logger, now: d.Now, mux: http.NewServeMux(),
		limiter: ratelimit.New(cfg.RateLimit, time.Minute, d.Now), control: ratelimit.New(controlLimit, time.Minute, d.Now),
	}
	s.urls = netguard.NewURLCheck(cfg.AllowPrivateURLs)
	if s.valid != nil {
		s.valid = s.valid.WithURLCheck(s.urls.Check)
	}
	if s.valid != nil {
		// The document says what this server runs, as the validator does.
		s.openapiDoc, s.openapiErr = openapi.DocumentFor(cfg.Version, s.valid.Available)
	} else {
		s.openapiDoc, s.openapiErr = openapi.Document(cfg.Version)
	}
	s.routes = s.routeTable()
	if d.Recordings != nil && d.Recordings.LinkTTL <= 0 {
		d.Recordings.LinkTTL = 24 * time.Hour
	}
	for _, rt := range s.routes {
		h := checkParams(rt.pattern, rt.handler)
		switch {
		case rt.signed:
			h = s.signedOrKey(h)
		case !rt.public:
			h = s.authenticate(h)
		}
		s.mux.Handle(rt.method+" "+rt.pattern, h)
	}
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", p)
			if sw.status == 0 {
				writeError(sw, r, errInternal)
			}
		}
		s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "duration", time.Since(start))
	}()
	if _, pattern := s.mux.Handler(r); pattern == "" {
		s.noRoute(sw, r)
		return
	}
	s.mux.ServeHTTP(sw, r) // sets the path values the handlers read
}

// noRoute answers 405 when the path exists with other methods, else 404.
func (s *Server) noRoute(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := s.mux.Handler(probe); p != "" {
			allowed = append(allowed, m)
		}
	}
	if len(allowed) > 0 {
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		writeError(w, r, errMethodNotAllowed(r.Method, r.URL.Path))
		return
	}
	writeError(w, r, errNoRoute(r.URL.Path))
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

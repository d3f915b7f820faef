// Package googlefake is an in-process stand-in for the Google services
// package google reaches: the OAuth2 token endpoint (service-account JWT
// bearer grants, signatures verified), Vertex AI's OpenAI-compatible chat
// endpoint (access tokens from that endpoint only, "google/" model names),
// the Gemini API's OpenAI-compatible root (API keys), Gemini TTS
// (streamGenerateContent on both services' paths), Cloud Text-to-Speech's
// text:synthesize, and, over gRPC, Speech-to-Text v2's StreamingRecognize
// (Server.Speech). Chat completions themselves are answered by an
// openaifake.Server. Live (NewLive) is Gemini Live's BidiGenerateContent
// websocket, trusting the access tokens a Server issued.
package googlefake

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/provider/openai/openaifake"
)

// Paths to mount the Server on (all three on one mux, or the Server as the
// whole handler).
const (
	TokenPath  = "/token"
	StudioPath = "/v1beta/openai/chat/completions"
	// VertexPrefix starts every Vertex AI chat path:
	// /v1/projects/{project}/locations/{location}/endpoints/openapi/chat/completions.
	VertexPrefix = "/v1/projects/"
)

// Config scripts a Server.
type Config struct {
	// Account is the service account whose assertions the token endpoint
	// accepts (NewAccount makes one).
	Account *Account
	// StudioKey is the API key the Gemini API root accepts; "" accepts any.
	StudioKey string
	// TokenTTL is the lifetime of issued tokens (default 1 h).
	TokenTTL time.Duration
	// Chat answers the chat completions (openaifake).
	Chat openaifake.Config
	// Synth is what Gemini TTS says for a text: 24 kHz PCM (default
	// DefaultSynth, a tone).
	Synth func(text string) []int16
	// TTSStatus, when set, refuses every TTS request with this status.
	TTSStatus int
	// TTSFault breaks every Gemini TTS stream after its first event:
	// FaultMalformed sends an event that is not JSON, FaultCut drops the
	// connection.
	TTSFault Fault
}

// Fault is a failure injected into a stream.
type Fault uint8

// Faults.
const (
	NoFault Fault = iota
	FaultMalformed
	FaultCut
)

// Account is a test service account: its JSON key and the public half the
// fake verifies assertions with.
type Account struct {
	Email, Project string
	JSON           string
	public         *rsa.PublicKey
}

// NewAccount makes a service account with a fresh 2048-bit RSA key.
func NewAccount(project, email string) (*Account, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	key := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	id := make([]byte, 8)
	rand.Read(id)
	b, err := json.Marshal(map[string]string{
		"type": "service_account", "project_id": project, "private_key_id": hex.EncodeToString(id),
		"private_key": key, "client_email": email, "token_uri": "https://attacker.invalid/token",
	})
	if err != nil {
		return nil, err
	}
	return &Account{Email: email, Project: project, JSON: string(b), public: &k.PublicKey}, nil
}

// Call is one chat request the fake received.
type Call struct {
	Service           string // "vertex" or "studio"; "vertex-tts" or "studio-tts" for speech
	Project, Location string // Vertex only
	Model             string
	Voice, Text       string // speech only
}

// Server is the fake. It is safe for concurrent use.
type Server struct {
	cfg  Config
	chat *openaifake.Server

	mu     sync.Mutex
	issued map[string]time.Time // access token → expiry
	grants int
	calls  []Call

	recognitions []Recognition
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.TokenTTL <= 0 {
		cfg.TokenTTL = time.Hour
	}
	return &Server{cfg: cfg, chat: openaifake.New(cfg.Chat), issued: map[string]time.Time{}}
}

// Grants is how many tokens the token endpoint issued.
func (s *Server) Grants() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grants
}

// Calls lists the chat requests received, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Chat is the openaifake answering the completions (its Requests()).
func (s *Server) Chat() *openaifake.Server { return s.chat }

// ServeHTTP routes to the token endpoint, Vertex AI or the Gemini API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == TokenPath && r.Method == http.MethodPost:
		s.token(w, r)
	case r.URL.Path == StudioPath:
		s.studio(w, r)
	case strings.HasPrefix(r.URL.Path, VertexPrefix) && strings.HasSuffix(r.URL.Path, "/endpoints/openapi/chat/completions"):
		s.vertex(w, r)
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
		s.speech(w, r)
	case r.URL.Path == SynthesizePath && r.Method == http.MethodPost:
		s.synthesize(w, r)
	default:
		googleError(w, http.StatusNotFound, "NOT_FOUND", "no such path: "+r.URL.Path)
	}
}

// googleError writes Google's error shape.
func googleError(w http.ResponseWriter, code int, status, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg, "status": status}})
}

// token answers a JWT bearer grant whose assertion the account signed.
func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Form.Get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"unsupported_grant_type"}`))
		return
	}
	if err := s.verify(r.Form.Get("assertion"), "http://"+r.Host+TokenPath); err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": err.Error()})
		return
	}
	b := make([]byte, 16)
	rand.Read(b)
	tok := "ya29.fake-" + hex.EncodeToString(b)
	s.mu.Lock()
	s.issued[tok] = time.Now().Add(s.cfg.TokenTTL)
	s.grants++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "expires_in": int(s.cfg.TokenTTL.Seconds()), "token_type": "Bearer"})
}

// verify checks an RS256 assertion: signed by the account, for aud, with
// the cloud-platform scope, not expired.
func (s *Server) verify(assertion, aud string) error {
	if s.cfg.Account == nil {
		return fmt.Errorf("no service account configured")
	}
	parts := strings.Split(assertion, ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	sum := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(s.cfg.Account.public, crypto.SHA256, sum[:], sig); err != nil {
		return fmt.Errorf("invalid JWT signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	var c struct {
		Iss, Aud, Scope string
		Exp             int64
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("claims: %w", err)
	}
	switch {
	case c.Iss != s.cfg.Account.Email:
		return fmt.Errorf("iss %q is not the account", c.Iss)
	case c.Aud != aud:
		return fmt.Errorf("aud %q, want %q", c.Aud, aud)
	case !strings.Contains(c.Scope, "https://www.googleapis.com/auth/cloud-platform"):
		return fmt.Errorf("scope %q lacks cloud-platform", c.Scope)
	case time.Unix(c.Exp, 0).Before(time.Now()):
		return fmt.Errorf("assertion expired")
	}
	return nil
}

// vertex answers /v1/projects/P/locations/L/endpoints/openapi/chat/completions
// for a token this fake issued and a "google/" model.
func (s *Server) vertex(w http.ResponseWriter, r *http.Request) {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	exp, ok := s.issued[tok]
	s.mu.Unlock()
	if !ok || time.Now().After(exp) {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token.")
		return
	}
	seg := strings.Split(strings.TrimPrefix(r.URL.Path, VertexPrefix), "/") // P, locations, L, endpoints, openapi, chat, completions
	if len(seg) != 7 || seg[1] != "locations" {
		googleError(w, http.StatusNotFound, "NOT_FOUND", "bad Vertex path")
		return
	}
	s.forward(w, r, Call{Service: "vertex", Project: seg[0], Location: seg[2]}, "google/")
}

// studio answers the Gemini API's OpenAI-compatible chat for an API key.
func (s *Server) studio(w http.ResponseWriter, r *http.Request) {
	key, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if key == "" || (s.cfg.StudioKey != "" && key != s.cfg.StudioKey) || strings.HasPrefix(key, "ya29.") {
		googleError(w, http.StatusUnauthorized, "UNAUTHENTICATED", "API key not valid. Please pass a valid API key.")
		return
	}
	s.forward(w, r, Call{Service: "studio"}, "")
}

// forward records the call, checks the model's prefix and lets the chat
// fake answer it as /v1/chat/completions.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, c Call, prefix string) {
	var body struct {
		Model string `json:"model"`
	}
	raw, err := readBody(r)
	if err != nil || json.Unmarshal(raw, &body) != nil {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", "body is not JSON")
		return
	}
	c.Model = body.Model
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.mu.Unlock()
	if prefix != "" && !strings.HasPrefix(body.Model, prefix) {
		googleError(w, http.StatusBadRequest, "INVALID_ARGUMENT", fmt.Sprintf("model %q must name its publisher, e.g. google/gemini-2.5-flash", body.Model))
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = openaifake.ChatPath
	r2.Body = newBody(raw)
	r2.ContentLength = int64(len(raw))
	s.chat.ServeHTTP(w, r2)
}

// Package gladiafake is a fake Gladia live speech-to-text server (API v2).
// It speaks the same two-step protocol as api.gladia.io: POST /v2/live with
// the X-Gladia-Key header and a JSON session configuration answers
// {id, url}, where url is a websocket URL on this same server carrying a
// session token; the websocket takes raw audio (binary frames or
// audio_chunk JSON) in the configured encoding and answers speech_start,
// partial and final transcript, and speech_end messages, found by a simple
// energy detector. Each utterance is answered with the next scripted
// transcript. On stop_recording it ends the utterance in progress, sends
// post_final_transcript and closes normally. Audio time is counted from the
// samples received, so its answers do not depend on the wall clock.
package gladiafake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Defaults applied by New and per session.
const (
	// LivePath is the path of both the session request (POST) and the
	// websocket (GET ?token=...). Mount the Server on it.
	LivePath = "/v2/live"
	// DefaultThreshold is the RMS above which a 20 ms window is speech.
	DefaultThreshold = 500
	// DefaultEndpointing is the silence ending an utterance when the session
	// request sets none (Gladia's default, 0.05 s).
	DefaultEndpointing = 50 * time.Millisecond
	// DefaultTranscript is the reply when Config.Transcripts is empty.
	DefaultTranscript = "hello world"

	readLimit = 1 << 22
	// maxKeptSamples caps the decoded audio a Session keeps (60 s at 48 kHz).
	maxKeptSamples = 48000 * 60
)

// Config configures a Server.
type Config struct {
	// APIKey is the key clients must send as X-Gladia-Key on the session
	// request; empty accepts any non-empty key.
	APIKey string
	// Transcripts are the scripted replies, used in order for the
	// utterances of each session and cycled when exhausted. Empty means
	// DefaultTranscript.
	Transcripts []string
	// Endpointing is the silence that ends an utterance when the session
	// request sets none; zero means Gladia's own default (0.05 s). A
	// scripted run answers each utterance with one whole transcript, so a
	// longer value keeps a spoken sentence with pauses one utterance.
	Endpointing time.Duration
	// Interim makes the server send partial transcripts while speech goes
	// on, revealing the transcript a word per 200 ms of speech.
	Interim bool
	// Threshold is the RMS of a 20 ms window that counts as speech; default
	// 500.
	Threshold float64
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger

	// Fault injection.

	// InitStatus, if set, makes every session request fail with this HTTP
	// status and a Gladia-shaped error body.
	InitStatus int
	// Malformed makes the server send a truncated JSON message right after
	// its first speech_start.
	Malformed bool
	// DisconnectAfter, if > 0, drops each connection without a close frame
	// after that many final transcripts.
	DisconnectAfter int
	// FailAfter, if > 0, sends an error message (FailMessage) and closes
	// each connection with status 1011 after that many final transcripts.
	FailAfter int
}

// FailMessage is the error message sent for Config.FailAfter.
const FailMessage = "fake internal failure"

// InitRequest is the session configuration a client posted (the fields
// the fake reads).
type InitRequest struct {
	Model                             string  `json:"model"`
	Encoding                          string  `json:"encoding"`
	SampleRate                        int     `json:"sample_rate"`
	BitDepth                          int     `json:"bit_depth"`
	Channels                          int     `json:"channels"`
	Endpointing                       float64 `json:"endpointing"`
	MaximumDurationWithoutEndpointing float64 `json:"maximum_duration_without_endpointing"`
	LanguageConfig                    *struct {
		Languages     []string `json:"languages"`
		CodeSwitching bool     `json:"code_switching"`
	} `json:"language_config"`
	RealtimeProcessing *struct {
		CustomVocabulary       bool `json:"custom_vocabulary"`
		CustomVocabularyConfig *struct {
			Vocabulary []json.RawMessage `json:"vocabulary"`
		} `json:"custom_vocabulary_config"`
	} `json:"realtime_processing"`
	MessagesConfig struct {
		ReceivePartialTranscripts bool  `json:"receive_partial_transcripts"`
		ReceiveFinalTranscripts   *bool `json:"receive_final_transcripts"`
		ReceiveSpeechEvents       bool  `json:"receive_speech_events"`
		ReceiveErrors             bool  `json:"receive_errors"`
	} `json:"messages_config"`
}

// Vocabulary returns the custom vocabulary's plain-string entries and the
// "value" of its object entries.
func (r InitRequest) Vocabulary() []string {
	if r.RealtimeProcessing == nil || r.RealtimeProcessing.CustomVocabularyConfig == nil {
		return nil
	}
	var out []string
	for _, raw := range r.RealtimeProcessing.CustomVocabularyConfig.Vocabulary {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out = append(out, s)
			continue
		}
		var obj struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(raw, &obj) == nil {
			out = append(out, obj.Value)
		}
	}
	return out
}

// Languages returns the requested languages (nil for auto-detection).
func (r InitRequest) Languages() []string {
	if r.LanguageConfig == nil {
		return nil
	}
	return r.LanguageConfig.Languages
}

// Session is what the fake knows about one live session.
type Session struct {
	ID      string
	Region  string // the session request's region query parameter
	Request InitRequest
	// Connected says a websocket was opened with the session's token.
	Connected bool
	// Samples is the audio received, decoded to 16-bit PCM at
	// Request.SampleRate (the first 60 s at most).
	Samples    []int16
	AudioBytes int64
	// BinaryFrames and JSONChunks count the audio messages by kind.
	BinaryFrames, JSONChunks int
	Finals                   int
	Stopped                  bool // stop_recording arrived
}

// Server is a fake Gladia API. It is an http.Handler serving LivePath;
// every goroutine it starts ends before ServeHTTP returns.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*Session // by token
	order    []string            // tokens in creation order
}

var _ http.Handler = (*Server)(nil)

// New returns a Server with cfg's zero fields set to their defaults.
func New(cfg Config) *Server {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if len(cfg.Transcripts) == 0 {
		cfg.Transcripts = []string{DefaultTranscript}
	} else {
		cfg.Transcripts = slices.Clone(cfg.Transcripts)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log.With("component", "gladiafake"), sessions: map[string]*Session{}}
}

// Sessions returns a copy of every session created so far, oldest first.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.order))
	for _, tok := range s.order {
		sess := *s.sessions[tok]
		sess.Samples = slices.Clone(sess.Samples)
		out = append(out, sess)
	}
	return out
}

// ServeHTTP answers POST LivePath (session request) and GET
// LivePath?token=... (the session's websocket).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		s.initSession(w, r)
	case http.MethodGet:
		s.serveSocket(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		writeError(w, r, http.StatusMethodNotAllowed, "Use POST to start a live session.")
	}
}

// initSession validates the key and configuration and answers {id, url}.
func (s *Server) initSession(w http.ResponseWriter, r *http.Request) {
	if !s.authorized(r.Header.Get("X-Gladia-Key")) {
		writeError(w, r, http.StatusUnauthorized, "Invalid or missing x-gladia-key header.")
		return
	}
	if s.cfg.InitStatus != 0 {
		writeError(w, r, s.cfg.InitStatus, "Injected failure.")
		return
	}
	region := r.URL.Query().Get("region")
	var req InitRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
	if err := dec.Decode(&req); err != nil {
		writeError(w, r, http.StatusBadRequest, "Invalid JSON body: "+err.Error())
		return
	}
	if err := validate(req, region); err != nil {
		writeError(w, r, http.StatusBadRequest, "Invalid session configuration.", err.problems...)
		return
	}

	id, token := newID(), newID()
	s.mu.Lock()
	s.sessions[token] = &Session{ID: id, Region: region, Request: req}
	s.order = append(s.order, token)
	s.mu.Unlock()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id, "url": socketURL(r, token)})
}

// socketURL points back at this server, on the path the request came to.
func socketURL(r *http.Request, token string) string {
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: url.Values{"token": {token}}.Encode()}
	return u.String()
}

// serveSocket upgrades a GET carrying a known token and runs the session.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	token := r.URL.Query().Get("token")
	s.mu.Lock()
	sess, ok := s.sessions[token]
	busy := ok && sess.Connected
	if ok && !busy {
		sess.Connected = true
	}
	s.mu.Unlock()
	switch {
	case !ok:
		writeError(w, r, http.StatusUnauthorized, "Invalid or expired session token.")
		return
	case busy:
		writeError(w, r, http.StatusConflict, "A websocket is already connected to this session.")
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	conn.SetReadLimit(readLimit)
	newConnection(s, conn, token).run(r.Context())
}

// update runs f on a session's state under the server's lock.
func (s *Server) update(token string, f func(*Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[token]; ok {
		f(sess)
	}
}

func (s *Server) authorized(key string) bool {
	if s.cfg.APIKey == "" {
		return key != ""
	}
	return subtle.ConstantTimeCompare([]byte(key), []byte(s.cfg.APIKey)) == 1
}

// validate applies the constraints Gladia documents for the fields the fake
// understands.
func validate(req InitRequest, region string) *validationError {
	var problems []string
	if region != "" && region != "eu-west" && region != "us-west" {
		problems = append(problems, fmt.Sprintf("region %q must be eu-west or us-west", region))
	}
	if req.Model != "" && req.Model != "solaria-1" && req.Model != "solaria-2" {
		problems = append(problems, fmt.Sprintf("model %q is not supported", req.Model))
	}
	switch req.Encoding {
	case "wav/pcm":
		if !slices.Contains([]int{8, 16, 24, 32}, req.BitDepth) {
			problems = append(problems, fmt.Sprintf("bit_depth %d must be 8, 16, 24 or 32", req.BitDepth))
		} else if req.BitDepth != 16 {
			problems = append(problems, "the fake only decodes 16-bit wav/pcm")
		}
	case "wav/ulaw", "wav/alaw":
		if req.BitDepth != 8 {
			problems = append(problems, fmt.Sprintf("bit_depth %d must be 8 for %s", req.BitDepth, req.Encoding))
		}
	default:
		problems = append(problems, fmt.Sprintf("encoding %q must be wav/pcm, wav/alaw or wav/ulaw", req.Encoding))
	}
	if !slices.Contains([]int{8000, 16000, 32000, 44100, 48000}, req.SampleRate) {
		problems = append(problems, fmt.Sprintf("sample_rate %d must be 8000, 16000, 32000, 44100 or 48000", req.SampleRate))
	}
	if req.Channels != 1 {
		problems = append(problems, fmt.Sprintf("channels %d: the fake handles mono only", req.Channels))
	}
	if req.Endpointing != 0 && (req.Endpointing < 0.01 || req.Endpointing > 10) {
		problems = append(problems, fmt.Sprintf("endpointing %g must be from 0.01 to 10", req.Endpointing))
	}
	if len(problems) > 0 {
		return &validationError{problems}
	}
	return nil
}

// validationError lists every problem of a session request, as Gladia's
// validation_errors does.
type validationError struct{ problems []string }

func (e *validationError) Error() string { return strings.Join(e.problems, "; ") }

// writeError answers with Gladia's error body shape.
func writeError(w http.ResponseWriter, r *http.Request, status int, msg string, validationErrors ...string) {
	body := map[string]any{
		"timestamp":  time.Now().UTC().Format(time.RFC3339),
		"path":       r.URL.Path,
		"request_id": "G-" + newID()[:8],
		"statusCode": status,
		"message":    msg,
	}
	if len(validationErrors) > 0 {
		body["validation_errors"] = validationErrors
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// newID returns a random UUIDv4-formatted id.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

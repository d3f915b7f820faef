// Package inworldfake is a fake Inworld text-to-speech service: the
// bidirectional websocket (GET /tts/v1/voice:streamBidirectional) with its
// multiplexed synthesis contexts. Tests and local runs use it instead of an
// Inworld account.
//
// It speaks the protocol the inworld adapter uses: {"contextId","create":…}
// opens a context (up to five per connection) and is answered with
// contextCreated; send_text buffers text; flush_context synthesises the
// buffer as base64 LINEAR16 audioChunk messages followed by flushCompleted;
// close_context does the same for what is left and answers contextClosed.
// Errors are {"result":{"contextId","status":{"code","message"}}} for a
// context's failure and {"error":{"code","message"}} for a malformed
// message, with gRPC status codes. Instead of a voice it plays Config.Synth's
// audio, by default a tone as long as the text.
//
// Authentication: a missing or wrong "Authorization: Basic <key>" header
// refuses the upgrade with HTTP 401 and a gRPC-gateway error body.
//
// Faults for tests: Config.RejectStatus refuses every upgrade with a status;
// Config.FailAfter with Config.FailMode drops the connection, sends a
// malformed message, a top-level error or a context status error after so
// many audio messages.
package inworldfake

import (
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/provider/fakeconns"
)

// Path is the route the Server serves, as an http.ServeMux pattern.
const Path = "GET /tts/v1/voice:streamBidirectional"

// FailMode is what a connection does when Config.FailAfter is reached.
type FailMode int

// The fault kinds.
const (
	// FailDisconnect drops the TCP connection without a close frame.
	FailDisconnect FailMode = iota
	// FailMalformed sends a message that is not JSON.
	FailMalformed
	// FailError sends a top-level {"error":{"code":13,…}}.
	FailError
	// FailStatus sends the context a {"status":{"code":13,…}} result.
	FailStatus
)

// Config configures the fake.
type Config struct {
	// APIKey is the only key accepted in "Authorization: Basic <key>";
	// empty accepts any key, including none.
	APIKey string
	// Synth returns the audio for a piece of text at rate samples per
	// second; nil means DefaultSynth. It is called from connection
	// goroutines, concurrently.
	Synth func(text string, rate int) []int16
	// SampleRates are the accepted sampleRateHertz values; empty means
	// DefaultSampleRates().
	SampleRates []int
	// Models are the accepted modelId values; empty means DefaultModels().
	Models []string
	// ChunkDuration is how much audio one message carries; 0 means 100 ms.
	// The byte count is not rounded to whole samples, so an odd duration
	// splits samples between messages.
	ChunkDuration time.Duration
	// WAVHeader prefixes the first audio message of every generation with a
	// 44-byte WAV header, as the HTTP API does for LINEAR16.
	WAVHeader bool
	// RealTime paces audio messages at playback speed; false sends them as
	// fast as possible.
	RealTime bool
	// FirstAudioDelay is waited before each generation's first audio.
	FirstAudioDelay time.Duration
	// RejectStatus, when non-zero, refuses every upgrade with this HTTP
	// status (e.g. 429, 500) and a gRPC-gateway error body.
	RejectStatus int
	// FailAfter, when positive, makes each connection fail as FailMode says
	// right after sending this many audio messages.
	FailAfter int
	FailMode  FailMode
	// Logger receives debug events; nil discards them. Keys are never
	// logged.
	Logger *slog.Logger
}

// DefaultSampleRates returns the sampleRateHertz values accepted by default.
func DefaultSampleRates() []int { return []int{8000, 16000, 22050, 24000, 32000, 44100, 48000} }

// DefaultModels returns the modelId values accepted by default.
func DefaultModels() []string {
	return []string{"inworld-tts-2", "inworld-tts-2-flash", "inworld-tts-1.5-max", "inworld-tts-1.5-mini"}
}

// Stats are counters over the Server's lifetime.
type Stats struct {
	Connections   int // websocket connections accepted
	Active        int // connections still open
	Contexts      int // contexts created
	AudioMessages int // audioChunk messages sent
}

// Session records one connection, for assertions.
type Session struct {
	ID            int    // 1 for the first connection, then 2, …
	Authorization string // the Authorization header as received
	RequestID     string // the X-Request-Id header
	// Creates are the create messages' bodies as decoded JSON, by context.
	Creates map[string]map[string]any
	// Texts is the text synthesised, in order, one entry per generation
	// (flush or close), trimmed.
	Texts []string
	// Messages lists the client messages' kinds in order: "create",
	// "send_text", "flush_context", "close_context", "keepalive".
	Messages []string
	Closed   bool // the connection has ended
}

func (s Session) clone() Session {
	s.Creates = maps.Clone(s.Creates)
	s.Texts = slices.Clone(s.Texts)
	s.Messages = slices.Clone(s.Messages)
	return s
}

// Server is the fake service, an http.Handler serving Path. Mount it at the
// root of an httptest.Server (or on a mux with Path) and point the
// adapter's BaseURL there.
//
// Goroutines: each connection runs on its net/http handler goroutine only.
// Close ends every connection and waits for them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	conns *fakeconns.Set // live requests; Close ends them

	mu       sync.Mutex
	stats    Stats
	sessions []*Session
}

// New returns a fake service configured by cfg, with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Synth == nil {
		cfg.Synth = DefaultSynth
	}
	if len(cfg.SampleRates) == 0 {
		cfg.SampleRates = DefaultSampleRates()
	}
	if len(cfg.Models) == 0 {
		cfg.Models = DefaultModels()
	}
	if cfg.ChunkDuration <= 0 {
		cfg.ChunkDuration = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), conns: fakeconns.New()}
	s.mux.HandleFunc(Path, s.serveStream)
	return s
}

// ServeHTTP serves Path; other requests get 404 or 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mux.ServeHTTP(w, r)
}

// Close ends every open connection at once and waits for their goroutines.
// Requests after Close are refused with 503. It always returns nil.
func (s *Server) Close() error {
	s.conns.Close()
	return nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Sessions returns copies of the connections' records, in order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, rec := range s.sessions {
		out[i] = rec.clone()
	}
	return out
}

// authorized checks the Authorization header against Config.APIKey.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	got := r.Header.Get("Authorization")
	return subtle.ConstantTimeCompare([]byte(got), []byte("Basic "+s.cfg.APIKey)) == 1
}

// open records a new accepted connection.
func (s *Server) open(r *http.Request) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Connections++
	s.stats.Active++
	rec := &Session{
		ID:            s.stats.Connections,
		Authorization: r.Header.Get("Authorization"),
		RequestID:     r.Header.Get("X-Request-Id"),
		Creates:       map[string]map[string]any{},
	}
	s.sessions = append(s.sessions, rec)
	return rec
}

// update changes a session's record and the counters under the lock.
func (s *Server) update(f func(st *Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

// writeStatus writes a gRPC-gateway style error body.
func writeStatus(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "details": []any{}})
}

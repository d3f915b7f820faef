// Package xaifake is a fake xAI (Grok) text-to-speech websocket service.
// Tests and local runs use it to speak without an xAI account.
//
// It speaks the protocol of wss://api.x.ai/v1/tts: the configuration in the
// query string (voice, language, codec = pcm | mulaw | alaw, sample_rate,
// and optionally speed, optimize_streaming_latency, text_normalization),
// "Authorization: Bearer <key>" checked before the upgrade (401 with an
// xAI-style JSON body when wrong or missing), client messages
// {"type":"text.delta","delta":…} and {"type":"text.done"}, server messages
// {"type":"audio.delta","delta":"<base64>"}, {"type":"audio.done"} and
// {"type":"error","message":…}. Like the real service it keeps the
// websocket open after audio.done, and it chops the audio at arbitrary byte
// boundaries (Config.ChunkBytes).
//
// Instead of a voice it plays Config.Synth's audio for each delta, by
// default a tone as long as the text. Faults are scripted with
// Config.Fault, Config.FaultAfter and Config.RefuseStatus.
package xaifake

import (
	"encoding/json"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/provider/fakeconns"
)

// Path is the route the Server serves, as an http.ServeMux pattern.
const Path = "GET /v1/tts"

// Fault is a failure the fake injects into a stream.
type Fault int

// The faults. Each strikes once per connection, after Config.FaultAfter
// audio.delta messages.
const (
	NoFault    Fault = iota
	Disconnect       // drop the connection without a close frame
	Malformed        // send a text message that is not JSON
	ErrorEvent       // send {"type":"error","message":"fake failure"}
)

// Config configures the fake.
type Config struct {
	// APIKey is the only bearer token accepted; empty accepts any,
	// including none.
	APIKey string
	// Synth returns the audio for a piece of text at rate samples per
	// second; nil means DefaultSynth. It is called concurrently from
	// connection goroutines.
	Synth func(text string, rate int) []int16
	// ChunkBytes is how many bytes of encoded audio one audio.delta
	// carries; 0 means 100 ms worth. An odd count splits PCM samples
	// between messages, as the real service does.
	ChunkBytes int
	// FirstAudioDelay is waited before the first audio.delta of each text
	// delta, like the service's time to first byte.
	FirstAudioDelay time.Duration
	// Fault, when not NoFault, strikes each connection after FaultAfter
	// audio.delta messages.
	Fault      Fault
	FaultAfter int
	// RefuseStatus, when non-zero, refuses every upgrade with this HTTP
	// status and an xAI-style JSON error body (after the key check).
	RefuseStatus int
	// Logger receives debug events; nil discards them. Keys are never
	// logged.
	Logger *slog.Logger
}

// Session records one connection, for assertions.
type Session struct {
	ID     int        // 1 for the first connection, then 2, …
	Query  url.Values // voice, language, codec, sample_rate, …
	Deltas []string   // the text.delta texts, verbatim, in order
	Done   int        // text.done messages received
	Closed bool       // the connection has ended
}

func (s Session) clone() Session {
	s.Query = maps.Clone(s.Query)
	s.Deltas = slices.Clone(s.Deltas)
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
	sessions []*Session
}

// New returns a fake service configured by cfg.
func New(cfg Config) *Server {
	if cfg.Synth == nil {
		cfg.Synth = DefaultSynth
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), conns: fakeconns.New()}
	s.mux.HandleFunc(Path, s.serveTTS)
	return s
}

// ServeHTTP serves Path; other requests get 404 or 405.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Close ends every open connection at once and waits for them. Requests
// after Close get 503. It always returns nil.
func (s *Server) Close() error {
	s.conns.Close()
	return nil
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

// open starts the record of an accepted connection.
func (s *Server) open(q url.Values) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &Session{ID: len(s.sessions) + 1, Query: q}
	s.sessions = append(s.sessions, rec)
	return rec
}

// record changes a session under the lock.
func (s *Server) record(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
}

// writeError answers a refused request with xAI's error body shape,
// {"code":…,"error":…}.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "error": msg})
}

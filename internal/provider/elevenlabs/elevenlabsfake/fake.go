// Package elevenlabsfake is a fake ElevenLabs text-to-speech websocket
// service (stream-input) and Scribe v2 Realtime speech-to-text service
// (STTPath, see scribe.go). Tests, the load harness and `parley
// simulate-providers` use it to run calls without an ElevenLabs account.
//
// For text-to-speech it speaks the real protocol closely enough for the
// elevenlabs adapter: an init message first ({"text":" ", …}), text messages
// that are buffered and generated on flush, try_trigger_generation, a
// chunk_length_schedule threshold or the end of input ({"text":""}), base64
// audio messages with character alignment, then {"isFinal":true} and a
// normal close. Instead of a voice it plays Config.Synth's audio, by default
// a tone as long as the text.
//
// Authentication: like the real service, a missing or wrong xi-api-key is
// refused after the upgrade, with a close frame 1008 "Invalid API key";
// the upgrade itself always succeeds. The STT endpoint refuses the upgrade
// with HTTP 401 instead (or, with STTConfig.AuthInBand, answers auth_error).
//
// Speech-to-text is scripted with Config.STT: segments of partial and
// committed transcripts that an energy detector releases as it hears the
// client's audio, and faults (malformed message, disconnect, error message,
// normal close, refused upgrade) to inject.
package elevenlabsfake

import (
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/provider/fakeconns"
)

// Path is the text-to-speech route the Server serves, as an http.ServeMux
// pattern; STTPath is the speech-to-text one.
const Path = "GET /v1/text-to-speech/{voice_id}/stream-input"

// Config configures the fake.
type Config struct {
	// APIKey is the only xi-api-key accepted; empty accepts any key,
	// including none.
	APIKey string
	// Synth returns the audio for a piece of text at rate samples per
	// second; nil means DefaultSynth. It is called from connection
	// goroutines, concurrently.
	Synth func(text string, rate int) []int16
	// FirstAudioDelay is how long after a generation is triggered its first
	// audio message is sent, like the service's time to first byte. It
	// applies to every generation (each flushed sentence).
	FirstAudioDelay time.Duration
	// ChunkDuration is how much audio one message carries; 0 means 100 ms.
	// The byte count is not rounded to whole samples (see Server).
	ChunkDuration time.Duration
	// RealTime paces audio messages at playback speed, like the real
	// service; false sends them as fast as possible.
	RealTime bool
	// Logger receives debug events; nil discards them. Keys are never
	// logged.
	Logger *slog.Logger
	// OnFirstAudio, when set, is called with the time each connection sent
	// its first audio message. It runs on the connection's goroutine and
	// must not block.
	OnFirstAudio func(at time.Time)
	// FailAfter, when positive, makes each connection close with 1011
	// "fake failure" right after sending this many audio messages.
	FailAfter int
	// InactivityTimeout closes a connection with 1008 when no message
	// arrives for this long while idle; 0 means 20 s. A request's
	// inactivity_timeout query parameter (seconds, at most 180) wins.
	InactivityTimeout time.Duration
	// STT scripts the Scribe realtime speech-to-text endpoint (STTPath).
	STT STTConfig
	// MaxRecorded is how many of the most recent connections Texts and
	// Sessions remember; 0 means 1000.
	MaxRecorded int
}

// Stats are counters over the Server's lifetime.
type Stats struct {
	Connections   int // websocket connections accepted
	Active        int // connections still open
	Characters    int // characters of text received (after the init message)
	AudioMessages int // audio messages sent
}

// Session records one connection, for assertions.
type Session struct {
	ID      int        // 1 for the first connection, then 2, …
	VoiceID string     // the voice_id path segment, unescaped
	Query   url.Values // the request's query: model_id, output_format, …
	// Init is the init message as decoded JSON, nil if none arrived.
	Init map[string]any
	// Texts is the text generated, in order: each buffered piece, trimmed.
	Texts  []string
	Closed bool // the connection has ended
}

func (s Session) clone() Session {
	s.Query = maps.Clone(s.Query)
	s.Init = maps.Clone(s.Init)
	s.Texts = slices.Clone(s.Texts)
	return s
}

// Server is the fake service, an http.Handler serving Path and STTPath.
// Mount it at the root of an httptest.Server or http.Server and point the
// adapter's BaseURL there.
//
// Text-to-speech audio messages carry Config.ChunkDuration of audio each,
// counted in bytes without rounding to whole samples: at pcm_8000 a ChunkDuration of
// 101×62.5 µs gives 101-byte messages, splitting samples between messages.
//
// Goroutines: each TTS connection runs on its net/http handler goroutine
// plus one reader goroutine it waits for; each STT connection runs on its
// handler goroutine alone. Close ends every connection and waits
// for them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	mux   *http.ServeMux
	conns *fakeconns.Set // live requests; Close ends them

	mu       sync.Mutex
	stats    Stats
	sessions []*Session // the most recent MaxRecorded

	sttConns    int           // STT connections accepted
	sttSessions []*STTSession // the most recent MaxRecorded
}

// New returns a fake service configured by cfg, with defaults filled in.
func New(cfg Config) *Server {
	if cfg.Synth == nil {
		cfg.Synth = DefaultSynth
	}
	if cfg.ChunkDuration <= 0 {
		cfg.ChunkDuration = 100 * time.Millisecond
	}
	if cfg.InactivityTimeout <= 0 {
		cfg.InactivityTimeout = 20 * time.Second
	}
	if cfg.STT.DefaultSilence <= 0 {
		cfg.STT.DefaultSilence = 1500 * time.Millisecond
	}
	if cfg.MaxRecorded <= 0 {
		cfg.MaxRecorded = 1000
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, log: log, mux: http.NewServeMux(), conns: fakeconns.New()}
	s.mux.HandleFunc(Path, s.serveStream)
	s.mux.HandleFunc(STTPath, s.serveSTT)
	return s
}

// ServeHTTP serves Path and STTPath; other requests get 404 or 405, and every request
// after Close gets 503.
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

// Texts returns, per remembered connection in order, the text generated.
func (s *Server) Texts() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.sessions))
	for i, rec := range s.sessions {
		out[i] = slices.Clone(rec.Texts)
	}
	return out
}

// Sessions returns copies of the remembered connections' records, in order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, rec := range s.sessions {
		out[i] = rec.clone()
	}
	return out
}

// open counts an accepted connection and starts its record.
func (s *Server) open(r *http.Request) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Connections++
	s.stats.Active++
	rec := &Session{
		ID:      s.stats.Connections,
		VoiceID: r.PathValue("voice_id"),
		Query:   r.URL.Query(),
	}
	s.sessions = append(s.sessions, rec)
	if over := len(s.sessions) - s.cfg.MaxRecorded; over > 0 {
		s.sessions = slices.Delete(s.sessions, 0, over)
	}
	return rec
}

// ended marks a connection closed.
func (s *Server) ended(rec *Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stats.Active--
	rec.Closed = true
}

// update changes a record or the counters under the lock.
func (s *Server) update(f func(st *Stats)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.stats)
}

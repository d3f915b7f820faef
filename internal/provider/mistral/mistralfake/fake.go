// Package mistralfake is an in-process fake of Mistral's Voxtral realtime
// transcription websocket, for tests. It checks the bearer key, answers
// session.update, decodes the audio in the negotiated encoding, "hears"
// speech in loud 20 ms windows and reveals a scripted transcript word by
// word as text deltas while speech lasts; input_audio.flush and
// input_audio.end push out the rest and send transcription.done. Faults can
// be injected: an HTTP status on the handshake, a malformed message, an
// error event or a dropped connection.
package mistralfake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// RealtimePath is where to mount the Server on an http.ServeMux; the
// client's BaseURL is then the test server's URL + "/v1".
const RealtimePath = "/v1/audio/transcriptions/realtime"

// Defaults of the scripted behaviour.
const (
	DefaultWordEvery     = 150 * time.Millisecond
	DefaultTargetDelayMs = 480
	// SpeechRMS is the 20 ms window RMS at or above which the fake hears
	// speech.
	SpeechRMS = 1000
)

// Config scripts a Server.
type Config struct {
	// APIKey is the key the fake accepts as "Authorization: Bearer <key>";
	// any other or a missing header is refused with 401. Empty accepts any
	// non-empty key (simulate-providers).
	APIKey string
	// Transcripts are the utterances' texts, in order; utterances beyond
	// the list have no text.
	Transcripts []string
	// WordEvery is how much speech reveals one more word as a delta;
	// default 150 ms.
	WordEvery time.Duration
	// CumulativeDone makes transcription.done carry the whole session's
	// text instead of the utterance's.
	CumulativeDone bool
	// NoDoneOnFlush makes input_audio.flush push out deltas only; just
	// input_audio.end is answered with transcription.done.
	NoDoneOnFlush bool

	// Status, when non-zero, refuses every handshake with this HTTP status
	// and a Mistral-style {"message"} body.
	Status int
	// MalformedAfter sends a message that is not JSON after this many
	// appends (0: never).
	MalformedAfter int
	// ErrorAfter sends an error event after this many appends (0: never).
	ErrorAfter int
	// DisconnectAfter drops the connection without a close frame after this
	// many appends (0: never).
	DisconnectAfter int

	Logger *slog.Logger
}

// Session records what one client connection did, for assertions.
type Session struct {
	Model      string
	Language   string     // the language query parameter, if any
	Query      url.Values // the whole handshake query
	Encoding   string     // negotiated audio encoding
	SampleRate int        // negotiated sample rate
	// TargetDelayMs is the session.update's target_streaming_delay_ms.
	TargetDelayMs int
	Updates       int // session.update messages
	Appends       int // input_audio.append messages
	Samples       int // audio samples received
	Flushes       int // input_audio.flush messages
	Ended         bool
	Errors        []string // protocol errors the fake reported
}

// Server is the fake; it is an http.Handler for RealtimePath.
type Server struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	sessions []Session
}

// New returns a Server scripted by cfg.
func New(cfg Config) *Server {
	if cfg.WordEvery <= 0 {
		cfg.WordEvery = DefaultWordEvery
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log}
}

// Sessions returns a copy of every session so far, in connection order.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, len(s.sessions))
	for i, ss := range s.sessions {
		ss.Errors = append([]string(nil), ss.Errors...)
		out[i] = ss
	}
	return out
}

// authorized checks the bearer key against Config.APIKey (any non-empty
// key when that is empty).
func (s *Server) authorized(header string) bool {
	key, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || key == "" {
		return false
	}
	return s.cfg.APIKey == "" || key == s.cfg.APIKey
}

// ServeHTTP checks the key and model, then runs the websocket session.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.cfg.Status != 0:
		refuse(w, s.cfg.Status, "injected failure")
		return
	case !s.authorized(r.Header.Get("Authorization")):
		refuse(w, http.StatusUnauthorized, "Unauthorized")
		return
	case r.URL.Query().Get("model") == "":
		refuse(w, http.StatusBadRequest, "model query parameter is required")
		return
	}
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("mistralfake: accept failed", "err", err)
		return
	}
	conn.SetReadLimit(readLimit) // a full 256 KiB append is 350 KB of base64
	idx := s.addSession(r.URL.Query())
	c := newConnection(s, conn, idx)
	c.run(r.Context())
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "request_id": newID()})
}

func (s *Server) addSession(q url.Values) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = append(s.sessions, Session{
		Model: q.Get("model"), Language: q.Get("language"), Query: q,
		Encoding: "pcm_s16le", SampleRate: 16000, TargetDelayMs: DefaultTargetDelayMs,
	})
	return len(s.sessions) - 1
}

func (s *Server) update(idx int, f func(*Session)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(&s.sessions[idx])
}

func (s *Server) session(idx int) Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sessions[idx]
}

func newID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// transcript returns the text of utterance n ("" past the script).
func (s *Server) transcript(n int) string {
	if n < len(s.cfg.Transcripts) {
		return s.cfg.Transcripts[n]
	}
	return ""
}

func runCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithCancel(context.WithoutCancel(parent))
}

func words(text string) []string { return strings.Fields(text) }

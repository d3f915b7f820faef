// Package deepgramfake is a fake Deepgram streaming speech-to-text server.
// It speaks the v1 "listen" websocket protocol (auth, query parameters,
// KeepAlive / Finalize / CloseStream, Results / SpeechStarted /
// UtteranceEnd / Metadata, close codes) and "recognises" speech with a
// simple energy detector, answering each utterance with the next scripted
// transcript. Audio time is counted from the samples received, never from
// the wall clock, so its answers are deterministic however fast audio
// arrives. It serves tests, the load harness and `parley simulate-providers`.
package deepgramfake

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Defaults applied by New and per connection.
const (
	// DefaultThreshold is the RMS above which a 20 ms window counts as
	// speech.
	DefaultThreshold = 500
	// DefaultIdleTimeout is how long a connection may go without audio or
	// KeepAlive before it is closed with 1011 "NET-0001", as Deepgram does.
	DefaultIdleTimeout = 10 * time.Second
	// DefaultEndpointing is the silence that ends an utterance when the
	// client does not set endpointing.
	DefaultEndpointing = 300 * time.Millisecond
	// DefaultTranscript is the reply when Config.Transcripts is empty.
	DefaultTranscript = "hello world"

	// ListenPath is the only path the server answers.
	ListenPath = "/v1/listen"

	// FailReason is the close reason used for Config.FailAfter.
	FailReason = "fake failure"
	// IdleReason is the close reason used after Config.IdleTimeout.
	IdleReason = "NET-0001"

	endpointingDisabled = 10 * time.Millisecond
	speechOnset         = 60 * time.Millisecond
	windowLength        = 20 * time.Millisecond
	interimEvery        = 200 * time.Millisecond
	readLimit           = 1 << 22
	modelUUID           = "00000000-0000-4000-8000-00000000fa4e"
)

// Config configures a Server.
type Config struct {
	// APIKey is the key clients must send as "Authorization: Token <key>";
	// empty accepts any (or no) credentials.
	APIKey string
	// Transcripts are the scripted replies, used in order for the
	// utterances of each connection and cycled when exhausted. Empty means
	// DefaultTranscript.
	Transcripts []string
	// Interim makes the server send interim Results while speech goes on,
	// revealing the transcript a word per 200 ms of speech, when the client
	// asked for interim_results=true.
	Interim bool
	// Threshold is the RMS of a 20 ms window that counts as speech; default
	// 500.
	Threshold float64
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
	// OnFinal, if set, is called on the connection's goroutine right after
	// a speech_final Results has been written. It must not block for long.
	OnFinal func(text string, at time.Time)
	// FailAfter, if > 0, closes each connection with 1011 "fake failure"
	// after it has sent that many finals.
	FailAfter int
	// IdleTimeout is the wall-clock time without audio or KeepAlive after
	// which a connection is closed with 1011 "NET-0001"; default 10 s.
	IdleTimeout time.Duration
}

// Stats are the server's counters since New.
type Stats struct {
	Connections       int64 // websocket sessions accepted
	ActiveConnections int64 // sessions still open
	AudioBytes        int64 // bytes of audio received
	Finals            int64 // final Results sent
}

// Server is a fake Deepgram API. It is an http.Handler serving
// GET /v1/listen; every goroutine it starts ends before ServeHTTP returns.
type Server struct {
	cfg Config
	log *slog.Logger

	connections atomic.Int64
	active      atomic.Int64
	audioBytes  atomic.Int64
	finals      atomic.Int64
}

var _ http.Handler = (*Server)(nil)

// New returns a Server with cfg's zero fields set to their defaults.
func New(cfg Config) *Server {
	if cfg.Threshold <= 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if len(cfg.Transcripts) == 0 {
		cfg.Transcripts = []string{DefaultTranscript}
	} else {
		cfg.Transcripts = append([]string(nil), cfg.Transcripts...)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{cfg: cfg, log: log.With("component", "deepgramfake")}
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections:       s.connections.Load(),
		ActiveConnections: s.active.Load(),
		AudioBytes:        s.audioBytes.Load(),
		Finals:            s.finals.Load(),
	}
}

// ServeHTTP answers GET /v1/listen: it checks the key and the query, then
// upgrades to a websocket and runs the session until it closes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	w.Header().Set("dg-request-id", requestID)
	if r.URL.Path != ListenPath {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "Unknown path "+r.URL.Path+".", requestID)
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Use GET to open a stream.", requestID)
		return
	}
	if !s.authorized(r.Header.Get("Authorization")) {
		writeError(w, http.StatusUnauthorized, "INVALID_AUTH", "Invalid credentials.", requestID)
		return
	}
	p, err := parseParams(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "Bad Request", err.Error(), requestID)
		return
	}

	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		// Accept has already answered the request.
		s.log.Debug("websocket upgrade failed", "err", err)
		return
	}
	conn.SetReadLimit(readLimit)
	s.connections.Add(1)
	s.active.Add(1)
	defer s.active.Add(-1)

	sess := newSession(s, conn, p, requestID)
	sess.run(r.Context())
}

// authorized checks "Authorization: Token <key>".
func (s *Server) authorized(header string) bool {
	if s.cfg.APIKey == "" {
		return true
	}
	scheme, key, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "token") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(key)), []byte(s.cfg.APIKey)) == 1
}

// writeError answers a refused upgrade with a Deepgram-shaped JSON body.
func writeError(w http.ResponseWriter, status int, code, msg, requestID string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(struct {
		ErrCode   string `json:"err_code"`
		ErrMsg    string `json:"err_msg"`
		RequestID string `json:"request_id"`
	}{code, msg, requestID})
}

// newRequestID returns a random UUIDv4-formatted id.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// params are the query parameters a session honours.
type params struct {
	model        string
	encoding     string // linear16, mulaw or alaw
	sampleRate   int
	channels     int
	interim      bool
	vadEvents    bool
	endpointing  time.Duration
	utteranceEnd time.Duration // 0 = no UtteranceEnd messages
}

// parseParams validates the query of a listen request.
func parseParams(q url.Values) (params, error) {
	p := params{model: q.Get("model"), channels: 1}
	if p.model == "" {
		p.model = "nova-3"
	}
	switch enc := q.Get("encoding"); enc {
	case "linear16", "mulaw", "alaw":
		p.encoding = enc
	case "":
		return p, fmt.Errorf("encoding is required for raw audio")
	default:
		return p, fmt.Errorf("unsupported encoding %q (want linear16, mulaw or alaw)", enc)
	}
	rate, err := strconv.Atoi(q.Get("sample_rate"))
	if err != nil || rate <= 0 || rate > 192000 {
		return p, fmt.Errorf("sample_rate %q must be a positive integer", q.Get("sample_rate"))
	}
	p.sampleRate = rate
	if v := q.Get("channels"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 16 {
			return p, fmt.Errorf("channels %q must be an integer from 1 to 16", v)
		}
		p.channels = n
	}
	if p.interim, err = boolParam(q, "interim_results"); err != nil {
		return p, err
	}
	if p.vadEvents, err = boolParam(q, "vad_events"); err != nil {
		return p, err
	}
	if p.endpointing, err = parseEndpointing(q.Get("endpointing")); err != nil {
		return p, err
	}
	if v := q.Get("utterance_end_ms"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, fmt.Errorf("utterance_end_ms %q must be a non-negative integer", v)
		}
		p.utteranceEnd = time.Duration(n) * time.Millisecond
	}
	return p, nil
}

// parseEndpointing reads the endpointing parameter: milliseconds, "false"
// (disabled, which the fake models as 10 ms) or empty for the default.
func parseEndpointing(v string) (time.Duration, error) {
	switch strings.ToLower(v) {
	case "":
		return DefaultEndpointing, nil
	case "false":
		return endpointingDisabled, nil
	case "true":
		return DefaultEndpointing, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("endpointing %q must be a number of milliseconds or false", v)
	}
	if n == 0 {
		return endpointingDisabled, nil
	}
	return time.Duration(n) * time.Millisecond, nil
}

func boolParam(q url.Values, key string) (bool, error) {
	v := q.Get(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q must be true or false", key, v)
	}
	return b, nil
}

package elevenlabs

// Scribe v2 Realtime speech-to-text. One stt.Stream is one websocket:
//
//	GET wss://api.elevenlabs.io/v1/speech-to-text/realtime?model_id=scribe_v2_realtime&audio_format=ulaw_8000&commit_strategy=vad&…
//	xi-api-key: …
//
// The session is configured by the query alone. The service answers
// {"message_type":"session_started",…} first; the client then sends
// {"message_type":"input_audio_chunk","audio_base_64":…,"commit":false,
// "sample_rate":8000} messages and receives partial_transcript and
// committed_transcript messages. Close sends a last chunk with
// "commit":true, waits for its committed transcript and closes with 1000.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/provider/wsurl"
	"github.com/parley-voice/parley/internal/stt"
)

const (
	// DefaultSTTModel is the Scribe realtime model, used when
	// stt.Config.Model is empty.
	DefaultSTTModel = "scribe_v2_realtime"
	// DefaultSTTKeepAlive is how long a stream may send nothing before it
	// sends an empty chunk (the service closes idle sockets).
	DefaultSTTKeepAlive = 5 * time.Second
	// DefaultSTTQueueFrames bounds the audio waiting to be sent: 250 frames
	// of 20 ms are 5 s.
	DefaultSTTQueueFrames = 250
	// DefaultSTTCloseTimeout bounds Close's wait for the last transcript.
	DefaultSTTCloseTimeout = 3 * time.Second
	// DefaultSTTReconnects is how many reconnections in a row a stream
	// tries after the service dropped it.
	DefaultSTTReconnects = 3
	// DefaultSTTReconnectBackoff is the wait before the first reconnection;
	// it doubles for each further one in a row.
	DefaultSTTReconnectBackoff = 200 * time.Millisecond

	// MinVADSilence and MaxVADSilence bound vad_silence_threshold_secs;
	// stt.Config.Endpointing is clamped to them.
	MinVADSilence = 300 * time.Millisecond
	MaxVADSilence = 3 * time.Second

	sttPath        = "/v1/speech-to-text/realtime"
	sttDialTimeout = 10 * time.Second
	sttReadLimit   = 1 << 20
	// sttFallbackRate is what audio at a rate Scribe does not take is
	// resampled to.
	sttFallbackRate = 16000
)

// STT opens Scribe v2 Realtime recognition streams. It implements
// stt.Provider and is safe for concurrent use.
type STT struct {
	baseURL      string
	client       *http.Client
	log          *slog.Logger
	keepAlive    time.Duration
	queueFrames  int
	closeTimeout time.Duration
	reconnects   int
	backoff      time.Duration
}

var _ stt.Provider = (*STT)(nil)

// NewSTT returns a Scribe provider using cfg, with defaults filled in.
// ChunkSchedule is not used.
func NewSTT(cfg Config) *STT {
	p := &STT{
		baseURL:      cfg.BaseURL,
		client:       cfg.HTTPClient,
		log:          cfg.Logger,
		keepAlive:    cfg.STTKeepAlive,
		queueFrames:  cfg.STTQueueFrames,
		closeTimeout: cfg.STTCloseTimeout,
		reconnects:   cfg.STTReconnects,
		backoff:      cfg.STTReconnectBackoff,
	}
	if p.baseURL == "" {
		p.baseURL = DefaultBaseURL
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.keepAlive <= 0 {
		p.keepAlive = DefaultSTTKeepAlive
	}
	if p.queueFrames <= 0 {
		p.queueFrames = DefaultSTTQueueFrames
	}
	if p.closeTimeout <= 0 {
		p.closeTimeout = DefaultSTTCloseTimeout
	}
	switch {
	case p.reconnects == 0:
		p.reconnects = DefaultSTTReconnects
	case p.reconnects < 0:
		p.reconnects = 0
	}
	if p.backoff <= 0 {
		p.backoff = DefaultSTTReconnectBackoff
	}
	return p
}

// sttPlan is what Open derives from an stt.Config.
type sttPlan struct {
	model      string
	format     string // audio_format
	wireRate   int    // sample_rate of the chunks
	ulaw       bool   // chunks carry G.711 µ-law rather than PCM16 LE
	resample   bool   // the pipeline's rate must be converted to wireRate
	manual     bool   // commit_strategy=manual: only Finalize and Close commit
	timestamps bool   // include_timestamps=true: finals come with words
	prevText   string // previous_text for the first chunk
}

// planSTT chooses the wire encoding and commit strategy for sc: G.711 µ-law
// at 8 kHz (what phone calls carry), PCM16 at the pipeline's rate when
// Scribe takes it, else PCM16 resampled to 16 kHz. The option sample_rate
// (8000 or 16000) picks the wire rate instead.
func planSTT(sc stt.Config) (sttPlan, error) {
	if sc.SampleRate <= 0 {
		return sttPlan{}, fmt.Errorf("sample rate %d Hz is not positive", sc.SampleRate)
	}
	p := sttPlan{model: strings.TrimSpace(sc.Model), manual: sc.Endpointing < 0}
	if p.model == "" {
		p.model = DefaultSTTModel
	}
	rate := sc.SampleRate
	if r, err := toFloat(sc.Options["sample_rate"]); err == nil && (r == 8000 || r == 16000) {
		rate = int(r) // the stt_config option: the rate to send Scribe
	}
	switch {
	case rate == 8000:
		p.format, p.wireRate, p.ulaw = "ulaw_8000", 8000, true
	case isSTTPCMRate(rate):
		p.format, p.wireRate = "pcm_"+strconv.Itoa(rate), rate
	default:
		p.format, p.wireRate = "pcm_16000", sttFallbackRate
	}
	p.resample = p.wireRate != sc.SampleRate
	if b, ok := optionBool(sc.Options["include_timestamps"]); ok {
		p.timestamps = b
	}
	if s, ok := sc.Options["previous_text"].(string); ok {
		p.prevText = s
	}
	return p, nil
}

// isSTTPCMRate reports the rates Scribe takes as pcm_<rate>.
func isSTTPCMRate(rate int) bool {
	switch rate {
	case 8000, 16000, 22050, 24000, 44100, 48000:
		return true
	}
	return false
}

// sttURL builds the realtime address for sc on base. It is pure so that
// the query can be table-tested.
func sttURL(base string, sc stt.Config, p sttPlan) (string, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil {
		return "", fmt.Errorf("parsing base URL: %w", err)
	}
	if err := wsurl.Adapt(u, base); err != nil {
		return "", err
	}
	u.Path += sttPath
	u.RawPath = ""
	u.Fragment = ""

	q := url.Values{}
	q.Set("model_id", p.model)
	q.Set("audio_format", p.format)
	if p.manual {
		q.Set("commit_strategy", "manual")
	} else {
		q.Set("commit_strategy", "vad")
		if sc.Endpointing > 0 {
			q.Set("vad_silence_threshold_secs", vadSeconds(sc.Endpointing))
		}
	}
	if lang := sttLanguage(sc.Language); lang != "" {
		q.Set("language_code", lang)
	}
	if p.timestamps {
		q.Set("include_timestamps", "true")
	}
	for _, term := range sc.Keyterms {
		if term = strings.TrimSpace(term); term != "" {
			q.Add("keyterms", term)
		}
	}
	applySTTOptions(q, sc.Options)
	u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
	return u.String(), nil
}

// sttLanguage returns the language_code for a configured language: the
// ISO 639 part of a tag such as "nl-NL", or "" (detect the language) for an
// empty one or "multi".
func sttLanguage(lang string) string {
	lang = strings.ToLower(strings.TrimSpace(lang))
	if i := strings.IndexAny(lang, "-_"); i > 0 {
		lang = lang[:i]
	}
	if lang == "multi" {
		return ""
	}
	return lang
}

// vadSeconds renders an endpointing duration as vad_silence_threshold_secs,
// clamped to what the service accepts.
func vadSeconds(d time.Duration) string {
	d = min(max(d, MinVADSilence), MaxVADSilence)
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// applySTTOptions copies the stt_config options Scribe understands into q.
// Values of the wrong type, out of range, and unknown keys are ignored.
func applySTTOptions(q url.Values, opts map[string]any) {
	for _, key := range [...]string{"include_language_detection", "enable_logging", "no_verbatim"} {
		if b, ok := optionBool(opts[key]); ok {
			q.Set(key, strconv.FormatBool(b))
		}
	}
	if f, err := toFloat(opts["vad_threshold"]); err == nil && f >= 0.1 && f <= 0.9 {
		q.Set("vad_threshold", strconv.FormatFloat(f, 'f', -1, 64))
	}
	for _, key := range [...]string{"min_speech_duration_ms", "min_silence_duration_ms"} {
		if f, err := toFloat(opts[key]); err == nil && f >= 50 && f <= 2000 {
			q.Set(key, strconv.Itoa(int(f)))
		}
	}
}

// optionBool reads a JSON boolean (or "true"/"false").
func optionBool(v any) (bool, bool) {
	switch x := v.(type) {
	case bool:
		return x, true
	case string:
		b, err := strconv.ParseBool(strings.TrimSpace(x))
		return b, err == nil
	}
	return false, false
}

// Open dials a Scribe realtime session for sc and waits for the service's
// session_started message. ctx bounds the whole stream, not only the dial.
// When the service or the network drops the stream later, it reconnects
// (Config.STTReconnects) and carries on; Recv fails only when that fails
// too. A refused upgrade (401 for a bad key) or an error message in place of
// session_started is a *ServerError.
func (p *STT) Open(ctx context.Context, sc stt.Config) (stt.Stream, error) {
	plan, err := planSTT(sc)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening scribe stream: %w", err)
	}
	u, err := sttURL(p.baseURL, sc, plan)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening scribe stream: %w", err)
	}
	enc, err := newSTTEncoder(sc.SampleRate, plan)
	if err != nil {
		return nil, fmt.Errorf("elevenlabs: opening scribe stream: %w", err)
	}
	hdr := http.Header{}
	if sc.APIKey != "" {
		hdr.Set("xi-api-key", sc.APIKey)
	}
	log := p.log.With("provider", "elevenlabs", "model", plan.model, "format", plan.format)
	dial := func(ctx context.Context) (*websocket.Conn, error) {
		return p.dial(ctx, u, hdr, sc.APIKey, log)
	}
	conn, err := dial(ctx)
	if err != nil {
		return nil, err
	}
	return newSTTStream(ctx, conn, dial, log, p, plan, enc, sc.APIKey), nil
}

// dial connects one websocket and waits for session_started.
func (p *STT) dial(ctx context.Context, u string, hdr http.Header, key string, log *slog.Logger) (*websocket.Conn, error) {
	dialCtx, cancel := context.WithTimeout(ctx, sttDialTimeout)
	defer cancel()
	conn, resp, err := websocket.Dial(dialCtx, u, &websocket.DialOptions{HTTPClient: p.client, HTTPHeader: hdr})
	if err != nil {
		return nil, dialError(err, resp, key)
	}
	conn.SetReadLimit(sttReadLimit)
	id, err := awaitSessionStarted(dialCtx, conn, key)
	if err != nil {
		_ = conn.CloseNow()
		return nil, err
	}
	log.Debug("elevenlabs scribe session started", "session_id", id)
	return conn, nil
}

// awaitSessionStarted reads the service's first message, which must be
// session_started, and returns the session id.
func awaitSessionStarted(ctx context.Context, conn *websocket.Conn, key string) (string, error) {
	for {
		typ, data, err := conn.Read(ctx)
		if err != nil {
			return "", sttReadError(err, key, "waiting for session_started")
		}
		if typ != websocket.MessageText {
			continue
		}
		m, err := parseSTTMessage(data)
		if err != nil {
			return "", err
		}
		switch {
		case m.isError():
			return "", m.serverError(key)
		case m.Type == msgSessionStarted:
			return m.SessionID, nil
		}
	}
}

// sttReadError explains a failed read: a close frame becomes a
// *ServerError, anything else names what was being done.
func sttReadError(err error, key, doing string) error {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return &ServerError{CloseStatus: int(ce.Code), Message: redact.Key(ce.Reason, key)}
	}
	return fmt.Errorf("elevenlabs: %s: %s", doing, redact.Key(err.Error(), key))
}

// Server message types.
const (
	msgSessionStarted  = "session_started"
	msgPartial         = "partial_transcript"
	msgCommitted       = "committed_transcript"
	msgCommittedWithTS = "committed_transcript_with_timestamps"
	msgCommitThrottled = "commit_throttled"
	msgInputAudioChunk = "input_audio_chunk"
)

// sttNormalCloseLabel is the close reason of a stream the client ends.
const sttNormalCloseLabel = "User ended conversation"

// isSTTError reports the message types that report a failure; the text is
// in the "error" field.
func isSTTError(messageType string) bool {
	switch messageType {
	case "error", "auth_error", "quota_exceeded_error", msgCommitThrottled, "unaccepted_terms_error",
		"rate_limited", "queue_overflow", "resource_exhausted", "session_time_limit_exceeded",
		"chunk_size_exceeded", "insufficient_audio_activity", "transcriber_error", "input_error":
		return true
	}
	return false
}

// sttMessage is any Scribe server message (the fields this adapter uses).
type sttMessage struct {
	Type      string    `json:"message_type"`
	SessionID string    `json:"session_id"`
	Text      string    `json:"text"`
	Language  string    `json:"language_code"`
	Words     []sttWord `json:"words"`
	Error     string    `json:"error"`
	Message   string    `json:"message"`
}

type sttWord struct {
	Text    string   `json:"text"`
	Start   float64  `json:"start"`
	End     float64  `json:"end"`
	Type    string   `json:"type"`
	Logprob *float64 `json:"logprob"`
}

// sttChunk is the client's only message.
type sttChunk struct {
	Type         string `json:"message_type"`
	Audio        string `json:"audio_base_64"`
	Commit       bool   `json:"commit"`
	SampleRate   int    `json:"sample_rate"`
	PreviousText string `json:"previous_text,omitempty"`
}

// parseSTTMessage decodes one server message.
func parseSTTMessage(data []byte) (sttMessage, error) {
	var m sttMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return m, fmt.Errorf("elevenlabs: decoding scribe message: %w", err)
	}
	if m.Type == "" {
		return m, errors.New("elevenlabs: decoding scribe message: no message_type")
	}
	return m, nil
}

func (m *sttMessage) isError() bool { return isSTTError(m.Type) }

// serverError turns an error message into a *ServerError. The text is in
// "error"; "message" is read too, in case a version moves it.
func (m *sttMessage) serverError(key string) *ServerError {
	text := m.Error
	if text == "" {
		text = m.Message
	}
	return &ServerError{Kind: m.Type, Message: redact.Key(text, key)}
}

// span returns the words' audio span and a confidence from their log
// probabilities, zero when there are no timed words.
func (m *sttMessage) span() (start, end time.Duration, confidence float64) {
	var sum float64
	var n, probs int
	for _, w := range m.Words {
		if w.Type != "" && w.Type != "word" {
			continue
		}
		if n == 0 {
			start = secondsToDuration(w.Start)
		}
		end = secondsToDuration(w.End)
		n++
		if w.Logprob != nil {
			sum += *w.Logprob
			probs++
		}
	}
	if probs > 0 {
		confidence = math.Exp(sum / float64(probs))
	}
	return start, end, confidence
}

func secondsToDuration(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// sttEncoder turns the pipeline's PCM into the chunks' bytes.
type sttEncoder struct {
	ulaw bool
	rs   *audio.Resampler // nil when no resampling is needed
}

func newSTTEncoder(rate int, p sttPlan) (*sttEncoder, error) {
	e := &sttEncoder{ulaw: p.ulaw}
	if p.resample {
		rs, err := audio.NewResampler(rate, p.wireRate)
		if err != nil {
			return nil, fmt.Errorf("resampling %d Hz to %d Hz: %w", rate, p.wireRate, err)
		}
		e.rs = rs
	}
	return e, nil
}

// encode returns new bytes for pcm; it keeps resampler state between calls,
// so it must not be called concurrently.
func (e *sttEncoder) encode(pcm []int16) []byte {
	if e.rs != nil {
		pcm = e.rs.Process(nil, pcm)
	}
	if e.ulaw {
		return audio.EncodeUlaw(make([]byte, 0, len(pcm)), pcm)
	}
	b := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		b[2*i] = byte(v)
		b[2*i+1] = byte(uint16(v) >> 8)
	}
	return b
}

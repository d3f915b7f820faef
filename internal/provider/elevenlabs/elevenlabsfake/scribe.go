package elevenlabsfake

// The fake Scribe v2 Realtime speech-to-text service, served on STTPath by
// the same Server as the TTS fake.
//
// It checks xi-api-key (HTTP 401 on a wrong or missing key) and the query
// (HTTP 400 on a bad model_id, audio_format, commit_strategy or
// vad_silence_threshold_secs), sends session_started, then decodes each
// input_audio_chunk (PCM16 LE or G.711 µ-law, as audio_format says) and runs
// a deterministic energy detector over 10 ms windows. While it hears speech
// it sends the current scripted segment's partial transcripts, one per
// STTConfig.PartialEvery of speech; it commits the segment when the client
// sends "commit":true or, with commit_strategy=vad, after
// vad_silence_threshold_secs of quiet audio. A commit with no speech heard
// since the last one is an empty committed_transcript.

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
)

// STTPath is the Scribe realtime route, as an http.ServeMux pattern.
const STTPath = "GET /v1/speech-to-text/realtime"

// STTModel is the only model_id the fake accepts.
const STTModel = "scribe_v2_realtime"

// STTSegment is one scripted utterance.
type STTSegment struct {
	// Partials are sent in order while the segment's speech is heard, one
	// per STTConfig.PartialEvery of speech; extra ones are never sent.
	Partials []string
	// Text is the committed transcript; empty makes an empty commit.
	Text string
}

// STTFault is a failure the fake injects into every STT connection.
type STTFault uint8

// The faults, each injected right after STTConfig.FaultAfterChunks chunks
// were received.
const (
	STTFaultNone       STTFault = iota
	STTFaultMalformed           // a text message that is not JSON, then a drop
	STTFaultDisconnect          // the TCP connection drops, no close frame
	STTFaultError               // an error message (STTConfig.ErrorType), then close 1008
	STTFaultClose               // a normal close (1000) with no error message, as idle sockets get
)

// STTConfig scripts the Scribe fake.
type STTConfig struct {
	// Segments are recognised in order on every connection; once they are
	// used up, speech commits as empty transcripts.
	Segments []STTSegment
	// Threshold is the RMS above which a 10 ms window counts as speech; 0
	// means 300.
	Threshold float64
	// PartialEvery is how much speech precedes each partial; 0 means 100 ms.
	PartialEvery time.Duration
	// DefaultSilence is the VAD silence that commits when the query has no
	// vad_silence_threshold_secs; 0 means 1.5 s.
	DefaultSilence time.Duration
	// RejectStatus, when non-zero, refuses every upgrade with this status.
	RejectStatus int
	// AuthInBand makes a wrong key an auth_error message and close 1008
	// after the upgrade, instead of HTTP 401.
	AuthInBand bool
	// Fault is injected after FaultAfterChunks chunks (at least 1), on the
	// first FaultConnections connections (0 means on every one).
	Fault            STTFault
	FaultAfterChunks int
	FaultConnections int
	// ErrorType is the message_type STTFaultError sends; empty means
	// "transcriber_error".
	ErrorType string
	// MaxAudio bounds the audio each STTSession records; 0 means 60 s.
	MaxAudio time.Duration
}

// STTSession records one STT connection, for assertions.
type STTSession struct {
	ID    int
	Query url.Values // model_id, audio_format, language_code, keyterms, …
	// Chunks counts input_audio_chunk messages, KeepAlives the empty ones
	// without commit, Commits those with "commit":true.
	Chunks, KeepAlives, Commits int
	// SampleRate is the last chunk's sample_rate field.
	SampleRate int
	// PreviousText is the first chunk's previous_text.
	PreviousText string
	// Audio is the decoded audio received (up to STTConfig.MaxAudio).
	Audio []int16
	// Committed are the committed transcripts sent, in order.
	Committed []string
	// CloseStatus is the client's close code (1000 for a normal close), or
	// -1 when the connection ended without a close frame.
	CloseStatus int
	Closed      bool
}

func (s STTSession) clone() STTSession {
	s.Query = url.Values(cloneValues(s.Query))
	s.Audio = slices.Clone(s.Audio)
	s.Committed = slices.Clone(s.Committed)
	return s
}

func cloneValues(v url.Values) map[string][]string {
	out := make(map[string][]string, len(v))
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// STTSessions returns copies of the remembered STT connections, in order.
func (s *Server) STTSessions() []STTSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]STTSession, len(s.sttSessions))
	for i, rec := range s.sttSessions {
		out[i] = rec.clone()
	}
	return out
}

// sttFormat is a parsed audio_format.
type sttFormat struct {
	name string
	rate int
	ulaw bool
}

func parseSTTFormat(v string) (sttFormat, error) {
	if v == "ulaw_8000" {
		return sttFormat{name: v, rate: 8000, ulaw: true}, nil
	}
	if r, ok := strings.CutPrefix(v, "pcm_"); ok {
		switch rate, _ := strconv.Atoi(r); rate {
		case 8000, 16000, 22050, 24000, 44100, 48000:
			return sttFormat{name: v, rate: rate}, nil
		}
	}
	return sttFormat{}, fmt.Errorf("unsupported audio_format %q", v)
}

// sttParams is the validated query.
type sttParams struct {
	format     sttFormat
	vad        bool
	silence    time.Duration
	timestamps bool
	language   string
}

func (s *Server) parseSTTQuery(q url.Values) (sttParams, error) {
	var p sttParams
	if m := q.Get("model_id"); m != STTModel {
		return p, fmt.Errorf("unknown model_id %q", m)
	}
	f, err := parseSTTFormat(q.Get("audio_format"))
	if err != nil {
		return p, err
	}
	p.format = f
	switch cs := q.Get("commit_strategy"); cs {
	case "", "manual":
	case "vad":
		p.vad = true
	default:
		return p, fmt.Errorf("unknown commit_strategy %q", cs)
	}
	p.silence = s.cfg.STT.DefaultSilence
	if v := q.Get("vad_silence_threshold_secs"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0.3 || secs > 3 {
			return p, fmt.Errorf("vad_silence_threshold_secs must be 0.3 to 3.0, got %q", v)
		}
		p.silence = time.Duration(secs * float64(time.Second))
	}
	p.timestamps = q.Get("include_timestamps") == "true"
	p.language = q.Get("language_code")
	return p, nil
}

// serveSTT handles one realtime speech-to-text websocket.
func (s *Server) serveSTT(w http.ResponseWriter, r *http.Request) {
	if !s.conns.Enter() {
		http.Error(w, "fake ElevenLabs server closed", http.StatusServiceUnavailable)
		return
	}
	defer s.conns.Leave()
	cfg := s.cfg.STT
	if cfg.RejectStatus != 0 {
		writeDetail(w, cfg.RejectStatus, "fake_rejection", "The fake was told to refuse this request")
		return
	}
	keyOK := s.keyOK(r)
	if !keyOK && !cfg.AuthInBand {
		writeDetail(w, http.StatusUnauthorized, "invalid_api_key", "Invalid API key")
		return
	}
	params, err := s.parseSTTQuery(r.URL.Query())
	if err != nil {
		writeDetail(w, http.StatusBadRequest, "invalid_request", err.Error())
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		s.log.Debug("elevenlabsfake: stt upgrade failed", "err", err)
		return
	}
	defer func() { _ = ws.CloseNow() }()
	ws.SetReadLimit(1 << 20)
	ctx, release := s.conns.Bind(r.Context())
	defer release()

	rec := s.openSTT(r)
	c := &sttConn{srv: s, ws: ws, rec: rec, cfg: cfg, p: params, det: newSTTDetector(params.format.rate, cfg)}
	if !keyOK {
		_ = c.write(ctx, sttError{Type: "auth_error", Error: "Invalid API key"})
		_ = ws.Close(websocket.StatusPolicyViolation, "Invalid API key")
		s.endSTT(rec, int(websocket.StatusPolicyViolation))
		return
	}
	status := c.serve(ctx)
	s.endSTT(rec, status)
}

// keyOK checks xi-api-key against Config.APIKey.
func (s *Server) keyOK(r *http.Request) bool {
	key := s.cfg.APIKey
	return key == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("xi-api-key")), []byte(key)) == 1
}

// writeDetail refuses a request the way the API does:
// {"detail":{"status":…,"message":…}}.
func writeDetail(w http.ResponseWriter, status int, kind, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"detail": map[string]string{"status": kind, "message": msg}})
}

func (s *Server) openSTT(r *http.Request) *STTSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sttConns++
	rec := &STTSession{ID: s.sttConns, Query: r.URL.Query()}
	s.sttSessions = append(s.sttSessions, rec)
	if over := len(s.sttSessions) - s.cfg.MaxRecorded; over > 0 {
		s.sttSessions = slices.Delete(s.sttSessions, 0, over)
	}
	return rec
}

func (s *Server) endSTT(rec *STTSession, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec.Closed = true
	rec.CloseStatus = status
}

// Wire messages.
type (
	sttClientChunk struct {
		Type         string  `json:"message_type"`
		Audio        *string `json:"audio_base_64"`
		Commit       bool    `json:"commit"`
		SampleRate   int     `json:"sample_rate"`
		PreviousText *string `json:"previous_text"`
	}
	sttError struct {
		Type  string `json:"message_type"`
		Error string `json:"error"`
	}
	sttTranscript struct {
		Type     string    `json:"message_type"`
		Text     string    `json:"text"`
		Language string    `json:"language_code,omitempty"`
		Words    []sttWord `json:"words,omitempty"`
	}
	sttWord struct {
		Text    string  `json:"text"`
		Start   float64 `json:"start"`
		End     float64 `json:"end"`
		Type    string  `json:"type"`
		Logprob float64 `json:"logprob"`
	}
)

// sttConn is one STT connection; only its handler goroutine touches it.
type sttConn struct {
	srv *Server
	ws  *websocket.Conn
	rec *STTSession
	cfg STTConfig
	p   sttParams
	det *sttDetector

	chunks  int
	segment int // index of the next scripted segment
}

// serve runs the session and returns the client's close status, -1 when
// there was none.
func (c *sttConn) serve(ctx context.Context) int {
	started := map[string]any{
		"message_type": "session_started",
		"session_id":   fmt.Sprintf("fake-session-%d", c.rec.ID),
		"config": map[string]any{
			"sample_rate": c.p.format.rate, "audio_format": c.p.format.name, "model_id": STTModel,
			"language_code": c.p.language, "commit_strategy": map[bool]string{true: "vad", false: "manual"}[c.p.vad],
			"vad_silence_threshold_secs": c.p.silence.Seconds(), "include_timestamps": c.p.timestamps,
		},
	}
	if err := c.write(ctx, started); err != nil {
		return -1
	}
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return int(ce.Code)
			}
			return -1
		}
		done, err := c.handle(ctx, data)
		if err != nil {
			_ = c.write(ctx, sttError{Type: "input_error", Error: err.Error()})
			_ = c.ws.Close(websocket.StatusPolicyViolation, "input error")
			return -1
		}
		if done {
			return -1
		}
	}
}

// handle processes one chunk; done reports an injected fault that ended
// the connection.
func (c *sttConn) handle(ctx context.Context, data []byte) (done bool, err error) {
	var m sttClientChunk
	if err := json.Unmarshal(data, &m); err != nil {
		return false, errors.New("invalid JSON message")
	}
	if m.Type != "input_audio_chunk" || m.Audio == nil {
		return false, fmt.Errorf("unexpected message_type %q or no audio_base_64", m.Type)
	}
	if m.SampleRate != 0 && m.SampleRate != c.p.format.rate {
		return false, fmt.Errorf("sample_rate %d does not match audio_format %s", m.SampleRate, c.p.format.name)
	}
	c.chunks++
	if m.PreviousText != nil && c.chunks > 1 {
		return false, errors.New("previous_text is only allowed in the first chunk")
	}
	pcm, err := c.decode(*m.Audio)
	if err != nil {
		return false, err
	}
	c.record(m, pcm)
	if c.faulty() && c.chunks >= max(c.cfg.FaultAfterChunks, 1) {
		c.inject(ctx)
		return true, nil
	}
	for _, ev := range c.det.feed(pcm, c.p.vad, c.p.silence) {
		if err := c.emit(ctx, ev); err != nil {
			return false, err
		}
	}
	if m.Commit {
		heard, start, end := c.det.take()
		return false, c.commit(ctx, heard, start, end)
	}
	return false, nil
}

// faulty says whether this connection gets the configured fault.
func (c *sttConn) faulty() bool {
	n := c.cfg.FaultConnections
	return c.cfg.Fault != STTFaultNone && (n <= 0 || c.rec.ID <= n)
}

func (c *sttConn) decode(b64 string) ([]int16, error) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fmt.Errorf("audio_base_64 is not base64: %w", err)
	}
	if c.p.format.ulaw {
		return audio.DecodeUlaw(nil, raw), nil
	}
	if len(raw)%2 != 0 {
		return nil, errors.New("PCM chunk has an odd number of bytes")
	}
	pcm := make([]int16, len(raw)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(raw[2*i]) | uint16(raw[2*i+1])<<8)
	}
	return pcm, nil
}

func (c *sttConn) record(m sttClientChunk, pcm []int16) {
	limit := int(c.maxAudio().Seconds() * float64(c.p.format.rate))
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	r := c.rec
	r.Chunks++
	r.SampleRate = m.SampleRate
	if m.PreviousText != nil {
		r.PreviousText = *m.PreviousText
	}
	switch {
	case m.Commit:
		r.Commits++
	case len(pcm) == 0:
		r.KeepAlives++
	}
	if room := limit - len(r.Audio); room > 0 {
		r.Audio = append(r.Audio, pcm[:min(room, len(pcm))]...)
	}
}

func (c *sttConn) maxAudio() time.Duration {
	if c.cfg.MaxAudio > 0 {
		return c.cfg.MaxAudio
	}
	return time.Minute
}

// inject performs the configured fault.
func (c *sttConn) inject(ctx context.Context) {
	switch c.cfg.Fault {
	case STTFaultMalformed:
		_ = c.ws.Write(ctx, websocket.MessageText, []byte(`{"message_type":"partial_transcript","text":`))
	case STTFaultError:
		kind := c.cfg.ErrorType
		if kind == "" {
			kind = "transcriber_error"
		}
		_ = c.write(ctx, sttError{Type: kind, Error: "fake " + kind})
		_ = c.ws.Close(websocket.StatusPolicyViolation, kind)
		return
	case STTFaultClose:
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
		return
	}
	_ = c.ws.CloseNow()
}

// emit sends what the detector observed.
func (c *sttConn) emit(ctx context.Context, ev sttEvent) error {
	if ev.commit {
		return c.commit(ctx, true, ev.start, ev.end)
	}
	seg := c.current()
	if ev.partial >= len(seg.Partials) {
		return nil
	}
	return c.write(ctx, sttTranscript{Type: "partial_transcript", Text: seg.Partials[ev.partial]})
}

func (c *sttConn) current() STTSegment {
	if c.segment < len(c.cfg.Segments) {
		return c.cfg.Segments[c.segment]
	}
	return STTSegment{}
}

// commit sends the committed transcript of the speech heard since the last
// commit (the next scripted segment), or an empty one when none was heard.
func (c *sttConn) commit(ctx context.Context, heard bool, start, end time.Duration) error {
	text := ""
	if heard {
		text = c.current().Text
		c.segment++
	}
	c.srv.mu.Lock()
	c.rec.Committed = append(c.rec.Committed, text)
	c.srv.mu.Unlock()
	msg := sttTranscript{Type: "committed_transcript", Text: text, Language: c.p.language}
	if err := c.write(ctx, msg); err != nil {
		return err
	}
	if !c.p.timestamps {
		return nil
	}
	msg.Type = "committed_transcript_with_timestamps"
	msg.Words = spreadWords(text, start, end)
	return c.write(ctx, msg)
}

// spreadWords times text's words evenly over [start, end].
func spreadWords(text string, start, end time.Duration) []sttWord {
	words := strings.Fields(text)
	if len(words) == 0 {
		return nil
	}
	step := (end - start) / time.Duration(len(words))
	out := make([]sttWord, len(words))
	for i, w := range words {
		b := start + time.Duration(i)*step
		out[i] = sttWord{Text: w, Start: b.Seconds(), End: (b + step).Seconds(), Type: "word", Logprob: -0.1}
	}
	return out
}

func (c *sttConn) write(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// sttEvent is one detector observation: the index of a partial to send, or
// a VAD commit.
type sttEvent struct {
	partial    int
	commit     bool
	start, end time.Duration // the committed speech's span
}

// sttDetector is a deterministic energy detector over 10 ms windows; times
// are counted in samples received.
type sttDetector struct {
	rate, window int
	threshold    float64
	partialEvery int // samples of speech per partial

	sum    float64 // current window's sum of squares
	filled int
	pos    int // samples consumed

	heard    bool // speech since the last commit
	start    int  // first loud sample of the segment
	lastLoud int  // end of the segment's last loud window
	speech   int  // loud samples in the segment
	partials int  // partials triggered in the segment
	quiet    int  // quiet samples since the last loud window
}

func newSTTDetector(rate int, cfg STTConfig) *sttDetector {
	thr := cfg.Threshold
	if thr <= 0 {
		thr = 300
	}
	every := cfg.PartialEvery
	if every <= 0 {
		every = 100 * time.Millisecond
	}
	return &sttDetector{
		rate: rate, window: max(rate/100, 1), threshold: thr,
		partialEvery: max(int(every.Seconds()*float64(rate)), 1),
	}
}

// feed consumes pcm and returns what it observed.
func (d *sttDetector) feed(pcm []int16, vad bool, silence time.Duration) []sttEvent {
	var evs []sttEvent
	for _, v := range pcm {
		d.sum += float64(v) * float64(v)
		d.filled++
		d.pos++
		if d.filled < d.window {
			continue
		}
		loud := math.Sqrt(d.sum/float64(d.filled)) > d.threshold
		d.sum, d.filled = 0, 0
		evs = append(evs, d.window1(loud, vad, silence)...)
	}
	return evs
}

// window1 judges one complete window.
func (d *sttDetector) window1(loud, vad bool, silence time.Duration) []sttEvent {
	if loud {
		if !d.heard {
			d.heard, d.start = true, d.pos-d.window
		}
		d.lastLoud, d.quiet = d.pos, 0
		d.speech += d.window
		if d.speech >= (d.partials+1)*d.partialEvery {
			d.partials++
			return []sttEvent{{partial: d.partials - 1}}
		}
		return nil
	}
	if !d.heard {
		return nil
	}
	d.quiet += d.window
	if vad && d.quiet >= int(silence.Seconds()*float64(d.rate)) {
		_, start, end := d.take()
		return []sttEvent{{commit: true, start: start, end: end}}
	}
	return nil
}

// take ends the segment: whether speech was heard and its span.
func (d *sttDetector) take() (heard bool, start, end time.Duration) {
	heard = d.heard
	toDur := func(n int) time.Duration { return time.Duration(n) * time.Second / time.Duration(d.rate) }
	start, end = toDur(d.start), toDur(d.lastLoud)
	d.heard, d.speech, d.partials, d.quiet = false, 0, 0, 0
	return heard, start, end
}

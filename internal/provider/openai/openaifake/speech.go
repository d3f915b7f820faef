package openaifake

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/provider/fakespeech"
)

// SpeechRate is the sample rate of response_format "pcm".
const SpeechRate = 24000

// maxSpeechInput is the longest input and instructions, in characters.
const maxSpeechInput = 4096

// Speech scripts the answer to one speech request.
type Speech struct {
	// Status, when neither 0 nor 200, makes the answer an error response
	// with that status and an OpenAI error body.
	Status int
	// RetryAfter, with an error Status, is sent as Retry-After and
	// retry-after-ms.
	RetryAfter time.Duration
	// FirstByteDelay is the wait before the response headers and the first
	// audio; ChunkDelay the wait before each further piece.
	FirstByteDelay, ChunkDelay time.Duration
	// ChunkBytes is how many bytes of PCM one write carries; 0 means 4800
	// (100 ms). An odd number splits samples between writes.
	ChunkBytes int
	// CutAfter, when > 0, drops the connection after that many writes of
	// audio, before the end of the body.
	CutAfter int
	// SSE answers with server-sent events (stream_format "sse") whatever
	// the request asked for, as some compatible servers do the opposite.
	SSE bool
	// Malformed answers 200 with a body the client cannot read: an event
	// that is not JSON when the answer is SSE, else an application/json
	// body that is not JSON.
	Malformed bool
}

// SpeechRequest is a speech request body as the server understood it.
type SpeechRequest struct {
	Model          string
	Input          string
	Voice          string
	Instructions   string
	ResponseFormat string
	StreamFormat   string
	Speed          *float64
}

// SpeechModels returns the models the fake accepts, as documented by OpenAI.
func SpeechModels() []string {
	return []string{"gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "tts-1", "tts-1-hd"}
}

// SpeechVoices returns the voices the fake accepts, as documented by OpenAI.
func SpeechVoices() []string {
	return []string{"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
}

// SpeechRequests returns the speech requests received so far: those that
// were authorised and whose body was JSON, including ones then refused.
func (s *Server) SpeechRequests() []SpeechRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.speechRequests)
}

// DefaultSynth is the audio the fake speaks when Config.Synth is nil: a
// 330 Hz tone of amplitude 6000 lasting 60 ms per character (at least
// 200 ms), faded in and out over 20 ms.
func DefaultSynth(text string, rate int) []int16 { return fakespeech.Tone(text, rate, 330) }

// serveSpeech answers one POST /v1/audio/speech.
func (s *Server) serveSpeech(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "invalid_request_error", "", "method_not_allowed",
			"Only POST is supported on /audio/speech.", 0)
		return
	}
	if !s.authorised(r) {
		writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "invalid_api_key",
			"Incorrect API key provided.", 0)
		return
	}
	body := http.MaxBytesReader(w, r.Body, maxBody)
	req, problem, param := decodeSpeech(body)
	_, _ = io.Copy(io.Discard, body)
	if req != nil {
		s.mu.Lock()
		s.speechRequests = append(s.speechRequests, *req)
		s.mu.Unlock()
	}
	if problem != "" {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "openaifake: bad speech request", slog.String("param", param))
		writeError(w, http.StatusBadRequest, "invalid_request_error", param, "", problem, 0)
		return
	}
	answer := s.speech(*req)
	s.log.LogAttrs(r.Context(), slog.LevelDebug, "openaifake: speech",
		slog.String("model", req.Model), slog.String("voice", req.Voice),
		slog.Int("chars", utf8.RuneCountInString(req.Input)), slog.Int("status", max(answer.Status, http.StatusOK)))
	if answer.Status != 0 && answer.Status != http.StatusOK {
		typ, code := errorKind(answer.Status)
		writeError(w, answer.Status, typ, "", code,
			fmt.Sprintf("The fake server was scripted to fail with status %d.", answer.Status), answer.RetryAfter)
		return
	}
	if err := sleep(r.Context(), answer.FirstByteDelay); err != nil {
		return
	}
	synth := s.cfg.Synth
	if synth == nil {
		synth = DefaultSynth
	}
	out := &speechWriter{w: w, rc: http.NewResponseController(w), answer: &answer, r: r}
	if err := out.write(pcmBytes(synth(req.Input, SpeechRate)), answer.SSE || req.StreamFormat == "sse"); errors.Is(err, errCut) {
		panic(http.ErrAbortHandler) // the client sees the body break off
	}
}

// speech picks the answer to req.
func (s *Server) speech(req SpeechRequest) Speech {
	if s.cfg.Speak != nil {
		return s.cfg.Speak(req)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cfg.Speeches) == 0 {
		return Speech{}
	}
	a := s.cfg.Speeches[s.nextSpeech%len(s.cfg.Speeches)]
	s.nextSpeech++
	return a
}

// wireSpeech is the request body.
type wireSpeech struct {
	Model          string   `json:"model"`
	Input          *string  `json:"input"`
	Voice          string   `json:"voice"`
	Instructions   string   `json:"instructions"`
	ResponseFormat string   `json:"response_format"`
	StreamFormat   string   `json:"stream_format"`
	Speed          *float64 `json:"speed"`
}

// decodeSpeech reads a speech request body. It returns the request when the
// body was JSON, and a problem (with the offending parameter) when it is
// not acceptable to OpenAI or not speakable by the fake.
func decodeSpeech(body io.Reader) (*SpeechRequest, string, string) {
	var ws wireSpeech
	if err := json.NewDecoder(body).Decode(&ws); err != nil {
		return nil, "We could not parse the JSON body of your request: " + err.Error(), ""
	}
	req := &SpeechRequest{Model: ws.Model, Voice: ws.Voice, Instructions: ws.Instructions,
		ResponseFormat: ws.ResponseFormat, StreamFormat: ws.StreamFormat, Speed: ws.Speed}
	if ws.Input != nil {
		req.Input = *ws.Input
	}
	legacy := strings.HasPrefix(req.Model, "tts-1")
	models, voices := SpeechModels(), SpeechVoices()
	switch {
	case !slices.Contains(models, req.Model):
		return req, fmt.Sprintf("Invalid model %q: expected one of %s.", req.Model, strings.Join(models, ", ")), "model"
	case ws.Input == nil:
		return req, "Missing required parameter: 'input'.", "input"
	case utf8.RuneCountInString(req.Input) > maxSpeechInput:
		return req, fmt.Sprintf("'input' is longer than %d characters.", maxSpeechInput), "input"
	case !slices.Contains(voices, req.Voice):
		return req, fmt.Sprintf("Invalid voice %q: expected one of %s.", req.Voice, strings.Join(voices, ", ")), "voice"
	case req.Instructions != "" && legacy:
		return req, "Instructions are not supported by " + req.Model + ".", "instructions"
	case utf8.RuneCountInString(req.Instructions) > maxSpeechInput:
		return req, fmt.Sprintf("'instructions' is longer than %d characters.", maxSpeechInput), "instructions"
	case req.ResponseFormat != "pcm":
		return req, fmt.Sprintf("The fake server only speaks response_format \"pcm\" (got %q).", req.ResponseFormat), "response_format"
	case req.Speed != nil && (*req.Speed < 0.25 || *req.Speed > 4):
		return req, "'speed' must be from 0.25 to 4.0.", "speed"
	case req.StreamFormat != "" && req.StreamFormat != "audio" && req.StreamFormat != "sse":
		return req, "'stream_format' must be \"audio\" or \"sse\".", "stream_format"
	case req.StreamFormat == "sse" && legacy:
		return req, "stream_format \"sse\" is not supported by " + req.Model + ".", "stream_format"
	}
	return req, "", ""
}

// pcmBytes is pcm as 16-bit little-endian bytes.
func pcmBytes(pcm []int16) []byte {
	out := make([]byte, 2*len(pcm))
	for i, v := range pcm {
		out[2*i], out[2*i+1] = byte(uint16(v)), byte(uint16(v)>>8)
	}
	return out
}

// speechWriter writes one speech response.
type speechWriter struct {
	w      http.ResponseWriter
	rc     *http.ResponseController
	r      *http.Request
	answer *Speech
	sent   int
}

// write sends audio as a raw chunked body or as events.
func (o *speechWriter) write(audio []byte, sse bool) error {
	h := o.w.Header()
	switch {
	case o.answer.Malformed && !sse:
		h.Set("Content-Type", "application/json")
		_, _ = io.WriteString(o.w, `{"object":"audio.speech","data":`)
		return nil
	case sse:
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
	default:
		h.Set("Content-Type", "audio/pcm")
	}
	o.w.WriteHeader(http.StatusOK)
	if err := o.flush(); err != nil {
		return err
	}
	if o.answer.Malformed {
		_, _ = io.WriteString(o.w, "data: {\"type\":\"speech.audio.delta\",\"audio\":\n\n")
		return o.flush()
	}
	size := o.answer.ChunkBytes
	if size <= 0 {
		size = SpeechRate / 10 * 2
	}
	for len(audio) > 0 {
		n := min(size, len(audio))
		if err := o.piece(audio[:n], sse); err != nil {
			return err
		}
		audio = audio[n:]
	}
	if o.answer.CutAfter > 0 {
		return errCut
	}
	if sse {
		_, err := io.WriteString(o.w, `data: {"type":"speech.audio.done","usage":{"input_tokens":1,"output_tokens":1,"total_tokens":2}}`+"\n\n")
		if err != nil {
			return err
		}
	}
	return o.flush()
}

// piece writes one piece of audio after ChunkDelay (unless it is the first)
// and reports errCut when the scripted number of pieces has been sent.
func (o *speechWriter) piece(b []byte, sse bool) error {
	if o.sent > 0 {
		if err := sleep(o.r.Context(), o.answer.ChunkDelay); err != nil {
			return err
		}
	}
	var err error
	if sse {
		_, err = fmt.Fprintf(o.w, "data: {\"type\":\"speech.audio.delta\",\"audio\":%q}\n\n", base64.StdEncoding.EncodeToString(b))
	} else {
		_, err = o.w.Write(b)
	}
	if err != nil {
		return fmt.Errorf("write audio: %w", err)
	}
	if err := o.flush(); err != nil {
		return err
	}
	o.sent++
	if o.answer.CutAfter > 0 && o.sent >= o.answer.CutAfter {
		return errCut
	}
	return nil
}

func (o *speechWriter) flush() error {
	if err := o.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

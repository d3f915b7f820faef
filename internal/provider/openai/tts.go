package openai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/tts"
)

// Text-to-speech (POST {BaseURL}/audio/speech). The stream asks for
// response_format "pcm": headerless 24 kHz signed 16-bit little-endian mono,
// sent as a chunked body while it is generated. It is read as it arrives and
// resampled to tts.Config.SampleRate.
const (
	// DefaultTTSModel is the model used when tts.Config.Model is empty.
	DefaultTTSModel = "gpt-4o-mini-tts"
	// DefaultVoice is the voice used when tts.Config.Voice is empty: one
	// that every model has.
	DefaultVoice = "alloy"
	// PCMRate is the sample rate of response_format "pcm".
	PCMRate = 24000
	// MaxSpeechInput is the longest input one request may carry, in
	// characters.
	MaxSpeechInput = 4096
	// MinSpeed and MaxSpeed bound tts.Config.Speed.
	MinSpeed, MaxSpeed = 0.25, 4.0

	// speechReadSize is the most body bytes read at once: 100 ms at 24 kHz.
	speechReadSize = PCMRate / 10 * 2
	// speechChunkBuffer is how many chunks may wait for Recv.
	speechChunkBuffer = 32
)

// TTSModels returns the speech models OpenAI documents.
func TTSModels() []string {
	return []string{"gpt-4o-mini-tts", "gpt-4o-mini-tts-2025-12-15", "tts-1", "tts-1-hd"}
}

// Voices returns the built-in voices OpenAI documents. The list changes
// often, and compatible servers have their own, so Open does not check
// tts.Config.Voice against it.
func Voices() []string {
	return []string{"alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse"}
}

// TTS is a tts.Provider for OpenAI's speech endpoint and compatible
// servers. It is safe for concurrent use.
type TTS struct {
	endpoint string
	client   *http.Client
	log      *slog.Logger
	headers  http.Header
}

var _ tts.Provider = (*TTS)(nil)

// NewTTS returns a TTS configured by cfg: BaseURL is the API root (the part
// before /audio/speech), HTTPClient, Logger and Headers as for NewChat;
// MaxTokensField is not used.
func NewTTS(cfg Config) *TTS {
	base, client, log, headers := cfg.defaults()
	return &TTS{endpoint: base + "/audio/speech", client: client, log: log, headers: headers}
}

// speechRequest is the request body.
type speechRequest struct {
	Model          string   `json:"model"`
	Input          string   `json:"input"`
	Voice          string   `json:"voice"`
	Instructions   string   `json:"instructions,omitempty"`
	ResponseFormat string   `json:"response_format"`
	Speed          *float64 `json:"speed,omitempty"`
}

// Open starts a synthesis stream for cfg. No request is sent until text
// arrives, so a refused key surfaces from Recv (and from later Sends) as an
// *APIError with StatusCode 401.
//
// Text sent with Send is spoken by one request at a time, in order: when a
// request ends, all the text queued meanwhile goes out as the next one (up
// to MaxSpeechInput characters). The first sentence therefore starts at
// once, and the following ones are spoken together with natural prosody
// and few requests. ctx bounds the whole stream.
//
// Options: "instructions" (a style prompt; not sent to tts-1 and tts-1-hd,
// which do not take one) and "speed" (cfg.Speed wins when non-zero).
// tts.Config.Language is not sent: the service reads the language from the
// text.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	body, err := t.speechTemplate(cfg)
	if err != nil {
		return nil, fmt.Errorf("openai: opening speech stream: %w", err)
	}
	rs, err := audio.NewResampler(PCMRate, cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("openai: opening speech stream: %w", err)
	}
	sctx, cancel := context.WithCancel(ctx)
	s := &speechStream{
		tts:       t,
		body:      body,
		key:       cfg.APIKey,
		log:       t.log.With("model", body.Model, "voice", body.Voice),
		parent:    ctx,
		ctx:       sctx,
		cancel:    cancel,
		resampler: rs,
		wake:      make(chan struct{}, 1),
		chunks:    make(chan tts.Chunk, speechChunkBuffer),
		over:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	go s.run()
	return s, nil
}

// speechTemplate is the request body for cfg without its input.
func (t *TTS) speechTemplate(cfg tts.Config) (speechRequest, error) {
	if cfg.SampleRate <= 0 {
		return speechRequest{}, fmt.Errorf("sample rate %d Hz: must be positive", cfg.SampleRate)
	}
	r := speechRequest{Model: cfg.Model, Voice: cfg.Voice, ResponseFormat: "pcm"}
	if r.Model == "" {
		r.Model = DefaultTTSModel
	}
	if r.Voice == "" {
		r.Voice = DefaultVoice
	}
	speed, err := speedOption(cfg)
	if err != nil {
		return speechRequest{}, err
	}
	if speed != 0 {
		r.Speed = &speed
	}
	if v, ok := cfg.Options["instructions"]; ok && v != nil {
		s, ok := v.(string)
		if !ok {
			return speechRequest{}, fmt.Errorf("option instructions: want a string, got %T", v)
		}
		if utf8.RuneCountInString(s) > MaxSpeechInput {
			return speechRequest{}, fmt.Errorf("option instructions: longer than %d characters", MaxSpeechInput)
		}
		if takesInstructions(r.Model) {
			r.Instructions = s
		} else if s != "" {
			t.log.Debug("openai: instructions not sent: the model does not take them", "model", r.Model)
		}
	}
	return r, nil
}

// speedOption is cfg.Speed, else Options["speed"], else 0 (the default).
func speedOption(cfg tts.Config) (float64, error) {
	speed := cfg.Speed
	if v, ok := cfg.Options["speed"]; ok && v != nil && speed == 0 {
		f, ok := v.(float64)
		if n, isNum := v.(json.Number); isNum {
			var err error
			f, err = n.Float64()
			ok = err == nil
		}
		if !ok {
			return 0, fmt.Errorf("option speed: want a number, got %T", v)
		}
		speed = f
	}
	if speed != 0 && (speed < MinSpeed || speed > MaxSpeed) {
		return 0, fmt.Errorf("speed %g: must be from %g to %g", speed, MinSpeed, MaxSpeed)
	}
	return speed, nil
}

// takesInstructions reports whether model accepts a style prompt: the
// tts-1 family does not.
func takesInstructions(model string) bool {
	return model != "tts-1" && model != "tts-1-hd" && !strings.HasPrefix(model, "tts-1-")
}

// speechStream is one assistant reply being spoken.
//
// Send and Flush are called from the pipeline's text side while Recv runs
// on its audio side; Close may be called from any goroutine at any time.
//
// Goroutines: run, started by Open, is the only one. It sends the requests
// one after the other and ends after the last audio, on a failure, on Close
// or when ctx is cancelled; Close waits for it.
type speechStream struct {
	tts    *TTS
	body   speechRequest // without Input
	key    string        // sent as the bearer token; redacted from errors
	log    *slog.Logger
	parent context.Context // Open's ctx, to report its cancellation
	ctx    context.Context // cancelled by Close and when run ends
	cancel context.CancelFunc

	resampler *audio.Resampler    // used by run only
	pcm       audio.PCM16Splitter // used by run only

	mu      sync.Mutex
	queue   []string // text not yet requested, each ≤ MaxSpeechInput characters
	flushed bool
	closed  bool
	wake    chan struct{} // signalled when queue or flushed changes

	// chunks carries audio to Recv; run closes it, and over, after
	// setting err.
	chunks    chan tts.Chunk
	err       error         // why the audio ended: io.EOF when it ended well
	over      chan struct{} // closed when err is set
	done      chan struct{} // closed when run has returned
	closeOnce sync.Once
}

// Send queues text to speak. Blank text is ignored; text longer than
// MaxSpeechInput is split between words. Sending after Flush is an error,
// and after a failure returns the failure.
func (s *speechStream) Send(text string) error {
	text = strings.TrimSpace(text)
	if text == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.flushed:
		return errors.New("openai: Send after Flush")
	}
	if err := s.ended(); err != nil {
		return err
	}
	s.queue = append(s.queue, splitInput(text, MaxSpeechInput)...)
	s.signal()
	return nil
}

// Flush says no more text follows: Recv returns io.EOF after the audio of
// everything sent. Flushing twice is a no-op.
func (s *speechStream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if err := s.ended(); err != nil && !s.flushed {
		return err
	}
	s.flushed = true
	s.signal()
	return nil
}

// Recv returns the next chunk of audio at the configured rate, io.EOF after
// the last one, ErrClosed after Close, or what went wrong (an *APIError when
// the service refused a request).
func (s *speechStream) Recv() (tts.Chunk, error) {
	if s.isClosed() {
		return tts.Chunk{}, ErrClosed
	}
	c, ok := <-s.chunks
	if !ok {
		if s.isClosed() {
			return tts.Chunk{}, ErrClosed
		}
		return tts.Chunk{}, s.err
	}
	return c, nil
}

// Close abandons the stream at once: the request in flight is aborted, Recv
// returns ErrClosed, and Close returns once the goroutine has ended.
func (s *speechStream) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		s.cancel()
		<-s.done
	})
	return nil
}

func (s *speechStream) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// signal wakes run; s.mu is held.
func (s *speechStream) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// ended returns run's error when the audio has ended: the failure, or a
// complaint when it ended well.
func (s *speechStream) ended() error {
	select {
	case <-s.over:
		if s.err == nil || errors.Is(s.err, io.EOF) {
			return errors.New("openai: the speech stream has ended")
		}
		return s.err
	default:
		return nil
	}
}

// run speaks the queued text batch by batch until Flush, then delivers the
// resampler's tail and ends the audio.
func (s *speechStream) run() {
	defer close(s.done)
	err := s.speakAll()
	s.err = err
	close(s.over)
	close(s.chunks)
	if !errors.Is(err, io.EOF) && !errors.Is(err, ErrClosed) {
		s.log.Debug("openai: speech stream failed") // the error may quote the server: not logged
	}
	s.cancel()
}

// speakAll requests batches until the end of input.
func (s *speechStream) speakAll() error {
	for {
		batch, last, err := s.nextBatch()
		if err != nil {
			return err
		}
		if batch != "" {
			if err := s.speak(batch); err != nil {
				return err
			}
		}
		if last {
			if tail := s.resampler.Flush(nil); len(tail) > 0 {
				if err := s.deliver(tail); err != nil {
					return err
				}
			}
			return io.EOF
		}
	}
}

// nextBatch waits for text and takes as much of the queue as one request
// may carry. last reports that input has ended and nothing remains after
// batch.
func (s *speechStream) nextBatch() (batch string, last bool, err error) {
	for {
		s.mu.Lock()
		if len(s.queue) > 0 {
			var n int
			batch, n = joinBatch(s.queue, MaxSpeechInput)
			s.queue = s.queue[n:]
			last = s.flushed && len(s.queue) == 0
			s.mu.Unlock()
			return batch, last, nil
		}
		if s.flushed {
			s.mu.Unlock()
			return "", true, nil
		}
		s.mu.Unlock()
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			return "", false, s.ctxError()
		}
	}
}

// joinBatch joins the leading texts that fit in limit characters, separated
// by spaces, and says how many it took (at least one).
func joinBatch(queue []string, limit int) (string, int) {
	var b strings.Builder
	size, n := 0, 0
	for _, text := range queue {
		l := utf8.RuneCountInString(text)
		if n > 0 && size+1+l > limit {
			break
		}
		if n > 0 {
			b.WriteByte(' ')
			size++
		}
		b.WriteString(text)
		size += l
		n++
	}
	return b.String(), n
}

// splitInput cuts text into pieces of at most limit characters, between
// words where it can.
func splitInput(text string, limit int) []string {
	var out []string
	for utf8.RuneCountInString(text) > limit {
		end := runeOffset(text, limit)
		cut := strings.LastIndexAny(text[:end+1], " \t\n")
		if cut <= 0 {
			cut = end // one very long word
		}
		out = append(out, strings.TrimSpace(text[:cut]))
		text = strings.TrimSpace(text[cut:])
	}
	if text != "" {
		out = append(out, text)
	}
	return out
}

// runeOffset is the byte offset of the n-th character of s (len(s) if s is
// shorter).
func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}

// ctxError explains a cancelled stream context: Close or Open's ctx.
func (s *speechStream) ctxError() error {
	if err := s.parent.Err(); err != nil && !s.isClosed() {
		return fmt.Errorf("openai: speech stream abandoned: %w", context.Cause(s.parent))
	}
	return ErrClosed
}

// speak sends one request for input and delivers its audio as it arrives.
func (s *speechStream) speak(input string) error {
	resp, err := s.post(input)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	start := time.Now()
	samples, err := s.readAudio(resp)
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "openai: speech request done",
		slog.Int("chars", utf8.RuneCountInString(input)), slog.Int("samples_24k", samples),
		slog.Duration("elapsed", time.Since(start)), slog.Bool("failed", err != nil))
	return err
}

// post sends the request for input and returns the response once it is a
// success; a refusal is an *APIError.
func (s *speechStream) post(input string) (*http.Response, error) {
	body := s.body
	body.Input = input
	b, err := json.Marshal(&body)
	if err != nil {
		return nil, fmt.Errorf("openai: encode speech request: %w", err)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, s.tts.endpoint, bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("openai: build speech request: %w", err)
	}
	req.Header = s.tts.headers.Clone()
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := s.tts.client.Do(req)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, s.ctxError()
		}
		return nil, fmt.Errorf("openai: send speech request: %s", redact.Key(err.Error(), s.key))
	}
	s.log.LogAttrs(s.ctx, slog.LevelDebug, "openai: speech response",
		slog.Int("status", resp.StatusCode), slog.Duration("ttfb", time.Since(start)))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		apiErr := readAPIError(resp, s.key)
		_ = resp.Body.Close()
		return nil, fmt.Errorf("openai: text-to-speech refused%s: %w", keyHint(apiErr.StatusCode), apiErr)
	}
	return resp, nil
}

// keyHint points at the API key when the service refused it.
func keyHint(status int) string {
	switch status {
	case http.StatusUnauthorized:
		return " (check the OpenAI API key)"
	case http.StatusForbidden:
		return " (the OpenAI API key may not use this model or voice)"
	}
	return ""
}

// deliver hands audio at the configured rate to Recv.
func (s *speechStream) deliver(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	select {
	case s.chunks <- tts.Chunk{PCM: pcm}:
		return nil
	case <-s.ctx.Done():
		return s.ctxError()
	}
}

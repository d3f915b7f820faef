package google

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/tts"
)

// Gemini TTS speaks 24 kHz 16-bit PCM, whatever is asked (providers-2.md §6a).
const geminiRate = 24000

// DefaultGeminiVoice is the catalog's default Gemini voice.
const DefaultGeminiVoice = "Kore"

// TTS is Google text-to-speech as a tts.Provider: Gemini TTS
// (streamGenerateContent with the AUDIO modality; an AI Studio key to the
// Gemini API, a service-account key to Vertex AI, as Chat does) and, for
// the model chirp-3-hd, Cloud Text-to-Speech's Chirp 3 HD voices. Text is sent whole, one
// request per batch of text queued while the previous one spoke; the audio
// streams back as server-sent events and is resampled to the call's rate.
type TTS struct{ chat *Chat }

// NewTTS returns Gemini TTS with the services of cfg (its StudioURL may be
// the Gemini API's OpenAI-compatible root: "/openai" is dropped).
func NewTTS(cfg Config) *TTS { return NewChat(cfg).Speech() }

// Speech is Gemini TTS sharing c's services and access tokens, so a
// service account is exchanged once for both.
func (c *Chat) Speech() *TTS { return &TTS{chat: c} }

var _ tts.Provider = (*TTS)(nil)

// Open starts a stream; nothing is sent before the first text.
func (t *TTS) Open(ctx context.Context, cfg tts.Config) (tts.Stream, error) {
	key, err := ParseKey(cfg.APIKey)
	if err != nil {
		return nil, err
	}
	if cfg.SampleRate <= 0 {
		return nil, fmt.Errorf("google: text-to-speech needs a sample rate")
	}
	if cfg.Model == "" {
		return nil, fmt.Errorf("google: text-to-speech needs a model")
	}
	if cfg.Voice == "" {
		cfg.Voice = DefaultGeminiVoice
	}
	rs, err := audio.NewResampler(geminiRate, cfg.SampleRate)
	if err != nil {
		return nil, fmt.Errorf("google: text-to-speech at %d Hz: %w", cfg.SampleRate, err)
	}
	instructions, _ := cfg.Options["instructions"].(string)
	ctx, cancel := context.WithCancel(ctx)
	s := &ttsStream{t: t, key: key, cfg: cfg, instructions: instructions, ctx: ctx, cancel: cancel,
		wake: make(chan struct{}, 1), out: make(chan tts.Chunk, 64), done: make(chan struct{}), resample: rs}
	go s.run()
	return s, nil
}

// ttsStream speaks one reply.
type ttsStream struct {
	t            *TTS
	key          Key
	cfg          tts.Config
	instructions string
	ctx          context.Context
	cancel       context.CancelFunc
	resample     *audio.Resampler

	mu      sync.Mutex
	pending []string
	flushed bool
	err     error // why the stream failed

	wake chan struct{}
	out  chan tts.Chunk
	done chan struct{} // run has returned
}

func (s *ttsStream) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Send queues text.
func (s *ttsStream) Send(text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.err != nil:
		return s.err
	case s.ctx.Err() != nil:
		return fmt.Errorf("google: text-to-speech stream closed: %w", context.Cause(s.ctx))
	case s.flushed:
		return errors.New("google: text-to-speech Send after Flush")
	}
	if strings.TrimSpace(text) != "" {
		s.pending = append(s.pending, text)
		s.poke()
	}
	return nil
}

// Flush says no more text follows.
func (s *ttsStream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flushed = true
	s.poke()
	return s.err
}

// Recv returns the next audio, io.EOF after the last.
func (s *ttsStream) Recv() (tts.Chunk, error) {
	c, ok := <-s.out
	if ok {
		return c, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return tts.Chunk{}, s.err
	}
	return tts.Chunk{}, io.EOF
}

// Close abandons the stream and waits for its goroutine.
func (s *ttsStream) Close() error {
	s.cancel()
	<-s.done
	return nil
}

// run sends the queued text, batch by batch, until flushed and spoken.
func (s *ttsStream) run() {
	defer close(s.done)
	defer close(s.out)
	for {
		s.mu.Lock()
		text, flushed := strings.Join(s.pending, " "), s.flushed
		s.pending = nil
		s.mu.Unlock()
		if text != "" {
			if err := s.speak(text); err != nil {
				s.mu.Lock()
				if s.ctx.Err() != nil {
					err = fmt.Errorf("google: text-to-speech stream closed: %w", s.ctx.Err())
				}
				s.err = err
				s.mu.Unlock()
				return
			}
			continue
		}
		if flushed {
			if tail := s.resample.Flush(nil); len(tail) > 0 {
				s.emit(tail)
			}
			return
		}
		select {
		case <-s.wake:
		case <-s.ctx.Done():
			// Abandoned before the text was all spoken: Recv says so
			// rather than io.EOF, which would mean the reply was said.
			s.mu.Lock()
			if s.err == nil {
				s.err = fmt.Errorf("google: text-to-speech stream closed: %w", context.Cause(s.ctx))
			}
			s.mu.Unlock()
			return
		}
	}
}

// speak makes one request and passes its audio on.
func (s *ttsStream) speak(text string) error {
	if s.cfg.Model == ChirpModel {
		return s.speakChirp(text)
	}
	if s.instructions != "" {
		text = s.instructions + ":\n" + text
	}
	body, _ := json.Marshal(map[string]any{
		"contents": []any{map[string]any{"role": "user", "parts": []any{map[string]string{"text": text}}}},
		"generationConfig": map[string]any{
			"responseModalities": []string{"AUDIO"},
			"speechConfig":       map[string]any{"voiceConfig": map[string]any{"prebuiltVoiceConfig": map[string]string{"voiceName": s.cfg.Voice}}},
		},
	})
	req, err := s.request(body)
	if err != nil {
		return err
	}
	resp, err := s.t.chat.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("google: text-to-speech request: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return apiError(resp)
	}
	return s.events(resp.Body)
}

// request builds the request for the key's service.
func (s *ttsStream) request(body []byte) (*http.Request, error) {
	c := s.t.chat.cfg
	model := url.PathEscape(s.cfg.Model)
	var u string
	if s.key.IsServiceAccount() {
		u = fmt.Sprintf("%s/v1/projects/%s/locations/%s/publishers/google/models/%s:streamGenerateContent?alt=sse",
			strings.TrimRight(c.VertexURL, "/"), url.PathEscape(s.key.Project()), c.Location, model)
	} else {
		root := strings.TrimSuffix(strings.TrimRight(c.StudioURL, "/"), "/openai")
		u = fmt.Sprintf("%s/models/%s:streamGenerateContent?alt=sse", root, model)
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("google: text-to-speech request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if err := s.authorize(s.ctx, req); err != nil {
		return nil, err
	}
	return req, nil
}

// geminiEvent is the part of a GenerateContentResponse read here.
type geminiEvent struct {
	Candidates []struct {
		Content struct {
			Parts []struct {
				InlineData *struct {
					MimeType string `json:"mimeType"`
					Data     string `json:"data"`
				} `json:"inlineData"`
			} `json:"parts"`
		} `json:"content"`
	} `json:"candidates"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// maxEvent bounds one server-sent event (about 1 s of base64 audio is 64 KB).
const maxEvent = 4 << 20

// events reads the SSE body: each data line a GenerateContentResponse.
func (s *ttsStream) events(body io.Reader) error {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), maxEvent)
	for sc.Scan() {
		data, ok := strings.CutPrefix(sc.Text(), "data:")
		if !ok {
			continue
		}
		var ev geminiEvent
		if err := json.Unmarshal([]byte(strings.TrimSpace(data)), &ev); err != nil {
			return fmt.Errorf("google: text-to-speech event is not JSON: %w", err)
		}
		if ev.Error != nil {
			return fmt.Errorf("google: text-to-speech failed (%d): %s", ev.Error.Code, ev.Error.Message)
		}
		for _, c := range ev.Candidates {
			for _, p := range c.Content.Parts {
				if p.InlineData == nil {
					continue
				}
				if !strings.HasPrefix(p.InlineData.MimeType, "audio/L16") {
					return fmt.Errorf("google: text-to-speech sent %q, want audio/L16 PCM", p.InlineData.MimeType)
				}
				raw, err := base64.StdEncoding.DecodeString(p.InlineData.Data)
				if err != nil || len(raw)%2 != 0 {
					return errors.New("google: text-to-speech audio is not base64 16-bit PCM")
				}
				pcm := make([]int16, len(raw)/2)
				for i := range pcm {
					pcm[i] = int16(binary.LittleEndian.Uint16(raw[2*i:]))
				}
				if out := s.resample.Process(nil, pcm); len(out) > 0 && !s.emit(out) {
					return s.ctx.Err()
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("google: text-to-speech stream: %w", err)
	}
	return nil
}

// emit passes audio on, false when the stream was closed.
func (s *ttsStream) emit(pcm []int16) bool {
	select {
	case s.out <- tts.Chunk{PCM: pcm}:
		return true
	case <-s.ctx.Done():
		return false
	}
}

// apiError reads Google's error body, bounded.
func apiError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	var e struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	msg := strings.TrimSpace(string(b))
	if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
		msg = e.Error.Status + ": " + e.Error.Message
	}
	hint := ""
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		hint = " (check the Google key)"
	}
	return fmt.Errorf("google: text-to-speech refused: HTTP %d%s: %s", resp.StatusCode, hint, msg)
}

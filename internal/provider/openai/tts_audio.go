package openai

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/parley-voice/parley/internal/provider/redact"
)

// readAudio delivers the audio of a successful speech response as it
// arrives and returns how many 24 kHz samples it held. The body's form is
// decided by its Content-Type, not by what was asked for: compatible
// servers may answer with server-sent events, or JSON for an error.
func (s *speechStream) readAudio(resp *http.Response) (int, error) {
	s.pcm.Reset()
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	switch {
	case mt == "text/event-stream":
		return s.readEvents(resp.Body)
	case mt == "application/json":
		return 0, notAudio(resp, s.key)
	case compressedAudio(mt):
		return 0, fmt.Errorf("openai: the speech response is %s, not raw PCM (does the server support response_format=pcm?)", mt)
	}
	return s.readRaw(resp.Body)
}

// compressedAudio reports the media types of the formats other than pcm.
func compressedAudio(mt string) bool {
	switch mt {
	case "audio/mpeg", "audio/mp3", "audio/opus", "audio/ogg", "audio/aac", "audio/flac",
		"audio/wav", "audio/x-wav", "audio/wave", "audio/webm":
		return true
	}
	return false
}

// notAudio turns a 2xx JSON answer into an error: the API error it carries,
// or a complaint that no audio came.
func notAudio(resp *http.Response, key string) error {
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return fmt.Errorf("openai: read speech response: %w", err)
	}
	if e := parseErrorBody(resp.StatusCode, body); e.fromJSON {
		e.Message = redact.Key(e.Message, key)
		return fmt.Errorf("openai: text-to-speech failed: %w", e)
	}
	return fmt.Errorf("openai: the speech response is application/json instead of audio")
}

// readRaw delivers a body of raw PCM, read piece by piece.
func (s *speechStream) readRaw(body io.Reader) (int, error) {
	buf := make([]byte, speechReadSize)
	total := 0
	for {
		n, err := body.Read(buf)
		if n > 0 {
			pcm := s.pcm.Decode(buf[:n])
			total += len(pcm)
			if err := s.deliver(s.resampler.Process(nil, pcm)); err != nil {
				return total, err
			}
		}
		switch {
		case errors.Is(err, io.EOF):
			s.warnHalfSample()
			return total, nil
		case err != nil:
			return total, s.bodyError(err)
		}
	}
}

// speechEvent is one server-sent event of stream_format "sse".
type speechEvent struct {
	Type  string          `json:"type"`
	Audio string          `json:"audio"`
	Delta string          `json:"delta"` // some servers' name for audio
	Error json.RawMessage `json:"error"`
}

// readEvents delivers a body of speech.audio.delta events until
// speech.audio.done or [DONE]. The event parser is the chat stream's.
func (s *speechStream) readEvents(body io.ReadCloser) (int, error) {
	events := newStream(s.ctx, func() {}, body, s.key)
	total := 0
	for {
		data, err := events.next()
		switch {
		case errors.Is(err, io.EOF):
			return total, fmt.Errorf("openai: speech events ended before speech.audio.done: %w", io.ErrUnexpectedEOF)
		case err != nil:
			return total, s.bodyError(err)
		case string(data) == "[DONE]":
			s.warnHalfSample()
			return total, nil
		}
		var ev speechEvent
		if err := json.Unmarshal(data, &ev); err != nil {
			return total, fmt.Errorf("openai: decode speech event: %w", err)
		}
		if ev.Type == "error" || len(ev.Error) > 0 && string(ev.Error) != "null" {
			return total, s.eventError(ev.Error, data)
		}
		if ev.Type == "speech.audio.done" {
			s.warnHalfSample()
			return total, nil
		}
		n, err := s.deliverEncoded(ev.Audio + ev.Delta)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// deliverEncoded decodes base64 PCM and delivers it.
func (s *speechStream) deliverEncoded(b64 string) (int, error) {
	if b64 == "" {
		return 0, nil
	}
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return 0, fmt.Errorf("openai: decode speech audio: %w", err)
	}
	pcm := s.pcm.Decode(raw)
	return len(pcm), s.deliver(s.resampler.Process(nil, pcm))
}

// eventError is the *APIError of an error event.
func (s *speechStream) eventError(raw json.RawMessage, data []byte) error {
	e := &APIError{}
	if !fillErrorValue(e, raw) {
		e = parseErrorBody(0, data) // {"type":"error","message":…}
		e.StatusCode = 0
	}
	e.Message = redact.Key(e.Message, s.key)
	return fmt.Errorf("openai: text-to-speech failed: %w", e)
}

// bodyError explains why reading a response body failed.
func (s *speechStream) bodyError(err error) error {
	if s.ctx.Err() != nil {
		return s.ctxError()
	}
	msg := redact.Key(err.Error(), s.key)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("openai: read speech audio: %w", io.ErrUnexpectedEOF)
	}
	// A reset connection is audio that ended early, whatever the transport
	// calls it.
	return fmt.Errorf("openai: read speech audio: %s: %w", msg, io.ErrUnexpectedEOF)
}

// warnHalfSample logs a response that ended in the middle of a sample.
func (s *speechStream) warnHalfSample() {
	if s.pcm.Pending() {
		s.log.Warn("openai: speech audio ended with half a sample; dropped it")
	}
}

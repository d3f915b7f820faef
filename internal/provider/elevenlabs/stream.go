package elevenlabs

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/wstts"
)

// stream is one stream-input websocket.
//
// Send and Flush are called from one goroutine (the pipeline's text side)
// while Recv runs in another (its audio side); Close may be called from any
// goroutine, at any time, any number of times. Sends are serialised all the
// same, so concurrent Send calls are safe but their order is then undefined.
//
// Goroutines: readLoop, started by Open, is the only one. It exits when the
// audio ends, the service fails or closes, ctx is cancelled or Close is
// called; Close waits for it.
type stream struct {
	*wstts.Stream // the websocket, Recv and Close

	log *slog.Logger

	sendMu  sync.Mutex
	flushed bool // guarded by sendMu

	endSent atomic.Bool // {"text":""} was (being) sent: a normal close means EOF
}

// serverMessage is any message from the service. Alignment data is not
// decoded: the pipeline does not use it.
type serverMessage struct {
	Audio   string          `json:"audio"`
	IsFinal *bool           `json:"isFinal"`
	Message string          `json:"message"`
	Error   json.RawMessage `json:"error"`
	Code    json.RawMessage `json:"code"`
}

// Send queues text to speak, normally a whole sentence, and asks the service
// to generate it at once: {"text": text+" ", "flush": true}. Empty or blank
// text is ignored. Sending after Flush is an error.
func (s *stream) Send(text string) error {
	if wstts.Blank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.Closed() {
		return ErrClosed
	}
	if s.flushed {
		return errors.New("elevenlabs: Send after Flush")
	}
	if err := s.Ended(); err != nil {
		return err
	}
	if err := s.WriteJSON(textMessage{Text: text + " ", Flush: true}); err != nil {
		return s.WriteError("sending text", err)
	}
	return nil
}

// Flush sends the end of input, {"text":""}: the service speaks what it
// still holds, sends {"isFinal":true} and closes, and Recv then returns
// io.EOF. Flushing twice is a no-op.
func (s *stream) Flush() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if s.Closed() {
		return ErrClosed
	}
	if s.flushed {
		return nil
	}
	s.flushed = true
	if err := s.Ended(); err != nil {
		return err
	}
	// Set before writing: the service may close as soon as it reads it.
	s.endSent.Store(true)
	if err := s.WriteJSON(textMessage{Text: ""}); err != nil {
		return s.WriteError("sending end of input", err)
	}
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends.
// Recv then returns io.EOF, ErrClosed after Close, or what went wrong (a
// *ServerError when the service said so). Close, also after io.EOF, drops
// the connection without waiting for the service's close frame.
func (s *stream) readLoop() {
	defer s.ReaderExited()
	final, err := s.read()
	s.Finish(err)
	if final {
		s.drain()
	}
}

// read reads messages until the end of the audio or a failure. final
// reports {"isFinal":true}, after which the service closes the websocket.
func (s *stream) read() (final bool, err error) {
	var dec pcmDecoder
	for {
		typ, data, err := s.Conn().Read(s.Context())
		if err != nil {
			return false, s.ReadError(err, s.closeError)
		}
		if typ != websocket.MessageText {
			continue
		}
		var m serverMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return false, fmt.Errorf("elevenlabs: decoding server message: %w", err)
		}
		if m.isError() {
			return false, &ServerError{
				Kind:    s.Redact(rawText(m.Error)),
				Code:    rawInt(m.Code),
				Message: s.Redact(m.Message),
			}
		}
		if m.Audio != "" {
			pcm, err := dec.decode(m.Audio)
			if err != nil {
				return false, fmt.Errorf("elevenlabs: decoding audio: %w", err)
			}
			if err := s.Deliver(pcm); err != nil {
				return false, err
			}
		}
		if m.IsFinal != nil && *m.IsFinal {
			if dec.split.Pending() {
				s.log.Warn("elevenlabs audio ended with half a sample; dropped it")
			}
			return true, io.EOF
		}
	}
}

// isError reports an error message: an "error" field, or a "message" with
// no audio.
func (m *serverMessage) isError() bool {
	if len(m.Error) > 0 && string(m.Error) != "null" {
		return true
	}
	return m.Message != "" && m.Audio == ""
}

// closeError explains a close frame: the end of the audio after the end of
// input, a failure otherwise.
func (s *stream) closeError(ce websocket.CloseError) error {
	if ce.Code == websocket.StatusNormalClosure {
		if s.endSent.Load() {
			return io.EOF
		}
		return errors.New("elevenlabs: the service closed the stream before the end of input")
	}
	return &ServerError{CloseStatus: int(ce.Code), Message: s.Redact(ce.Reason)}
}

// drain waits, boundedly, for the service's close frame after isFinal so
// the websocket closes cleanly.
func (s *stream) drain() {
	ctx, cancel := context.WithTimeout(s.Context(), drainTimeout)
	defer cancel()
	for {
		if _, _, err := s.Conn().Read(ctx); err != nil {
			return
		}
	}
}

// pcmDecoder turns base64 PCM16 little-endian pieces into samples. The
// service may split a sample between two messages (audio.PCM16Splitter
// carries the odd byte over).
type pcmDecoder struct {
	buf   []byte
	split audio.PCM16Splitter
}

// decode returns the whole samples of piece plus a carried byte. The slice
// is new: the caller owns it.
func (d *pcmDecoder) decode(piece string) ([]int16, error) {
	need := base64.StdEncoding.DecodedLen(len(piece))
	if cap(d.buf) < need {
		d.buf = make([]byte, need)
	}
	n, err := base64.StdEncoding.Decode(d.buf[:need], []byte(piece))
	if err != nil {
		return nil, err
	}
	return d.split.Decode(d.buf[:n]), nil
}

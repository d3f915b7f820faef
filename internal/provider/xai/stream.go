package xai

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
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/provider/wstts"
)

const (
	// readLimit bounds one server message; audio deltas are a few tens of
	// kilobytes of base64.
	readLimit = 4 << 20
	// closeTimeout bounds the close handshake after audio.done.
	closeTimeout = 2 * time.Second
)

// Client messages.
type textDelta struct {
	Type  string `json:"type"` // "text.delta"
	Delta string `json:"delta"`
}

type textDone struct {
	Type string `json:"type"` // "text.done"
}

// serverMessage is any message from the service.
type serverMessage struct {
	Type    string `json:"type"`
	Delta   string `json:"delta"`
	Message string `json:"message"`
}

// stream is one TTS websocket.
//
// Goroutines: readLoop, started by newStream, is the only one. It exits
// when the audio ends, the service fails or closes, ctx is cancelled or
// Close is called; Close waits for it.
type stream struct {
	*wstts.Stream // the websocket, Recv and Close

	log *slog.Logger
	dec *decoder // used by readLoop only

	sendMu   sync.Mutex
	flushed  bool // guarded by sendMu
	lastRune rune // last rune sent, guarded by sendMu; 0 before any text

	doneSent atomic.Bool // text.done was (being) sent: audio.done ends the audio
}

func newStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, key string, dec *decoder) *stream {
	conn.SetReadLimit(readLimit)
	s := &stream{
		Stream: wstts.New(ctx, conn, log, key, wstts.Vendor{Name: "xai", Log: "xai tts", ErrClosed: ErrClosed}),
		log:    log,
		dec:    dec,
	}
	go s.readLoop()
	return s
}

// Send queues text to speak as a text.delta. The service joins deltas
// verbatim, so a space is put between two pieces that would otherwise run
// together. Blank text is ignored; sending after Flush is an error.
func (s *stream) Send(text string) error {
	if isBlank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.Usable(); err != nil {
		return err
	}
	if s.flushed {
		return errors.New("xai: Send after Flush")
	}
	first, _ := utf8.DecodeRuneInString(text)
	if s.lastRune != 0 && !unicode.IsSpace(s.lastRune) && !unicode.IsSpace(first) {
		text = " " + text
	}
	if err := s.WriteJSON(textDelta{Type: "text.delta", Delta: text}); err != nil {
		return s.WriteError("sending text", err)
	}
	s.lastRune, _ = utf8.DecodeLastRuneInString(text)
	return nil
}

// Flush sends text.done: the service speaks what it holds, then sends
// audio.done, and Recv returns io.EOF. Flushing twice is a no-op.
func (s *stream) Flush() error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.Usable(); err != nil {
		return err
	}
	if s.flushed {
		return nil
	}
	s.flushed = true
	// Set before writing: audio.done may be read as soon as it is written.
	s.doneSent.Store(true)
	if err := s.WriteJSON(textDone{Type: "text.done"}); err != nil {
		return s.WriteError("sending end of text", err)
	}
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends, then
// closes the websocket: with a close handshake after audio.done (the
// service keeps the connection open otherwise), at once after a failure.
// Recv then returns io.EOF, ErrClosed after Close, or what went wrong (an
// *APIError when the service said so).
func (s *stream) readLoop() {
	defer s.ReaderExited()
	err := s.read()
	s.Finish(err)
	if errors.Is(err, io.EOF) {
		s.closeGracefully()
	}
}

// closeGracefully sends a normal close frame and waits, boundedly, for the
// service's answer.
func (s *stream) closeGracefully() {
	conn := s.Conn()
	stop := context.AfterFunc(s.Context(), func() { _ = conn.CloseNow() })
	defer stop()
	t := time.AfterFunc(closeTimeout, func() { _ = conn.CloseNow() })
	defer t.Stop()
	_ = conn.Close(websocket.StatusNormalClosure, "")
}

// read reads messages until audio.done after text.done (io.EOF) or a
// failure.
func (s *stream) read() error {
	for {
		typ, data, err := s.Conn().Read(s.Context())
		if err != nil {
			return s.ReadError(err, s.closeError)
		}
		if typ != websocket.MessageText {
			continue
		}
		var m serverMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return fmt.Errorf("xai: decoding server message: %w", err)
		}
		switch m.Type {
		case "audio.delta":
			if err := s.deliver(m.Delta); err != nil {
				return err
			}
		case "audio.done":
			if !s.doneSent.Load() {
				continue // the audio of the text so far; more text follows
			}
			if err := s.deliverTail(); err != nil {
				return err
			}
			return io.EOF
		case "error":
			return &APIError{Message: clip(s.Redact(m.Message))}
		default:
			s.log.Debug("xai tts: ignoring server message", "type", m.Type)
		}
	}
}

// deliver decodes one audio delta and hands its samples to Recv.
func (s *stream) deliver(delta string) error {
	if delta == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(delta)
	if err != nil {
		return fmt.Errorf("xai: decoding audio: %w", err)
	}
	return s.Deliver(s.dec.decode(raw))
}

// deliverTail hands Recv the resampler's last samples.
func (s *stream) deliverTail() error {
	if s.dec.pcm.Pending() {
		s.log.Warn("xai audio ended with half a sample; dropped it")
	}
	return s.Deliver(s.dec.flush())
}

// closeError explains a close frame that came before the end of the audio.
func (s *stream) closeError(ce websocket.CloseError) error {
	if ce.Code == websocket.StatusNormalClosure {
		return errors.New("xai: the service closed the stream before the end of the audio")
	}
	return &APIError{CloseStatus: int(ce.Code), Message: clip(s.Redact(ce.Reason))}
}

// decoder turns the wire audio into PCM at the pipeline's rate. The
// service chops the stream at arbitrary byte boundaries, so an odd trailing
// byte of PCM is carried over to the next delta.
type decoder struct {
	codec     string
	resampler *audio.Resampler // nil when the wire rate is the pipeline's
	pcm       audio.PCM16Splitter
}

// decode returns the samples of raw (a new slice the caller owns).
func (d *decoder) decode(raw []byte) []int16 {
	var pcm []int16
	switch d.codec {
	case CodecMulaw:
		pcm = audio.DecodeUlaw(nil, raw)
	case CodecAlaw:
		pcm = audio.DecodeAlaw(nil, raw)
	default:
		pcm = d.pcm.Decode(raw)
	}
	if d.resampler != nil {
		pcm = d.resampler.Process(nil, pcm)
	}
	return pcm
}

// flush returns what the resampler still holds at the end of the audio.
func (d *decoder) flush() []int16 {
	if d.resampler == nil {
		return nil
	}
	return d.resampler.Flush(nil)
}

func isBlank(s string) bool {
	for _, r := range s {
		if !unicode.IsSpace(r) {
			return false
		}
	}
	return true
}

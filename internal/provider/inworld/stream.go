package inworld

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/wstts"
)

// stream is one websocket carrying one synthesis context.
//
// Send and Flush are called from one goroutine (the pipeline's text side)
// while Recv runs in another (its audio side); Close may be called from any
// goroutine, at any time, any number of times. Writes are serialised.
//
// Goroutines: readLoop, started by newStream, is the only one. It exits
// when the context closes, the service fails or disconnects, ctx is
// cancelled or Close is called; Close waits for it.
type stream struct {
	*wstts.Stream // the websocket, Recv and Close

	log       *slog.Logger
	contextID string
	conv      *converter // used by readLoop only

	sendMu  sync.Mutex
	flushed bool // guarded by sendMu
}

// streamParams are what newStream needs besides the connection.
type streamParams struct {
	log       *slog.Logger
	key       string
	contextID string
	conv      *converter
}

// newStream wraps an open connection and starts its reader.
func newStream(ctx context.Context, conn *websocket.Conn, p streamParams) *stream {
	s := &stream{
		Stream:    wstts.New(ctx, conn, p.log, p.key, wstts.Vendor{Name: "inworld", Log: "inworld", ErrClosed: ErrClosed}),
		log:       p.log,
		contextID: p.contextID,
		conv:      p.conv,
	}
	go s.readLoop()
	return s
}

// Send queues text to speak, normally a whole sentence, and asks the
// service to synthesise it at once: send_text then flush_context. Blank
// text is ignored. Sending after Flush is an error.
func (s *stream) Send(text string) error {
	if wstts.Blank(text) {
		return nil
	}
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	if err := s.Usable(); err != nil {
		return err
	}
	if s.flushed {
		return errors.New("inworld: Send after Flush")
	}
	if err := s.WriteJSON(clientMessage{ContextID: s.contextID, SendText: &sendText{Text: text + " "}}); err != nil {
		return s.WriteError("sending text", err)
	}
	if err := s.WriteJSON(clientMessage{ContextID: s.contextID, FlushContext: &struct{}{}}); err != nil {
		return s.WriteError("flushing text", err)
	}
	return nil
}

// Flush closes the context: the service speaks what it still holds, sends
// contextClosed, and Recv then returns io.EOF. Flushing twice is a no-op.
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
	if err := s.Usable(); err != nil {
		return err
	}
	if err := s.WriteJSON(clientMessage{ContextID: s.contextID, CloseContext: &struct{}{}}); err != nil {
		return s.WriteError("closing the synthesis context", err)
	}
	return nil
}

// readLoop delivers the service's audio to Recv until the stream ends.
// Recv then returns io.EOF, ErrClosed after Close, or what went wrong (a
// *ServerError when the service said so).
func (s *stream) readLoop() {
	defer s.ReaderExited()
	err := s.read()
	s.Finish(err)
	if errors.Is(err, io.EOF) {
		// The context is closed; end the connection politely.
		_ = s.Conn().Close(websocket.StatusNormalClosure, "")
	}
}

// read reads messages until contextClosed or a failure.
func (s *stream) read() error {
	for {
		typ, data, err := s.Conn().Read(s.Context())
		if err != nil {
			return s.ReadError(err, s.closeError)
		}
		if typ != websocket.MessageText {
			continue
		}
		end, err := s.handle(data)
		if err != nil || end {
			return err
		}
	}
}

// handle processes one server message; end reports contextClosed, after
// which it returns io.EOF.
func (s *stream) handle(data []byte) (end bool, err error) {
	var m serverMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return false, fmt.Errorf("inworld: decoding server message: %w", err)
	}
	if m.Error != nil && (m.Error.Code != 0 || m.Error.Message != "") {
		return false, s.statusError(m.Error)
	}
	r := m.Result
	if r == nil {
		return false, errors.New("inworld: decoding server message: neither result nor error")
	}
	if r.ContextID != "" && r.ContextID != s.contextID {
		s.log.Debug("inworld message for another context ignored", "other", r.ContextID)
		return false, nil
	}
	if r.Status != nil && r.Status.Code != 0 {
		return false, s.statusError(r.Status)
	}
	if r.AudioChunk != nil && r.AudioChunk.AudioContent != "" {
		pcm, err := s.conv.decode(r.AudioChunk.AudioContent)
		if err != nil {
			return false, fmt.Errorf("inworld: %w", err)
		}
		if err := s.Deliver(pcm); err != nil {
			return false, err
		}
	}
	if r.ContextClosed != nil {
		return true, s.deliverTail()
	}
	return false, nil
}

// deliverTail delivers the resampler's tail and returns io.EOF.
func (s *stream) deliverTail() error {
	tail, partial := s.conv.finish()
	if partial {
		s.log.Warn("inworld audio ended with part of a sample; dropped it")
	}
	if err := s.Deliver(tail); err != nil {
		return err
	}
	return io.EOF
}

func (s *stream) statusError(st *rpcStatus) error {
	return &ServerError{Code: st.Code, Message: s.Redact(st.Message)}
}

// closeError explains a close frame that came before contextClosed.
func (s *stream) closeError(ce websocket.CloseError) error {
	if ce.Code == websocket.StatusNormalClosure {
		return errors.New("inworld: the service closed the connection before the context was closed")
	}
	return &ServerError{CloseStatus: int(ce.Code), Message: s.Redact(ce.Reason)}
}

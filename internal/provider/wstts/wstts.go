// Package wstts is the part the websocket text-to-speech adapters
// (ElevenLabs, Inworld, xAI) share: handing decoded audio to Recv, Close,
// JSON writes with a timeout, and the errors a stream reports once it was
// closed, abandoned or cut. The adapter keeps its wire messages: it reads
// the socket itself, in a reader goroutine of its own, and uses Stream for
// the rest.
package wstts

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/tts"
)

const (
	// writeTimeout bounds one client message.
	writeTimeout = 10 * time.Second
	// failureGrace is how long a failed write waits for the reader to learn
	// why the service dropped the connection.
	failureGrace = time.Second
	// chunkBuffer is how many decoded chunks may wait for Recv.
	chunkBuffer = 32
)

// Vendor says how an adapter's stream names itself.
type Vendor struct {
	// Name prefixes errors: "xai" gives "xai: stream abandoned: ...".
	Name string
	// Log prefixes debug logs: "xai tts" gives "xai tts stream closed".
	Log string
	// ErrClosed is the adapter's error for a stream used after Close.
	ErrClosed error
}

// Stream is one websocket carrying one synthesis: the half of a tts.Stream
// that does not depend on the vendor's messages. It provides Recv and
// Close; the adapter provides Send and Flush and runs the reader.
//
// The reader is the adapter's goroutine that reads Conn with Context,
// hands audio to Deliver and, when the audio ends, calls Finish and then
// (deferred) ReaderExited. Recv may run alongside the adapter's Send and
// Flush; Close may be called from any goroutine, at any time, any number
// of times, and waits for the reader.
type Stream struct {
	conn   *websocket.Conn
	log    *slog.Logger
	key    string // only to redact it from server-supplied text
	vendor Vendor
	parent context.Context // Open's ctx, to report its cancellation
	ctx    context.Context // cancelled by Close and when the reader ends
	cancel context.CancelFunc

	closed atomic.Bool // Close was called

	// chunks carries decoded audio to Recv; Finish closes it after setting
	// err.
	chunks chan tts.Chunk
	err    error // why the audio ended (io.EOF when it ended well)
	// done is closed when the reader has exited and the connection is
	// closed.
	done      chan struct{}
	closeOnce sync.Once
}

// New wraps an open connection; ctx is Open's. The caller starts the
// reader.
func New(ctx context.Context, conn *websocket.Conn, log *slog.Logger, key string, v Vendor) *Stream {
	sctx, cancel := context.WithCancel(ctx)
	return &Stream{
		conn:   conn,
		log:    log,
		key:    key,
		vendor: v,
		parent: ctx,
		ctx:    sctx,
		cancel: cancel,
		chunks: make(chan tts.Chunk, chunkBuffer),
		done:   make(chan struct{}),
	}
}

// Conn is the websocket, for the reader and the vendor's close handshake.
func (s *Stream) Conn() *websocket.Conn { return s.conn }

// Context ends when Close is called, when the reader exits and when Open's
// context ends.
func (s *Stream) Context() context.Context { return s.ctx }

// Closed reports whether Close was called.
func (s *Stream) Closed() bool { return s.closed.Load() }

// Redact removes the API key from text the service or the network supplied.
func (s *Stream) Redact(text string) string { return redact.Key(text, s.key) }

// Recv returns the next chunk of audio, io.EOF after the last one,
// ErrClosed after Close, or the error that Finish recorded.
func (s *Stream) Recv() (tts.Chunk, error) {
	if s.closed.Load() {
		return tts.Chunk{}, s.vendor.ErrClosed
	}
	c, ok := <-s.chunks
	if !ok {
		return tts.Chunk{}, s.err
	}
	return c, nil
}

// Close drops the websocket at once (barge-in, hang-up), unblocks Recv and
// waits for the reader. Call it also after io.EOF.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		s.cancel()
		_ = s.conn.CloseNow()
		<-s.done
		s.log.Debug(s.vendor.Log + " stream closed")
	})
	return nil
}

// Deliver hands non-empty audio to Recv. It fails only when the stream's
// context ends, with CtxError.
func (s *Stream) Deliver(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	select {
	case s.chunks <- tts.Chunk{PCM: pcm}:
		return nil
	case <-s.ctx.Done():
		return s.CtxError()
	}
}

// Finish records why the audio ended (io.EOF when it ended well): Recv
// returns err after the audio already delivered. It logs a failure. The
// reader calls it once, before anything else it does on its way out.
func (s *Stream) Finish(err error) {
	s.err = err
	close(s.chunks)
	if !errors.Is(err, io.EOF) && !errors.Is(err, s.vendor.ErrClosed) {
		s.log.Debug(s.vendor.Log+" stream failed", "err", err)
	}
}

// ReaderExited ends the stream's context, drops the connection if the
// reader left it open, and lets Close return. The reader defers it.
func (s *Stream) ReaderExited() {
	s.cancel()
	_ = s.conn.CloseNow()
	close(s.done)
}

// ReadError explains why reading failed: the stream's end when its context
// did (see CtxError), closed's verdict on a close frame, else the network
// failure.
func (s *Stream) ReadError(err error, closed func(websocket.CloseError) error) error {
	if s.ctx.Err() != nil {
		return s.CtxError()
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return closed(ce)
	}
	return fmt.Errorf("%s: reading audio: %s", s.vendor.Name, s.Redact(err.Error()))
}

// CtxError explains a cancelled stream context: Close or Open's ctx.
func (s *Stream) CtxError() error {
	if s.closed.Load() {
		return s.vendor.ErrClosed
	}
	if err := s.parent.Err(); err != nil {
		return fmt.Errorf("%s: stream abandoned: %w", s.vendor.Name, err)
	}
	return s.vendor.ErrClosed
}

// Usable returns ErrClosed after Close, else what Ended returns.
func (s *Stream) Usable() error {
	if s.closed.Load() {
		return s.vendor.ErrClosed
	}
	return s.Ended()
}

// Ended returns the reader's error when the stream has already failed, an
// error saying so when its audio ended well, else nil.
func (s *Stream) Ended() error {
	select {
	case <-s.done:
		if errors.Is(s.err, io.EOF) {
			return errors.New(s.vendor.Name + ": the stream has ended")
		}
		return s.err
	default:
		return nil
	}
}

// WriteJSON sends v as one text message.
func (s *Stream) WriteJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// WriteError explains a failed write while doing something ("sending
// text"). A write fails because the connection is gone; the reader
// normally learns why (an error message or a close frame) within moments,
// and that is the better error, so WriteError waits a moment for it.
func (s *Stream) WriteError(doing string, err error) error {
	if s.closed.Load() {
		return s.vendor.ErrClosed
	}
	t := time.NewTimer(failureGrace)
	defer t.Stop()
	select {
	case <-s.done:
		if !errors.Is(s.err, io.EOF) {
			return s.err
		}
	case <-t.C:
	}
	if s.parent.Err() != nil {
		return fmt.Errorf("%s: %s: %w", s.vendor.Name, doing, s.parent.Err())
	}
	return fmt.Errorf("%s: %s: %s", s.vendor.Name, doing, s.Redact(err.Error()))
}

// Blank reports whether text holds only spaces, tabs and line breaks:
// nothing worth sending to be spoken.
func Blank(text string) bool {
	for _, r := range text {
		switch r {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}

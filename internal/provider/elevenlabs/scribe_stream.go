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
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/provider/redact"
	"github.com/parley-voice/parley/internal/stt"
)

const (
	// maxChunkAudio bounds the audio one input_audio_chunk carries when
	// queued frames are sent together: 250 ms at 16 kHz PCM16.
	maxChunkAudio = 8000
	// reconnectResetAfter is how long a connection must have lived for the
	// count of reconnections in a row to start again.
	reconnectResetAfter = 10 * time.Second
	// maxReconnectBackoff caps the doubling wait between reconnections.
	maxReconnectBackoff = 5 * time.Second
)

// sttOut is one queued item for the writer: audio, or a commit.
type sttOut struct {
	audio  []byte
	commit bool
}

// STTStream is one Scribe realtime stream; Open returns it as an
// stt.Stream. Write, Finalize, Recv and Close may be called from different
// goroutines.
//
// Goroutines: run, which owns the connections in turn (the first from Open,
// then reconnections), and per connection a writer, which sends queued
// audio, keep-alives and the closing commit and handshake, and a reader,
// which turns server messages into events. All end when the stream ends
// for good: Close, Open's ctx, or a failure that is not worth a
// reconnection. Close waits for all of them.
type STTStream struct {
	log          *slog.Logger
	key          string // only to redact it from server-supplied text
	plan         sttPlan
	dial         func(context.Context) (*websocket.Conn, error)
	keepAlive    time.Duration
	closeTimeout time.Duration
	maxFrames    int
	reconnects   int
	backoff      time.Duration

	parent context.Context // Open's ctx, to tell its end from ours
	ctx    context.Context // ends every goroutine
	cancel context.CancelFunc

	wake chan struct{} // cap 1: the writer has work
	done chan struct{} // closed when run has returned

	// events carries the readers' events to Recv; end finishes it with
	// what Recv returns once they are drained. Events are pushed with mu
	// held where they go with state mu guards.
	events stt.Queue

	encMu sync.Mutex // serialises the encoder (resampler state)
	enc   *sttEncoder

	firstSent bool // the stream's first chunk (with previous_text) went out; writers only

	mu          sync.Mutex
	queue       []sttOut
	audioQueued int
	dropped     int64
	closing     bool // Close was called
	uncommitted bool // audio went out since the last commit
	inSpeech    bool // a partial arrived since the last commit

	closeOnce sync.Once
	closeErr  error
}

// sttConn is one websocket of a stream.
type sttConn struct {
	ws         *websocket.Conn
	ctx        context.Context // ends this connection's goroutines
	cancel     context.CancelFunc
	readerDone chan struct{}
	writerDone chan struct{}
	readErr    error // set by the reader before readerDone

	// Guarded by the stream's mu.
	finalIn     chan struct{} // closed when the closing commit was answered
	awaitFinal  bool
	finalClosed bool
	writeErr    error
}

var _ stt.Stream = (*STTStream)(nil)

func newSTTStream(ctx context.Context, ws *websocket.Conn, dial func(context.Context) (*websocket.Conn, error),
	log *slog.Logger, p *STT, plan sttPlan, enc *sttEncoder, key string) *STTStream {
	sctx, cancel := context.WithCancel(ctx)
	s := &STTStream{
		log:          log,
		key:          key,
		plan:         plan,
		dial:         dial,
		keepAlive:    p.keepAlive,
		closeTimeout: p.closeTimeout,
		maxFrames:    p.queueFrames,
		reconnects:   p.reconnects,
		backoff:      p.backoff,
		parent:       ctx,
		ctx:          sctx,
		cancel:       cancel,
		wake:         make(chan struct{}, 1),
		done:         make(chan struct{}),
		enc:          enc,
	}
	go s.run(ws)
	return s
}

// Write queues pcm (mono 16-bit at the configured rate), encoded for the
// wire at once. It never blocks on the network: when the queue is full the
// oldest queued audio is dropped and counted (see Dropped). Audio written
// while the stream reconnects waits in the queue.
func (s *STTStream) Write(pcm []int16) error {
	if len(pcm) == 0 {
		return nil
	}
	s.encMu.Lock()
	b := s.enc.encode(pcm)
	s.encMu.Unlock()
	if len(b) == 0 {
		return nil
	}

	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	var dropped int64
	if s.audioQueued >= s.maxFrames {
		s.dropOldestAudioLocked()
		dropped = s.dropped
	}
	s.queue = append(s.queue, sttOut{audio: b})
	s.audioQueued++
	s.mu.Unlock()

	s.notifyWriter()
	if dropped == 1 || (dropped > 0 && dropped%100 == 0) {
		s.log.Warn("elevenlabs scribe: send queue full, dropping oldest audio", "dropped_frames", dropped)
	}
	return nil
}

// Finalize commits the audio written so far: the service transcribes it
// and answers with a committed transcript (a Final with SpeechFinal). With
// a negative stt.Config.Endpointing (commit_strategy=manual) it is the only
// way, besides Close, to get Finals.
func (s *STTStream) Finalize() error {
	s.mu.Lock()
	if err := s.writableLocked(); err != nil {
		s.mu.Unlock()
		return err
	}
	s.queue = append(s.queue, sttOut{commit: true})
	s.mu.Unlock()
	s.notifyWriter()
	return nil
}

// Dropped reports how many Write calls' audio was dropped because the send
// queue was full.
func (s *STTStream) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *STTStream) writableLocked() error {
	if s.closing {
		return ErrClosed
	}
	if s.events.Finished() {
		return fmt.Errorf("elevenlabs: scribe stream has ended: %w", s.events.Err())
	}
	return nil
}

// dropOldestAudioLocked removes the oldest queued audio, keeping commits.
func (s *STTStream) dropOldestAudioLocked() {
	for i, m := range s.queue {
		if m.commit {
			continue
		}
		s.queue = append(s.queue[:i], s.queue[i+1:]...)
		s.audioQueued--
		s.dropped++
		return
	}
}

func (s *STTStream) notifyWriter() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Recv blocks for the next event. After Close it returns the remaining
// events and then io.EOF; if the stream broke for good it returns the
// remaining events and then the error (a *ServerError when the service
// said why).
func (s *STTStream) Recv() (stt.Event, error) { return s.events.Recv() }

// Close sends the queued audio and a closing commit, waits (at most
// STTCloseTimeout) for its transcript, and closes the websocket with 1000.
// Afterwards Recv returns the remaining events and io.EOF. Close is
// idempotent; it returns an error only when the service did not finish in
// time.
func (s *STTStream) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *STTStream) close() error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.notifyWriter()

	var err error
	// The closing commit's wait, plus the close handshake.
	timer := time.NewTimer(s.closeTimeout + time.Second)
	select {
	case <-s.done:
	case <-timer.C:
		err = fmt.Errorf("elevenlabs: closing scribe stream: the service did not finish within %s", s.closeTimeout)
	}
	timer.Stop()
	s.cancel()
	<-s.done
	s.log.Debug("elevenlabs scribe stream closed")
	return err
}

// run serves connections until the stream ends for good.
func (s *STTStream) run(ws *websocket.Conn) {
	defer close(s.done)
	attempts := 0
	for {
		started := time.Now()
		err := s.serve(ws)
		if !s.worthReconnecting(err) {
			s.end(err)
			return
		}
		if time.Since(started) >= reconnectResetAfter {
			attempts = 0
		}
		if attempts >= s.reconnects {
			s.end(err)
			return
		}
		attempts++
		s.log.Warn("elevenlabs scribe: connection lost, reconnecting", "err", err, "attempt", attempts)
		s.dropSegment()
		ws, err = s.redial(attempts)
		if err != nil {
			s.end(err)
			return
		}
	}
}

// serve runs one connection's reader and writer until the reader stops,
// and returns why it stopped.
func (s *STTStream) serve(ws *websocket.Conn) error {
	ctx, cancel := context.WithCancel(s.ctx)
	c := &sttConn{
		ws:         ws,
		ctx:        ctx,
		cancel:     cancel,
		readerDone: make(chan struct{}),
		writerDone: make(chan struct{}),
		finalIn:    make(chan struct{}),
	}
	go s.readLoop(c)
	go s.writeLoop(c)
	<-c.readerDone
	cancel()
	<-c.writerDone
	_ = ws.CloseNow()
	return c.readErr
}

// worthReconnecting says whether err, which ended a connection, is the
// kind a new connection may cure: the service closing the socket without
// an error message (it does so on idle sockets, restarts and overload) or
// the network dropping it. Errors the service explained, bad messages,
// Close and the end of ctx are final.
func (s *STTStream) worthReconnecting(err error) bool {
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing || s.ctx.Err() != nil || s.reconnects == 0 {
		return false
	}
	var te *transientError
	return errors.As(err, &te)
}

// redial waits the backoff for attempt and connects again. Close during the
// wait ends the stream instead.
func (s *STTStream) redial(attempt int) (*websocket.Conn, error) {
	wait := min(s.backoff<<(attempt-1), maxReconnectBackoff)
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return nil, s.ctxError()
		case <-s.wake:
			s.mu.Lock()
			closing := s.closing
			s.mu.Unlock()
			if closing {
				return nil, io.EOF
			}
			continue
		case <-timer.C:
		}
		break
	}
	ws, err := s.dial(s.ctx)
	if err != nil {
		if s.ctx.Err() != nil {
			return nil, s.ctxError()
		}
		return nil, fmt.Errorf("elevenlabs: reconnecting scribe stream: %w", err)
	}
	s.notifyWriter() // audio may have queued up meanwhile
	return ws, nil
}

// dropSegment forgets the utterance the lost connection was transcribing;
// an UtteranceEnd tells the pipeline not to wait for its Final.
func (s *STTStream) dropSegment() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inSpeech {
		s.events.Push(stt.Event{Type: stt.UtteranceEnd})
	}
	s.inSpeech = false
	s.uncommitted = false
}

// end records why the stream ended for good.
func (s *STTStream) end(err error) {
	var te *transientError
	if errors.As(err, &te) {
		err = te.err
	}
	s.events.Finish(err)
	if !errors.Is(err, io.EOF) {
		s.log.Debug("elevenlabs scribe stream ended", "err", err)
	}
	s.cancel()
}

// ctxError explains the end of the stream's context.
func (s *STTStream) ctxError() error {
	if err := s.parent.Err(); err != nil {
		return fmt.Errorf("elevenlabs: scribe stream abandoned: %w", err)
	}
	return io.EOF // Close gave up waiting
}

// transientError marks a connection failure a reconnection may cure.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

// writeLoop is a connection's only sender: queued audio and commits in
// order, an empty chunk when nothing went out for the keep-alive interval,
// and once Close was called and the queue is drained, the closing commit
// and handshake.
func (s *STTStream) writeLoop(c *sttConn) {
	defer close(c.writerDone)
	timer := time.NewTimer(s.keepAlive)
	defer timer.Stop()
	lastSent := time.Now()
	for {
		chunk, ok, closing := s.nextChunk()
		switch {
		case ok:
			if err := s.send(c, chunk); err != nil {
				s.writeFailed(c, "sending audio", err)
				return
			}
			lastSent = time.Now()
			continue
		case closing:
			s.finish(c)
			return
		}
		wait := s.keepAlive - time.Since(lastSent)
		if wait <= 0 {
			if err := s.send(c, sttChunk{}); err != nil {
				s.writeFailed(c, "sending keep-alive", err)
				return
			}
			lastSent = time.Now()
			continue
		}
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-c.ctx.Done():
			return
		}
	}
}

// nextChunk pops queued audio, joining consecutive frames up to
// maxChunkAudio bytes, or a commit.
func (s *STTStream) nextChunk() (c sttChunk, ok, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return sttChunk{}, false, s.closing
	}
	if s.queue[0].commit {
		s.queue = s.queue[1:]
		s.uncommitted = false
		return sttChunk{Commit: true}, true, s.closing
	}
	var buf []byte
	for len(s.queue) > 0 && !s.queue[0].commit && (buf == nil || len(buf)+len(s.queue[0].audio) <= maxChunkAudio) {
		buf = append(buf, s.queue[0].audio...)
		s.queue[0] = sttOut{}
		s.queue = s.queue[1:]
		s.audioQueued--
	}
	s.uncommitted = true
	return sttChunk{Audio: base64.StdEncoding.EncodeToString(buf)}, true, s.closing
}

// send writes one input_audio_chunk; the stream's first carries
// previous_text.
func (s *STTStream) send(c *sttConn, chunk sttChunk) error {
	chunk.Type = msgInputAudioChunk
	chunk.SampleRate = s.plan.wireRate
	if !s.firstSent {
		chunk.PreviousText = s.plan.prevText
		s.firstSent = true
	}
	b, err := json.Marshal(chunk)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, writeTimeout)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// finish commits uncommitted audio, waits for its transcript and closes the
// websocket normally.
func (s *STTStream) finish(c *sttConn) {
	s.mu.Lock()
	commit := s.uncommitted
	c.awaitFinal = commit
	s.mu.Unlock()
	if commit {
		if err := s.send(c, sttChunk{Commit: true}); err != nil {
			s.writeFailed(c, "sending the closing commit", err)
			return
		}
		timer := time.NewTimer(s.closeTimeout)
		select {
		case <-c.finalIn:
		case <-c.readerDone:
		case <-c.ctx.Done():
		case <-timer.C:
			s.log.Warn("elevenlabs scribe: no transcript for the closing commit", "timeout", s.closeTimeout)
		}
		timer.Stop()
	}
	if c.ctx.Err() == nil {
		_ = c.ws.Close(websocket.StatusNormalClosure, sttNormalCloseLabel)
	}
}

// writeFailed handles a failed send. The reader normally sees the same
// broken connection, with the service's close frame; if it does not within
// failureGrace, the connection is cut so that the reader ends too.
func (s *STTStream) writeFailed(c *sttConn, what string, err error) {
	if c.ctx.Err() != nil {
		return
	}
	s.log.Debug("elevenlabs scribe: "+what+" failed", "err", err)
	s.mu.Lock()
	c.writeErr = fmt.Errorf("elevenlabs: scribe: %s: %s", what, redact.Key(err.Error(), s.key))
	s.mu.Unlock()
	grace := time.NewTimer(failureGrace)
	defer grace.Stop()
	select {
	case <-c.readerDone:
	case <-c.ctx.Done():
	case <-grace.C:
		_ = c.ws.CloseNow()
	}
}

// readLoop is a connection's only reader: it turns server messages into
// events until the socket closes or the service reports a failure, then
// records why.
func (s *STTStream) readLoop(c *sttConn) {
	defer close(c.readerDone)
	for {
		typ, data, err := c.ws.Read(c.ctx)
		if err != nil {
			c.readErr = s.readError(c, err)
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		m, err := parseSTTMessage(data)
		if err == nil {
			err = s.handle(c, m)
		}
		if err != nil {
			c.readErr = err
			return
		}
	}
}

// handle maps one message to events; it returns an error that ends the
// stream.
func (s *STTStream) handle(c *sttConn, m sttMessage) error {
	switch {
	case m.Type == msgCommitThrottled:
		s.log.Warn("elevenlabs scribe: commit throttled", "error", redact.Key(m.Error, s.key))
		s.mu.Lock()
		s.finalArrivedLocked(c)
		s.mu.Unlock()
	case m.isError():
		return m.serverError(s.key)
	case m.Type == msgPartial:
		s.onPartial(m.Text)
	case m.Type == msgCommitted && !s.plan.timestamps,
		m.Type == msgCommittedWithTS && s.plan.timestamps:
		s.onCommitted(c, m)
	case m.Type == msgCommitted, m.Type == msgCommittedWithTS:
		// The other half of the pair the service sends with timestamps on.
	case m.Type == msgSessionStarted:
		s.log.Debug("elevenlabs scribe: session started again", "session_id", m.SessionID)
	default:
		s.log.Debug("elevenlabs scribe: ignoring message", "message_type", m.Type)
	}
	return nil
}

// onPartial reports an interim transcript, preceded by SpeechStarted when it
// is the first of a segment.
func (s *STTStream) onPartial(text string) {
	if text == "" {
		return
	}
	interim := stt.Event{Type: stt.Interim, Text: text}
	s.mu.Lock()
	if s.inSpeech {
		s.events.Push(interim)
	} else {
		s.inSpeech = true
		s.events.Push(stt.Event{Type: stt.SpeechStarted}, interim)
	}
	s.mu.Unlock()
}

// onCommitted reports a committed segment. A commit ends the utterance (the
// service's VAD heard the silence, or the client committed), so a non-empty
// one is a Final with SpeechFinal; an empty one after partials is an
// UtteranceEnd, and an empty one after nothing is dropped.
func (s *STTStream) onCommitted(c *sttConn, m sttMessage) {
	s.mu.Lock()
	hadSpeech := s.inSpeech
	s.inSpeech = false
	s.uncommitted = false
	switch {
	case m.Text != "":
		ev := stt.Event{Type: stt.Final, Text: m.Text, SpeechFinal: true}
		ev.Start, ev.End, ev.Confidence = m.span()
		s.events.Push(ev)
	case hadSpeech:
		s.events.Push(stt.Event{Type: stt.UtteranceEnd})
	}
	// In the same critical section as the event: a commit answered before
	// Close sent its own must not count as the answer to it.
	s.finalArrivedLocked(c)
	s.mu.Unlock()
}

// finalArrivedLocked tells a waiting Close that the closing commit was
// answered (or will not be).
func (s *STTStream) finalArrivedLocked(c *sttConn) {
	if c.awaitFinal && !c.finalClosed {
		c.finalClosed = true
		close(c.finalIn)
	}
}

// readError decides what ended a connection's reading. Failures a new
// connection may cure are wrapped in *transientError.
func (s *STTStream) readError(c *sttConn, err error) error {
	s.mu.Lock()
	closing, writeErr := s.closing, c.writeErr
	s.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure && closing {
			return io.EOF
		}
		se := &ServerError{CloseStatus: int(ce.Code), Message: redact.Key(ce.Reason, s.key)}
		switch ce.Code {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusInternalError,
			websocket.StatusServiceRestart, websocket.StatusTryAgainLater:
			return &transientError{se}
		}
		return se
	}
	if closing {
		return io.EOF // Close cut the connection; Close reports a timeout
	}
	if s.ctx.Err() != nil {
		return s.ctxError()
	}
	if writeErr != nil {
		return &transientError{writeErr}
	}
	return &transientError{fmt.Errorf("elevenlabs: reading scribe transcripts: %s", redact.Key(err.Error(), s.key))}
}

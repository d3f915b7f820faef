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

	"github.com/parley-voice/parley/internal/stt"
)

// maxChunkAudio bounds the audio one input_audio_chunk carries when queued
// frames are sent together: 250 ms at 16 kHz PCM16.
const maxChunkAudio = 8000

// sttOut is one queued item for the writer: audio, or a commit.
type sttOut struct {
	audio  []byte
	commit bool
}

// STTStream is one Scribe realtime session; Open returns it as an
// stt.Stream. Write, Finalize, Recv and Close may be called from different
// goroutines.
//
// Goroutines: a writer, which sends queued audio, keep-alives and the final
// commit and performs the closing handshake, and a reader, which turns
// server messages into events. Both end when the service closes the socket,
// when Close finishes or when Open's ctx ends; Close waits for both.
type STTStream struct {
	conn         *websocket.Conn
	log          *slog.Logger
	key          string // only to redact it from server-supplied text
	plan         sttPlan
	keepAlive    time.Duration
	closeTimeout time.Duration
	maxFrames    int

	parent context.Context // Open's ctx, to tell its end from ours
	ctx    context.Context // ends both goroutines
	cancel context.CancelFunc

	wake       chan struct{} // cap 1: the writer has work
	eventReady chan struct{} // cap 1: an event was queued
	finalIn    chan struct{} // closed when the closing commit was answered
	readerDone chan struct{}
	writerDone chan struct{}

	encMu sync.Mutex // serialises the encoder (resampler state)
	enc   *sttEncoder

	mu           sync.Mutex
	queue        []sttOut
	audioQueued  int
	dropped      int64
	closing      bool // Close was called
	uncommitted  bool // audio went out since the last commit
	awaitFinal   bool // the closing commit went out
	finalClosed  bool // finalIn is closed
	inSpeech     bool // a partial arrived since the last commit
	events       []stt.Event
	finished     bool  // the reader exited; err is final
	err          error // what Recv returns once events are drained
	writeErr     error
	firstChunkTx bool // the first chunk (with previous_text) was sent

	closeOnce sync.Once
	closeErr  error
}

var _ stt.Stream = (*STTStream)(nil)

func newSTTStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, p *STT, plan sttPlan, enc *sttEncoder, key string) *STTStream {
	sctx, cancel := context.WithCancel(ctx)
	s := &STTStream{
		conn:         conn,
		log:          log,
		key:          key,
		plan:         plan,
		keepAlive:    p.keepAlive,
		closeTimeout: p.closeTimeout,
		maxFrames:    p.queueFrames,
		parent:       ctx,
		ctx:          sctx,
		cancel:       cancel,
		wake:         make(chan struct{}, 1),
		eventReady:   make(chan struct{}, 1),
		finalIn:      make(chan struct{}),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
		enc:          enc,
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// Write queues pcm (mono 16-bit at the configured rate), encoded for the
// wire at once. It never blocks on the network: when the queue is full the
// oldest queued audio is dropped and counted (see Dropped).
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
	if s.finished {
		return fmt.Errorf("elevenlabs: scribe stream has ended: %w", s.err)
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
// events and then io.EOF; if the service or the network broke the stream it
// returns the remaining events and then that error (a *ServerError when the
// service said why).
func (s *STTStream) Recv() (stt.Event, error) {
	for {
		s.mu.Lock()
		if len(s.events) > 0 {
			ev := s.events[0]
			s.events[0] = stt.Event{}
			s.events = s.events[1:]
			s.mu.Unlock()
			return ev, nil
		}
		if s.finished {
			err := s.err
			s.mu.Unlock()
			return stt.Event{}, err
		}
		s.mu.Unlock()
		select {
		case <-s.eventReady:
		case <-s.readerDone:
		}
	}
}

// Close sends the queued audio and a closing commit, waits (at most
// STTCloseTimeout) for its transcript, and closes the websocket with 1000.
// Afterwards Recv returns the remaining events and io.EOF. Close is
// idempotent; it returns an error only when the service did not answer in
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
	timer := time.NewTimer(s.closeTimeout + time.Second)
	select {
	case <-s.writerDone:
		// The writer finished the handshake (or gave up on it); the reader
		// ends with the socket.
		select {
		case <-s.readerDone:
		case <-timer.C:
			err = errors.New("elevenlabs: closing scribe stream: the service did not close the socket in time")
		}
	case <-s.readerDone:
	case <-timer.C:
		err = fmt.Errorf("elevenlabs: closing scribe stream: the service did not finish within %s", s.closeTimeout)
	}
	timer.Stop()

	s.cancel()
	<-s.readerDone
	<-s.writerDone
	_ = s.conn.CloseNow()
	s.log.Debug("elevenlabs scribe stream closed")
	return err
}

// writeLoop is the only sender: queued audio and commits in order, an empty
// chunk when nothing went out for the keep-alive interval, and once Close
// was called and the queue is drained, the closing commit and handshake.
func (s *STTStream) writeLoop() {
	defer close(s.writerDone)
	timer := time.NewTimer(s.keepAlive)
	defer timer.Stop()
	lastSent := time.Now()
	for {
		chunk, ok, closing := s.nextChunk()
		switch {
		case ok:
			if err := s.send(chunk); err != nil {
				s.writeFailed("sending audio", err)
				return
			}
			lastSent = time.Now()
			continue
		case closing:
			s.finish()
			return
		}
		wait := s.keepAlive - time.Since(lastSent)
		if wait <= 0 {
			if err := s.send(sttChunk{}); err != nil {
				s.writeFailed("sending keep-alive", err)
				return
			}
			lastSent = time.Now()
			continue
		}
		timer.Reset(wait)
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.ctx.Done():
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

// send writes one input_audio_chunk; the first carries previous_text.
func (s *STTStream) send(c sttChunk) error {
	c.Type = msgInputAudioChunk
	c.SampleRate = s.plan.wireRate
	if !s.firstChunkTx {
		c.PreviousText = s.plan.prevText
		s.firstChunkTx = true
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(s.ctx, writeTimeout)
	defer cancel()
	return s.conn.Write(ctx, websocket.MessageText, b)
}

// finish commits uncommitted audio, waits for its transcript and closes the
// websocket normally.
func (s *STTStream) finish() {
	s.mu.Lock()
	commit := s.uncommitted && !s.finished
	s.awaitFinal = commit
	s.mu.Unlock()
	if commit {
		if err := s.send(sttChunk{Commit: true}); err != nil {
			s.writeFailed("sending the closing commit", err)
			return
		}
		timer := time.NewTimer(s.closeTimeout)
		select {
		case <-s.finalIn:
		case <-s.readerDone:
		case <-s.ctx.Done():
		case <-timer.C:
			s.log.Warn("elevenlabs scribe: no transcript for the closing commit", "timeout", s.closeTimeout)
		}
		timer.Stop()
	}
	if s.ctx.Err() == nil {
		_ = s.conn.Close(websocket.StatusNormalClosure, sttNormalCloseLabel)
	}
}

// writeFailed handles a failed send. The reader normally sees the same
// broken connection, with the service's close frame; if it does not within
// failureGrace, the connection is cut so that Recv cannot hang.
func (s *STTStream) writeFailed(what string, err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.log.Debug("elevenlabs scribe: "+what+" failed", "err", err)
	s.mu.Lock()
	s.writeErr = fmt.Errorf("elevenlabs: scribe: %s: %s", what, redact(err.Error(), s.key))
	s.mu.Unlock()
	grace := time.NewTimer(failureGrace)
	defer grace.Stop()
	select {
	case <-s.readerDone:
	case <-s.ctx.Done():
	case <-grace.C:
		_ = s.conn.CloseNow()
	}
}

// readLoop is the only reader: it turns server messages into events until
// the socket closes or the service reports a failure, then records why.
func (s *STTStream) readLoop() {
	err := s.read()
	s.mu.Lock()
	s.finished = true
	s.err = err
	s.mu.Unlock()
	if !errors.Is(err, io.EOF) {
		s.log.Debug("elevenlabs scribe stream ended", "err", err)
	}
	s.cancel()
	_ = s.conn.CloseNow()
	close(s.readerDone)
}

func (s *STTStream) read() error {
	for {
		typ, data, err := s.conn.Read(s.ctx)
		if err != nil {
			return s.readError(err)
		}
		if typ != websocket.MessageText {
			continue
		}
		m, err := parseSTTMessage(data)
		if err != nil {
			return err
		}
		if err := s.handle(m); err != nil {
			return err
		}
	}
}

// handle maps one message to events; it returns an error that ends the
// stream.
func (s *STTStream) handle(m sttMessage) error {
	switch {
	case m.Type == msgCommitThrottled:
		s.log.Warn("elevenlabs scribe: commit throttled", "error", redact(m.Error, s.key))
		s.finalArrived()
	case m.isError():
		return m.serverError(s.key)
	case m.Type == msgPartial:
		s.onPartial(m.Text)
	case m.Type == msgCommitted && !s.plan.timestamps,
		m.Type == msgCommittedWithTS && s.plan.timestamps:
		s.onCommitted(m)
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
	s.mu.Lock()
	if !s.inSpeech {
		s.inSpeech = true
		s.events = append(s.events, stt.Event{Type: stt.SpeechStarted})
	}
	s.events = append(s.events, stt.Event{Type: stt.Interim, Text: text})
	s.mu.Unlock()
	s.notifyReader()
}

// onCommitted reports a committed segment. A commit ends the utterance (the
// service's VAD heard the silence, or the client committed), so a non-empty
// one is a Final with SpeechFinal; an empty one after partials is an
// UtteranceEnd, and an empty one after nothing is dropped.
func (s *STTStream) onCommitted(m sttMessage) {
	s.mu.Lock()
	hadSpeech := s.inSpeech
	s.inSpeech = false
	s.uncommitted = false
	switch {
	case m.Text != "":
		ev := stt.Event{Type: stt.Final, Text: m.Text, SpeechFinal: true}
		ev.Start, ev.End, ev.Confidence = m.span()
		s.events = append(s.events, ev)
	case hadSpeech:
		s.events = append(s.events, stt.Event{Type: stt.UtteranceEnd})
	}
	// In the same critical section as the event: a commit answered before
	// Close sent its own must not count as the answer to it.
	s.finalArrivedLocked()
	s.mu.Unlock()
	s.notifyReader()
}

// finalArrived tells a waiting Close that the closing commit was answered
// (or will not be).
func (s *STTStream) finalArrived() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.finalArrivedLocked()
}

func (s *STTStream) finalArrivedLocked() {
	if s.awaitFinal && !s.finalClosed {
		s.finalClosed = true
		close(s.finalIn)
	}
}

func (s *STTStream) notifyReader() {
	select {
	case s.eventReady <- struct{}{}:
	default:
	}
}

// readError decides what Recv reports once reading stopped.
func (s *STTStream) readError(err error) error {
	s.mu.Lock()
	closing, writeErr := s.closing, s.writeErr
	s.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure && closing {
			return io.EOF
		}
		return &ServerError{CloseStatus: int(ce.Code), Message: redact(ce.Reason, s.key)}
	}
	if closing {
		return io.EOF // Close cut the connection; Close reports a timeout
	}
	if perr := s.parent.Err(); perr != nil {
		return fmt.Errorf("elevenlabs: scribe stream abandoned: %w", perr)
	}
	if writeErr != nil {
		return writeErr
	}
	return fmt.Errorf("elevenlabs: reading scribe transcripts: %s", redact(err.Error(), s.key))
}

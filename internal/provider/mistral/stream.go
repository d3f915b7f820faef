package mistral

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/stt"
)

// CloseError reports that the server closed the socket other than in
// answer to input_audio.end, or reported an error event.
type CloseError struct {
	Code   int    // websocket status, 0 for an error event
	Reason string // close reason or the error event's message
}

// Error describes the close status and reason.
func (e *CloseError) Error() string {
	if e.Code == 0 {
		return "mistral: server reported an error: " + e.Reason
	}
	s := fmt.Sprintf("mistral: server closed the stream: status %d (%s)", e.Code, websocket.StatusCode(e.Code))
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// outMsg is one queued client message.
type outMsg struct {
	data  []byte
	audio bool
	flush bool // input_audio.flush: start the wait for transcription.done
}

// Stream is one live Voxtral session; Open returns it as an stt.Stream.
// Write, Recv and Close may be called from different goroutines.
//
// Write runs the VAD: when speech starts it reports SpeechStarted, and when
// the caller has been silent for the endpointing time it queues
// input_audio.flush. The stream owns two goroutines: a writer that sends
// queued messages (and ends a flush that got no transcription.done), and a
// reader that turns server events into stt events. Both exit when the
// socket closes, Close finishes or the Open context ends.
type Stream struct {
	conn         *websocket.Conn
	log          *slog.Logger
	finalTimeout time.Duration
	closeTimeout time.Duration
	maxFrames    int

	parent context.Context
	ctx    context.Context
	cancel context.CancelFunc

	wake       chan struct{}
	readerDone chan struct{}
	writerDone chan struct{}

	// events carries the VAD's and the reader's events to Recv; the reader
	// finishes it with what Recv returns once they are drained.
	events stt.Queue

	// Write's state, serialised by writeMu.
	writeMu  sync.Mutex
	enc      *encoder
	vad      *audio.VAD
	frame    []int16 // the incomplete 20 ms frame
	frameLen int

	mu          sync.Mutex
	queue       []outMsg
	audioQueued int
	dropped     int64
	closing     bool
	endSent     bool
	writeErr    error
	utterance   string    // deltas since the last Final
	finalized   string    // the text already reported in Finals, normalized
	flushSentAt time.Time // zero when no transcription.done is awaited
	timedOut    bool      // the last flush's Final came from FinalTimeout
	awaiting    int       // flushes sent whose transcription.done has not come
	lingering   bool      // input_audio.end's done may still come after a flush's

	closeOnce sync.Once
	closeErr  error
}

var _ stt.Stream = (*Stream)(nil)

func newStream(ctx context.Context, conn *websocket.Conn, log *slog.Logger, cfg Config, sc stt.Config, enc *encoder) *Stream {
	sctx, cancel := context.WithCancel(ctx)
	s := &Stream{
		conn:         conn,
		log:          log,
		finalTimeout: cfg.FinalTimeout,
		closeTimeout: cfg.CloseTimeout,
		maxFrames:    cfg.QueueFrames,
		parent:       ctx,
		ctx:          sctx,
		cancel:       cancel,
		wake:         make(chan struct{}, 1),
		readerDone:   make(chan struct{}),
		writerDone:   make(chan struct{}),
		enc:          enc,
		vad:          audio.NewVAD(vadConfig(sc.Endpointing)),
		frameLen:     audio.FrameSamples(sc.SampleRate),
	}
	go s.readLoop()
	go s.writeLoop()
	return s
}

// vadConfig makes the VAD end speech after the endpointing silence.
func vadConfig(endpointing time.Duration) audio.VADConfig {
	if endpointing <= 0 {
		endpointing = DefaultEndpointing
	}
	cfg := audio.DefaultVADConfig()
	cfg.EndFrames = max(1, int(endpointing/(audio.FrameDuration*time.Millisecond)))
	return cfg
}

// Write queues pcm for sending, in 20 ms frames, and runs the VAD on each
// frame. It copies pcm and never blocks on the network: when the queue is
// full the oldest audio is dropped and counted (see Dropped).
func (s *Stream) Write(pcm []int16) error {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.writable(); err != nil {
		return err
	}
	for len(pcm) > 0 {
		n := min(s.frameLen-len(s.frame), len(pcm))
		s.frame = append(s.frame, pcm[:n]...)
		pcm = pcm[n:]
		if len(s.frame) == s.frameLen {
			s.sendFrame(s.frame)
			s.frame = s.frame[:0]
		}
	}
	return nil
}

// sendFrame queues one frame's audio and acts on the VAD's verdict.
func (s *Stream) sendFrame(frame []int16) {
	s.queueAudio(s.enc.encode(frame))
	switch s.vad.Process(frame).Event {
	case audio.SpeechStart:
		s.events.Push(stt.Event{Type: stt.SpeechStarted})
	case audio.SpeechEnd:
		s.queueControl(typeFlush)
	}
}

func (s *Stream) writable() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return errClosed
	}
	if s.events.Finished() {
		return fmt.Errorf("mistral: stream has ended: %w", s.events.Err())
	}
	return nil
}

func (s *Stream) queueAudio(b []byte) {
	for len(b) > 0 {
		n := min(len(b), maxAppendBytes)
		data, _ := json.Marshal(appendMsg{Type: typeAppend, Audio: b[:n]})
		b = b[n:]
		s.mu.Lock()
		if s.audioQueued >= s.maxFrames {
			s.dropOldestAudioLocked()
			if s.dropped == 1 || s.dropped%100 == 0 {
				s.log.Warn("mistral: send queue full, dropping oldest audio", "dropped_frames", s.dropped)
			}
		}
		s.queue = append(s.queue, outMsg{data: data, audio: true})
		s.audioQueued++
		s.mu.Unlock()
	}
	s.notify(s.wake)
}

func (s *Stream) queueControl(typ string) {
	data, _ := json.Marshal(controlMsg{Type: typ})
	s.mu.Lock()
	s.queue = append(s.queue, outMsg{data: data, flush: typ == typeFlush})
	s.mu.Unlock()
	s.notify(s.wake)
}

func (s *Stream) dropOldestAudioLocked() {
	for i, m := range s.queue {
		if m.audio {
			s.queue = append(s.queue[:i], s.queue[i+1:]...)
			s.audioQueued--
			s.dropped++
			return
		}
	}
}

// Dropped reports how many audio frames were dropped because the send
// queue was full.
func (s *Stream) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

func (s *Stream) notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Recv blocks for the next event. After Close it returns the remaining
// events and then io.EOF; if the stream broke it returns the remaining
// events and then why.
func (s *Stream) Recv() (stt.Event, error) { return s.events.Recv() }

// Close sends the audio written so far and input_audio.end, waits (at most
// Config.CloseTimeout) for the last transcription.done, and closes the
// socket. It is idempotent and returns an error only when the server did
// not finish in time.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.close() })
	return s.closeErr
}

func (s *Stream) close() error {
	// The last partial frame and the resampler's tail are queued before
	// closing is set, so the writer sends them ahead of input_audio.end.
	s.writeMu.Lock()
	if s.writable() == nil {
		s.queueAudio(s.enc.flush(s.frame))
	}
	s.frame = nil
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	s.writeMu.Unlock()
	s.notify(s.wake)

	var err error
	timer := time.NewTimer(s.closeTimeout)
	select {
	case <-s.readerDone:
	case <-timer.C:
		err = fmt.Errorf("mistral: closing stream: no transcription.done within %s", s.closeTimeout)
	}
	timer.Stop()
	s.cancel()
	<-s.readerDone
	<-s.writerDone
	_ = s.conn.CloseNow()
	return err
}

// writeLoop is the only sender. After Close it drains the queue and sends
// input_audio.end. While a flush awaits transcription.done it also wakes
// up to end the wait after FinalTimeout.
func (s *Stream) writeLoop() {
	defer close(s.writerDone)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		msg, ok, closing := s.nextOut()
		switch {
		case ok:
			if err := s.conn.Write(s.ctx, websocket.MessageText, msg.data); err != nil {
				s.writeFailed(err)
				return
			}
			if msg.flush {
				s.flushSent()
			}
			continue
		case closing:
			s.sendEnd()
			return
		}
		timer.Reset(s.untilFinalTimeout())
		select {
		case <-s.wake:
		case <-timer.C:
			s.finalTimedOut()
		case <-s.ctx.Done():
			return
		}
	}
}

func (s *Stream) sendEnd() {
	data, _ := json.Marshal(controlMsg{Type: typeEnd})
	s.mu.Lock()
	s.endSent = true
	s.mu.Unlock()
	if err := s.conn.Write(s.ctx, websocket.MessageText, data); err != nil {
		s.writeFailed(err)
	}
}

func (s *Stream) nextOut() (msg outMsg, ok, closing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) == 0 {
		return outMsg{}, false, s.closing
	}
	msg = s.queue[0]
	s.queue = s.queue[1:]
	if msg.audio {
		s.audioQueued--
	}
	return msg, true, s.closing
}

func (s *Stream) flushSent() {
	s.mu.Lock()
	s.flushSentAt = time.Now()
	s.awaiting++
	s.mu.Unlock()
}

// untilFinalTimeout is how long the writer may sleep: until the awaited
// transcription.done is overdue, or an hour when none is awaited.
func (s *Stream) untilFinalTimeout() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flushSentAt.IsZero() {
		return time.Hour
	}
	return max(time.Millisecond, s.finalTimeout-time.Since(s.flushSentAt))
}

// finalTimedOut reports the utterance's deltas as its Final when the
// flush's transcription.done is overdue.
func (s *Stream) finalTimedOut() {
	s.mu.Lock()
	if s.flushSentAt.IsZero() || time.Since(s.flushSentAt) < s.finalTimeout {
		s.mu.Unlock()
		return
	}
	s.flushSentAt = time.Time{}
	s.awaiting = 0 // the server does not answer flushes
	ev, ok := s.finalLocked(s.utterance)
	s.timedOut = ok
	s.mu.Unlock()
	if ok {
		s.log.Debug("mistral: no transcription.done after flush, reporting the deltas")
		s.events.Push(ev)
	}
}

// writeFailed records a failed send; the reader normally sees the same
// broken socket. If it does not within a second, the socket is cut.
func (s *Stream) writeFailed(err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	s.writeErr = fmt.Errorf("mistral: sending to stream: %w", err)
	s.mu.Unlock()
	grace := time.NewTimer(time.Second)
	defer grace.Stop()
	select {
	case <-s.readerDone:
	case <-s.ctx.Done():
	case <-grace.C:
		_ = s.conn.CloseNow()
	}
}

// readLoop is the only reader: it turns server events into stt events
// until the socket closes, input_audio.end is answered or an error event.
func (s *Stream) readLoop() {
	var err error
	for err == nil {
		typ, data, rerr := s.read()
		switch {
		case errors.Is(rerr, errLingerOver):
			err = io.EOF
		case rerr != nil:
			err = s.readError(rerr)
		case typ == websocket.MessageText:
			err = s.handle(data)
		}
	}
	s.events.Finish(err)
	if err != io.EOF {
		s.log.Debug("mistral stream ended", "err", err)
	}
	s.cancel()
	close(s.readerDone)
}

// errLingerOver ends a session whose last done came after input_audio.end
// and nothing followed it for FinalTimeout.
var errLingerOver = errors.New("mistral: no further transcription.done")

// read reads the next message. After input_audio.end, once a done was
// taken as a flush's answer, it waits only FinalTimeout for another (a
// server that does not answer flushes sends just one done).
func (s *Stream) read() (websocket.MessageType, []byte, error) {
	s.mu.Lock()
	lingering := s.lingering
	s.mu.Unlock()
	if !lingering {
		return s.conn.Read(s.ctx)
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.finalTimeout)
	defer cancel()
	typ, data, err := s.conn.Read(ctx)
	if err != nil && ctx.Err() == context.DeadlineExceeded && s.ctx.Err() == nil {
		return typ, data, errLingerOver
	}
	return typ, data, err
}

// handle applies one server event; io.EOF means the session is over.
func (s *Stream) handle(data []byte) error {
	m, err := parseServerMsg(data)
	if err != nil {
		s.conn.CloseNow()
		return fmt.Errorf("mistral: malformed server message: %w", err)
	}
	switch m.Type {
	case typeTextDelta:
		s.onDelta(m.Text)
	case typeDone:
		if s.onDone(m.Text) {
			_ = s.conn.Close(websocket.StatusNormalClosure, "")
			return io.EOF
		}
	case typeLanguage:
		s.log.Debug("mistral: detected language", "language", m.AudioLanguage)
	case typeError:
		s.conn.CloseNow()
		return &CloseError{Reason: errorText(m.Error)}
	case typeSessionUpdated, typeSegment, typeSessionCreated:
	default:
		s.log.Debug("mistral: ignoring server event", "type", m.Type)
	}
	return nil
}

func (s *Stream) onDelta(text string) {
	if text == "" {
		return
	}
	s.mu.Lock()
	s.utterance += text
	ev := stt.Event{Type: stt.Interim, Text: strings.TrimSpace(s.utterance)}
	s.mu.Unlock()
	if ev.Text != "" {
		s.events.Push(ev)
	}
}

// onDone reports the utterance as a Final and says whether the session is
// over: the answer to input_audio.end, which is the done that comes when
// no flush awaits one. The Final's text is the deltas
// since the last Final; without deltas it is what done's text adds to the
// text already reported (done may carry the whole session's text).
func (s *Stream) onDone(text string) (over bool) {
	s.mu.Lock()
	t := s.utterance
	if t == "" && !s.timedOut {
		t = strings.TrimPrefix(normalize(text), s.finalized)
	}
	s.timedOut = false
	if s.awaiting > 0 {
		s.awaiting--
		s.lingering = s.endSent
	} else {
		over = s.endSent
	}
	if s.awaiting == 0 {
		s.flushSentAt = time.Time{}
	}
	ev, ok := s.finalLocked(t)
	s.mu.Unlock()
	if ok {
		s.events.Push(ev)
	}
	return over
}

// finalLocked ends the utterance with text, returning its Final event
// unless the text is blank.
func (s *Stream) finalLocked(text string) (stt.Event, bool) {
	s.finalized = normalize(s.finalized + " " + text)
	s.utterance = ""
	text = strings.TrimSpace(text)
	if text == "" {
		return stt.Event{}, false
	}
	return stt.Event{Type: stt.Final, Text: text, SpeechFinal: true}, true
}

func (s *Stream) readError(err error) error {
	s.mu.Lock()
	closing, writeErr := s.closing, s.writeErr
	s.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code == websocket.StatusNormalClosure && closing {
			return io.EOF
		}
		return &CloseError{Code: int(ce.Code), Reason: ce.Reason}
	}
	if closing {
		return io.EOF
	}
	if perr := s.parent.Err(); perr != nil {
		return fmt.Errorf("mistral: stream context ended: %w", perr)
	}
	if writeErr != nil {
		return writeErr
	}
	return fmt.Errorf("mistral: reading from stream: %w", err)
}

// normalize collapses runs of white space, so that texts assembled from
// deltas compare equal to the server's whole text.
func normalize(s string) string { return strings.Join(strings.Fields(s), " ") }

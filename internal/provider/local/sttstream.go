package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/stt"
)

const (
	// inputQueue is how many writes may wait for the segmenter (at 20 ms a
	// write, 10 s of audio); beyond that Write drops audio.
	inputQueue = 512
	// utteranceQueue is how many finished utterances may wait for the
	// recogniser before the segmenter waits too.
	utteranceQueue = 16
	// closeTimeout bounds how long Close waits for the last utterances to
	// be recognised before it kills the recogniser.
	closeTimeout = 30 * time.Second
)

// sttStream is one recognition stream. Two goroutines, both ended by Close
// or by the stream's context, do the work:
//
//	Write ──in──▶ segment (VAD, SpeechStarted) ──utts──▶ recognize (Final)
//
// Events wait in an unbounded list, so neither goroutine ever waits for
// Recv.
type sttStream struct {
	rec    *recognizer
	log    *slog.Logger
	parent context.Context
	ctx    context.Context // cancelled by Close (after the flush) and by failures
	cancel context.CancelFunc
	seg    *segmenter // used by the segment goroutine only

	mu       sync.Mutex // guards closed, in's closing, dropped, failure
	closed   bool
	dropped  int // samples dropped in the current overflow
	failure  error
	in       chan []int16
	utts     chan utterance
	finished chan struct{} // closed when both goroutines have ended

	evMu    sync.Mutex
	events  []stt.Event
	end     error         // io.EOF or what broke the stream, once finished
	changed chan struct{} // closed and replaced whenever events or end change
}

func newSTTStream(ctx context.Context, rec *recognizer, cfg stt.Config, log *slog.Logger) *sttStream {
	sctx, cancel := context.WithCancel(ctx)
	s := &sttStream{
		rec:      rec,
		log:      log,
		parent:   ctx,
		ctx:      sctx,
		cancel:   cancel,
		in:       make(chan []int16, inputQueue),
		utts:     make(chan utterance, utteranceQueue),
		finished: make(chan struct{}),
		changed:  make(chan struct{}),
	}
	s.seg = newSegmenter(cfg.SampleRate, cfg.Endpointing, s.speechStarted, s.utteranceDone)
	go s.segment()
	go s.recognize()
	return s
}

// Write queues a copy of pcm and returns at once. When the queue is full the
// audio is dropped and a warning logged.
func (s *sttStream) Write(pcm []int16) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return ErrClosed
	case s.failure != nil:
		return s.failure
	case s.ctx.Err() != nil:
		return fmt.Errorf("local stt: %w", s.ctx.Err())
	case len(pcm) == 0:
		return nil
	}
	select {
	case s.in <- slices.Clone(pcm):
		if s.dropped > 0 {
			s.log.Warn("recogniser caught up; audio was dropped", "samples", s.dropped)
			s.dropped = 0
		}
	default:
		if s.dropped == 0 {
			s.log.Warn("recogniser is behind; dropping audio")
		}
		s.dropped += len(pcm)
	}
	return nil
}

// Recv returns the next event. After Close it returns the remaining events
// and then io.EOF; when a failure or the context broke the stream it returns
// that error after the events before it.
func (s *sttStream) Recv() (stt.Event, error) {
	for {
		s.evMu.Lock()
		if len(s.events) > 0 {
			e := s.events[0]
			s.events = s.events[1:]
			s.evMu.Unlock()
			return e, nil
		}
		if s.end != nil {
			err := s.end
			s.evMu.Unlock()
			return stt.Event{}, err
		}
		changed := s.changed
		s.evMu.Unlock()
		<-changed
	}
}

// Close ends the input, waits until the utterance in progress and those
// queued have been recognised (at most closeTimeout), and releases the
// stream. Recv then returns the remaining events and io.EOF.
func (s *sttStream) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.in)
	}
	s.mu.Unlock()
	timer := time.NewTimer(closeTimeout)
	defer timer.Stop()
	select {
	case <-s.finished:
	case <-timer.C:
		s.log.Warn("recognition did not finish in time; abandoning it", "timeout", closeTimeout)
		s.cancel()
		<-s.finished
	}
	s.cancel()
	return nil
}

// segment is the goroutine that runs the VAD over the written audio and
// cuts it into utterances for recognize.
func (s *sttStream) segment() {
	defer close(s.utts)
	for {
		select {
		case pcm, ok := <-s.in:
			if !ok {
				s.seg.flush()
				return
			}
			s.seg.write(pcm)
		case <-s.ctx.Done():
			return
		}
	}
}

// speechStarted is the segmenter's callback at the start of speech.
func (s *sttStream) speechStarted(start time.Duration) {
	s.push(stt.Event{Type: stt.SpeechStarted, Start: start})
}

// utteranceDone is the segmenter's callback with a finished utterance.
func (s *sttStream) utteranceDone(u utterance) {
	select {
	case s.utts <- u:
	case <-s.ctx.Done():
	}
}

// recognize is the goroutine that recognises the utterances one at a time,
// in order. It ends the stream when segment has ended and the utterances are
// done.
func (s *sttStream) recognize() {
	defer close(s.finished)
	defer s.rec.removeFiles()
	for u := range s.utts {
		if s.ctx.Err() != nil {
			continue // drain, so that segment is never stuck
		}
		started := time.Now()
		text, err := s.rec.recognize(s.ctx, u.pcm)
		if err != nil {
			s.fail(err)
			continue
		}
		s.log.Debug("utterance recognised", "audio", u.end-u.start, "elapsed", time.Since(started), "empty", text == "")
		if text != "" {
			s.push(stt.Event{Type: stt.Final, Text: text, SpeechFinal: true, Start: u.start, End: u.end})
		}
	}
	s.finish()
}

// fail records the first failure not caused by the stream's own ending and
// stops the work.
func (s *sttStream) fail(err error) {
	s.mu.Lock()
	if s.failure == nil && s.ctx.Err() == nil {
		s.failure = err
		s.log.Warn("recognition failed", "err", err)
	}
	s.mu.Unlock()
	s.cancel()
}

// finish sets the error Recv returns after the last event.
func (s *sttStream) finish() {
	s.mu.Lock()
	end := s.failure
	if end == nil {
		end = io.EOF
		if err := s.parent.Err(); err != nil && !s.closed {
			end = fmt.Errorf("local stt: %w", err)
		}
	}
	s.mu.Unlock()
	s.evMu.Lock()
	s.end = end
	s.notify()
	s.evMu.Unlock()
}

// push appends an event for Recv.
func (s *sttStream) push(e stt.Event) {
	s.evMu.Lock()
	s.events = append(s.events, e)
	s.notify()
	s.evMu.Unlock()
}

// notify wakes the Recv callers waiting; s.evMu is held.
func (s *sttStream) notify() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Package consent runs the recording-consent prompt at the start of an
// inbound phone call (spec §8.7, §12.8): the assistant's TTS says the consent
// message, the caller presses 1 to agree or 2 to decline, and without a key
// the message is repeated once before the call ends.
//
// A Prompt is one call's prompt. It is the call's media source (ReadFrame,
// Wake) and DTMF sink while Run decides; the caller starts the conversation
// only after Run returned Agreed, so nothing reaches speech-to-text, the model
// or the recorder before consent.
//
// Goroutines: Run starts one goroutine that synthesizes the message and waits
// for it before returning. ReadFrame and DTMF run on the media goroutines and
// only take a mutex that is never held across I/O.
package consent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/tts"
)

// Decision is how the consent prompt ended. The zero Decision is none of
// the constants: Run returns it with an error.
type Decision uint8

const (
	// Agreed: the caller pressed 1; the conversation (and recording) starts.
	Agreed Decision = iota + 1
	// Declined: the caller pressed 2; the call ends at once.
	Declined
	// NoAnswer: no key after the message and its repeats; the call ends.
	NoAnswer
)

func (d Decision) String() string {
	switch d {
	case Agreed:
		return "agreed"
	case Declined:
		return "declined"
	case NoAnswer:
		return "no_answer"
	}
	return "undecided"
}

// Keys the caller presses.
const (
	keyAgree   = '1'
	keyDecline = '2'
)

// sampleRate is the rate of the call's frames, which the TTS must return.
const sampleRate = 8000

// Defaults of Config.
const (
	DefaultWait    = 10 * time.Second
	DefaultRepeats = 1
)

// Config configures one call's prompt.
type Config struct {
	// Message is what is said (recording_consent.message).
	Message string
	// TTS synthesizes Message with Voice: the assistant's own provider.
	TTS tts.Provider
	// Voice is the assistant's voice settings. SampleRate must be 8000 (the
	// call's frame rate); 0 means 8000.
	Voice tts.Config
	// Wait is how long after the message has been played a key is awaited
	// before it is repeated or the prompt gives up; 0 means DefaultWait.
	Wait time.Duration
	// Repeats is how many extra times the message is said when no key
	// comes; 0 means DefaultRepeats, negative means none.
	Repeats int
	// Logger receives debug events; nil discards them.
	Logger *slog.Logger
}

// Prompt plays the consent message and listens for the caller's key. Its
// ReadFrame, Wake and DTMF methods make it a media source, waker and DTMF
// sink; Run drives it. Every method may be called before, during and after
// Run; Run runs at most once.
type Prompt struct {
	cfg    Config
	log    *slog.Logger
	wake   chan struct{} // to the media sender: audio is ready after silence
	signal chan struct{} // to Run: a key was decided or the message ended

	mu       sync.Mutex
	audio    []int16  // the message, as far as synthesized; replayed as is
	complete bool     // audio holds the whole message
	pos      int      // samples of audio handed out in this round
	playing  bool     // a round of the message is being said
	fresh    bool     // this round has not handed out audio yet
	idle     bool     // the last ReadFrame returned false (silence was sent)
	ended    bool     // a round has been played to its end; Run consumes it
	decision Decision // from a key; zero until 1 or 2 is pressed
	ran      bool     // Run has started
	done     bool     // Run has returned: silence and no keys from now on
}

// New returns a prompt for cfg with defaults filled in. Nothing happens
// until Run, but keys pressed meanwhile are kept.
func New(cfg Config) *Prompt {
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultWait
	}
	if cfg.Repeats == 0 {
		cfg.Repeats = DefaultRepeats
	} else if cfg.Repeats < 0 {
		cfg.Repeats = 0
	}
	if cfg.Voice.SampleRate == 0 {
		cfg.Voice.SampleRate = sampleRate
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Prompt{
		cfg:     cfg,
		log:     cfg.Logger,
		wake:    make(chan struct{}, 1),
		signal:  make(chan struct{}, 1),
		playing: true,
		fresh:   true,
		idle:    true,
	}
}

// ReadFrame implements the media source: it fills frame with the next part
// of the message and reports whether it did; false means silence (nothing
// synthesized yet, the wait after the message, or a decision made). It
// never blocks.
func (p *Prompt) ReadFrame(frame []int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done || p.decision != 0 || !p.playing || p.pos >= len(p.audio) {
		p.idle = true
		return false
	}
	n := copy(frame, p.audio[p.pos:])
	clear(frame[n:])
	p.pos += n
	p.idle, p.fresh = false, false
	if p.complete && p.pos == len(p.audio) {
		p.endRound()
	}
	return true
}

// Wake implements the media waker: it is signalled when audio becomes
// ready after silence (the message's first audio, the repeat, audio after
// an underrun), so the sender can send it at once.
func (p *Prompt) Wake() <-chan struct{} { return p.wake }

// DTMF implements the media DTMF sink. 1 agrees and 2 declines, whenever
// pressed (before Run too); the message stops at once. Other keys, and keys
// after a decision, are ignored. It never blocks.
func (p *Prompt) DTMF(digit rune) {
	decided := false
	p.mu.Lock()
	if (digit == keyAgree || digit == keyDecline) && p.decision == 0 && !p.done {
		p.decision = Agreed
		if digit == keyDecline {
			p.decision = Declined
		}
		decided = true
	}
	p.mu.Unlock()
	if !decided {
		p.log.Debug("consent key ignored", "digit", string(digit))
		return
	}
	notify(p.signal)
}

// Run says the message and waits for the caller's decision. It returns
// Agreed or Declined as soon as 1 or 2 is pressed (at once when pressed
// before Run), NoAnswer after the message and its repeats each went
// unanswered for Config.Wait, ctx's error when ctx ends (hang-up), and an
// error when the message cannot be synthesized. The message is synthesized
// once and replayed for a repeat. Run returns only after the goroutine it
// started has ended; from then on ReadFrame returns false.
func (p *Prompt) Run(ctx context.Context) (Decision, error) {
	p.mu.Lock()
	if p.ran {
		p.mu.Unlock()
		return 0, errors.New("consent prompt run twice")
	}
	p.ran = true
	p.mu.Unlock()
	defer p.finish()

	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if d := p.decided(); d != 0 {
		p.log.Debug("consent decided before the message", "decision", d)
		return d, nil
	}
	if strings.TrimSpace(p.cfg.Message) == "" {
		return 0, errors.New("consent message is empty")
	}
	if p.cfg.TTS == nil {
		return 0, errors.New("consent prompt has no TTS provider")
	}
	if p.cfg.Voice.SampleRate != sampleRate {
		return 0, fmt.Errorf("consent TTS sample rate %d Hz, want the call's %d Hz", p.cfg.Voice.SampleRate, sampleRate)
	}

	sctx, stop := context.WithCancel(ctx)
	synth := make(chan error, 1)
	go func() { synth <- p.synthesize(sctx) }()
	defer func() {
		stop()
		if synth != nil {
			<-synth
		}
	}()

	timer := time.NewTimer(p.cfg.Wait)
	timer.Stop()
	defer timer.Stop()
	var waiting <-chan time.Time // the timer's channel while a wait runs
	repeats := p.cfg.Repeats
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case err := <-synth:
			synth = nil
			if err != nil && p.decided() == 0 {
				if ctx.Err() != nil {
					return 0, ctx.Err()
				}
				return 0, fmt.Errorf("synthesize the consent message: %w", err)
			}
		case <-p.signal:
		case <-waiting:
			waiting = nil
			if p.decided() != 0 {
				break
			}
			if repeats == 0 {
				p.log.Debug("consent not given", "wait", p.cfg.Wait)
				return NoAnswer, nil
			}
			repeats--
			p.log.Debug("consent message repeated", "wait", p.cfg.Wait)
			p.replay()
		}
		if d := p.decided(); d != 0 {
			p.log.Debug("consent decided", "decision", d)
			return d, nil
		}
		if p.takeEnded() {
			timer.Reset(p.cfg.Wait)
			waiting = timer.C
		}
	}
}

// synthesize opens one TTS stream, says the message and collects its audio.
func (p *Prompt) synthesize(ctx context.Context) error {
	s, err := p.cfg.TTS.Open(ctx, p.cfg.Voice)
	if err != nil {
		return fmt.Errorf("open tts stream: %w", err)
	}
	stopClose := context.AfterFunc(ctx, func() { _ = s.Close() })
	defer stopClose()
	defer s.Close()
	if err := s.Send(p.cfg.Message); err != nil {
		return fmt.Errorf("send text: %w", err)
	}
	if err := s.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	for {
		c, err := s.Recv()
		if errors.Is(err, io.EOF) {
			if !p.synthesized() {
				return errors.New("the stream ended without audio")
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("receive audio: %w", err)
		}
		p.push(c.PCM)
	}
}

// push appends synthesized audio, waking the sender when it was starved.
func (p *Prompt) push(pcm []int16) {
	if len(pcm) == 0 {
		return
	}
	p.mu.Lock()
	starved := p.playing && p.pos == len(p.audio) && (p.fresh || p.idle)
	p.audio = append(p.audio, pcm...)
	p.mu.Unlock()
	if starved {
		notify(p.wake)
	}
}

// synthesized marks the message complete and reports whether it has any
// audio. When everything was already handed out, the round ends now.
func (p *Prompt) synthesized() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.audio) == 0 {
		return false
	}
	p.complete = true
	if p.playing && p.pos == len(p.audio) {
		p.endRound()
	}
	return true
}

// endRound ends the current round and tells Run; p.mu is held.
func (p *Prompt) endRound() {
	p.playing, p.ended = false, true
	notify(p.signal)
}

// replay starts the (complete, non-empty) message again from its beginning.
func (p *Prompt) replay() {
	p.mu.Lock()
	p.playing, p.fresh, p.pos = true, true, 0
	p.mu.Unlock()
	notify(p.wake)
}

// takeEnded reports (once) that a round has been played to its end.
func (p *Prompt) takeEnded() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.ended
	p.ended = false
	return e
}

func (p *Prompt) decided() Decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.decision
}

// finish silences the prompt for good when Run returns and lets the audio
// go.
func (p *Prompt) finish() {
	p.mu.Lock()
	p.done, p.playing, p.audio = true, false, nil
	p.mu.Unlock()
}

// notify sends a coalesced signal without blocking.
func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

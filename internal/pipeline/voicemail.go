package pipeline

import (
	"context"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/stt"
	"github.com/parley-voice/parley/internal/voicemail"
)

// Voicemail is voicemail detection on an outbound call (spec §12.2).
type Voicemail struct {
	// Message is left on the machine after its beep; empty hangs up
	// silently.
	Message string
	// Detect tunes the detector; the zero value is voicemail.DefaultConfig.
	Detect voicemail.Config
}

// vmPhase is where voicemail detection stands.
type vmPhase uint8

const (
	vmListening vmPhase = iota // first message held back, first utterance being classified
	vmMachine                  // a machine: waiting for its beep or the end of its greeting
	vmDone                     // decided and acted on (or off)
)

// vmWatch runs a voicemail.Detector on the answering side: frames from the
// media receive goroutine, transcripts from Run's, hence the lock. phase
// belongs to Run's goroutine.
type vmWatch struct {
	cfg   Voicemail
	mu    sync.Mutex
	det   *voicemail.Detector
	off   bool // under mu: the detector needs no more frames
	phase vmPhase
}

// newVoicemailWatch returns nil when detection is off.
func newVoicemailWatch(cfg *Voicemail) *vmWatch {
	if cfg == nil {
		return nil
	}
	dc := cfg.Detect
	if dc == (voicemail.Config{}) {
		dc = voicemail.DefaultConfig()
	}
	return &vmWatch{cfg: *cfg, det: voicemail.New(dc)}
}

// voicemailFrame feeds one frame of the answering side to the detector
// (media receive goroutine) and wakes Run when it decided or is ready.
func (c *Conversation) voicemailFrame(frame []int16) {
	w := c.vm
	if w == nil {
		return
	}
	w.mu.Lock()
	if w.off {
		w.mu.Unlock()
		return
	}
	ev := w.det.Frame(frame)
	w.off = w.det.Done()
	w.mu.Unlock()
	if ev != voicemail.NoEvent {
		c.postNow(event{kind: evVoicemail})
	}
}

// voicemailHolds reports that the conversation is waiting on the detector:
// no first message, no turns, no silence checks yet.
func (c *Conversation) voicemailHolds() bool {
	return c.vm != nil && c.vm.phase != vmDone
}

// voicemailSTT takes the answering side's transcripts while the detector
// holds the conversation; the call's turns start after a person answered.
func (c *Conversation) voicemailSTT(ctx context.Context, ev stt.Event, at time.Time) (call.EndReason, bool) {
	w := c.vm
	switch w.phase {
	case vmListening:
		if ev.Type != stt.Interim && ev.Type != stt.Final {
			return "", false
		}
		w.mu.Lock()
		late := w.det.Decision() == voicemail.HumanAnswered // decided on audio; its event is queued
		if !late {
			w.det.Transcript(ev.Text, ev.Type == stt.Final)
		}
		w.mu.Unlock()
		reason, done := c.onVoicemail(ctx)
		if late {
			c.onSTT(ctx, ev, at) // a person's words, for the conversation
		}
		return reason, done
	case vmMachine:
		// The rest of the greeting: kept in the transcript, never answered.
		if ev.Type == stt.Final && ev.Text != "" {
			c.deps.Recorder.Message(Message{Role: llm.User, Content: ev.Text, At: at})
		}
	}
	return "", false
}

// onVoicemail acts on the detector's state: a person gets the first
// message and the conversation; a machine gets the message once its beep
// or greeting is over, and the call ends with end_reason voicemail.
func (c *Conversation) onVoicemail(ctx context.Context) (call.EndReason, bool) {
	w := c.vm
	if w == nil || w.phase == vmDone {
		return "", false
	}
	w.mu.Lock()
	dec, cue, text, after := w.det.Decision(), w.det.Cue(), w.det.Text(), w.det.DecidedAfter()
	ready, readyCue, heard := w.det.Done(), w.det.ReadyCue(), w.det.Heard()
	w.mu.Unlock()
	switch {
	case dec == voicemail.HumanAnswered:
		w.phase = vmDone
		c.log.Info("voicemail detection: a person answered", "cue", cue, "after", after)
		if text != "" {
			c.deps.Recorder.Message(Message{Role: llm.User, Content: text, At: time.Now()})
			c.history = append(c.history, llm.Message{Role: llm.User, Content: text})
		}
		if c.cfg.FirstMessage != "" && c.cur == nil && !c.closing {
			c.startReply(ctx, kindFirst, c.cfg.FirstMessage, time.Time{})
		}
	case dec == voicemail.MachineAnswered && w.phase == vmListening:
		w.phase = vmMachine
		c.log.Info("voicemail detection: an answering machine", "cue", cue, "after", after)
		if text != "" {
			c.deps.Recorder.Message(Message{Role: llm.User, Content: text, At: time.Now()})
		}
		if ready {
			return c.onVoicemail(ctx)
		}
	case w.phase == vmMachine && ready:
		w.phase = vmDone
		c.log.Info("voicemail detection: leaving the message", "cue", readyCue, "heard", heard, "message", w.cfg.Message != "")
		if w.cfg.Message == "" || c.closing {
			return call.EndVoicemail, true
		}
		c.closeWith(ctx, w.cfg.Message, call.EndVoicemail)
	}
	return "", false
}

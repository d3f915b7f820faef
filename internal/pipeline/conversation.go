package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-voice/parley/internal/audio"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/playout"
	"github.com/parley-voice/parley/internal/silence"
	"github.com/parley-voice/parley/internal/stt"
)

// DefaultApology is spoken when a provider fails and Config.Apology is empty.
const DefaultApology = "I'm sorry, I'm having technical difficulties. Please call again later."

type eventKind uint8

const (
	evSpeechStart eventKind = iota + 1
	evSpeechEnd
	evSTT
	evSTTFailed
	evFirstToken
	evTTSSent
	evFirstAudio
	evReplyText
	evAudioDone
	evReplyFailed
	evCommand
	evDTMF
	evVoiced    // the caller's speech reached interruption_min_duration
	evVoicemail // the voicemail detector decided or is ready (voicemail.go)
)

type event struct {
	kind   eventKind
	at     time.Time
	since  time.Time
	reply  int
	stt    stt.Event
	err    error
	result replyResult
	cmd    call.Command
	ack    chan error
	digit  rune
}

// replyKind says what a reply is for.
type replyKind uint8

const (
	kindAnswer  replyKind = iota // a model reply to the caller
	kindFirst                    // first_message
	kindClosing                  // end_call_message or the apology: not interruptible
	kindSay                      // verbatim text from call control
)

type reply struct {
	id     int
	kind   replyKind
	cancel context.CancelFunc
	text   string // what it says, once known
	result *replyResult
	audio  bool // all audio received
	paused bool // false-interruption candidate
	// endAfter ends the call with this reason once the reply has played.
	endAfter call.EndReason
	m        TurnMetrics
	t0       time.Time // the turn's end
	finalAt  time.Time
	ttsSent  time.Time
	firstPkt bool
}

// Conversation is one call's pipeline. Create it with New, give it to the
// media session as Source and Sink, then Run it.
type Conversation struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	play *playout.Queue

	events chan event
	stt    atomic.Pointer[sttHolder]
	vad    VAD            // media receive goroutine only
	meter  voiceMeter     // media receive goroutine only
	wg     sync.WaitGroup // Run's helpers: STT reader, replies
	// bg holds detached tool calls, which may outlive Run (Background).
	bg sync.WaitGroup

	// Run's goroutine only:
	history   []llm.Message
	cur       *reply
	nextID    int
	turns     int
	turn      strings.Builder
	uttDone   bool
	speaking  bool
	speechAt  time.Time
	lastVoice time.Time
	finalAt   time.Time
	words     int // words heard since speech started (interim or final)
	endpoint  *time.Timer
	falseT    *time.Timer
	closing   bool  // the call is ending: no interruptions, commands or keys
	failErr   error // the provider failure being apologised for
	// transferTo is where an ending transfer goes.
	transferTo string
	// trigger asks for a reply once the current one has played.
	trigger bool
	keys    strings.Builder // keypad digits not yet committed
	keysT   *time.Timer
	sil     *silence.Watch // nil: silence handling off (silence.go)
	vm      *vmWatch       // nil: voicemail detection off (voicemail.go)

	// voicedEnough: the caller's speech has had interruption_min_duration
	// of voiced frames.
	voicedEnough bool
}

type sttHolder struct{ s stt.Stream }

// New prepares a conversation.
func New(cfg Config, deps Deps) *Conversation {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Apology == "" {
		cfg.Apology = DefaultApology
	}
	c := &Conversation{cfg: cfg, deps: deps, log: deps.Logger, play: playout.New(), events: make(chan event, 256), vad: deps.VAD, meter: newVoiceMeter(cfg.Turn.InterruptionMinDur)}
	if c.vad == nil {
		c.vad = audio.NewVAD(audio.DefaultVADConfig())
	}
	c.history = append(c.history, cfg.System...)
	c.vm = newVoicemailWatch(cfg.Voicemail)
	return c
}

// ReadFrame implements the media Source: the next 20 ms of reply audio.
func (c *Conversation) ReadFrame(frame []int16) bool { return c.play.ReadFrame(frame) }

// Wake implements the media waker: a reply's first audio is ready, so the
// sender need not wait for its next tick.
func (c *Conversation) Wake() <-chan struct{} { return c.play.Wake() }

// WriteFrame implements the media Sink: one 20 ms frame of the caller.
func (c *Conversation) WriteFrame(frame []int16) {
	if h := c.stt.Load(); h != nil {
		if err := h.s.Write(frame); err != nil {
			c.log.Debug("stt write failed", "error", err)
		}
	}
	// The detector reports speech some frames after it began or ended;
	// date the events back to the frames themselves.
	r := c.vad.Process(frame)
	startLag, endLag := c.vad.Delays()
	switch r.Event {
	case audio.SpeechStart:
		c.postNow(event{kind: evSpeechStart, at: time.Now().Add(-frames(startLag))})
	case audio.SpeechEnd:
		c.postNow(event{kind: evSpeechEnd, at: time.Now().Add(-frames(endLag))})
	}
	if c.meter.frame(r, startLag) {
		c.postNow(event{kind: evVoiced})
	}
	c.voicemailFrame(frame)
}

// frames is the duration of n 20 ms frames.
func frames(n int) time.Duration { return time.Duration(n) * 20 * time.Millisecond }

// postNow queues an event from a goroutine that must not block.
func (c *Conversation) postNow(ev event) {
	select {
	case c.events <- ev:
	default:
		c.log.Warn("conversation event queue full; event dropped", "kind", ev.kind)
	}
}

// post queues an event from a worker, giving up when ctx ends.
func (c *Conversation) post(ctx context.Context, ev event) {
	select {
	case c.events <- ev:
	case <-ctx.Done():
	}
}

// Background waits for the detached tool calls the conversation started
// (asynchronous tools, and tools the model called alongside a hang-up or
// transfer), each bounded by the tool timeout. Run does not wait for them,
// so a call ends when it ends; the call's owner waits here before closing
// what the tools use.
func (c *Conversation) Background() { c.bg.Wait() }

// Run holds the conversation until the call ends. It returns how the
// conversation ended the call, with an empty Reason when ctx ended it.
func (c *Conversation) Run(ctx context.Context) (Ending, error) {
	reason, err := c.run(ctx)
	e := Ending{Reason: reason}
	if reason == call.EndTransferred {
		e.TransferTo = c.transferTo
	}
	return e, err
}

func (c *Conversation) run(ctx context.Context) (call.EndReason, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		if c.cur != nil {
			c.cur.cancel()
		}
		if h := c.stt.Swap(nil); h != nil {
			h.s.Close()
		}
		c.wg.Wait()
		for _, t := range []*time.Timer{c.endpoint, c.falseT, c.keysT} {
			if t != nil {
				t.Stop()
			}
		}
	}()
	c.endpoint, c.falseT, c.keysT = stopped(), stopped(), stopped()
	c.sil = silence.NewWatch(c.cfg.Silence)
	defer c.sil.Stop()

	var maxDur <-chan time.Time
	if c.cfg.MaxDuration > 0 {
		t := time.NewTimer(c.cfg.MaxDuration)
		defer t.Stop()
		maxDur = t.C
	}
	s, err := c.deps.Providers.STT.Open(ctx, c.cfg.STT)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil // the call ended (hang-up) while the stream was opening
		}
		return c.failEarly(ctx, call.EndSTTError, fmt.Errorf("open stt: %w", err))
	}
	c.stt.Store(&sttHolder{s})
	c.wg.Add(1)
	go c.readSTT(ctx, s)

	if c.cfg.FirstMessage != "" && !c.voicemailHolds() {
		c.startReply(ctx, kindFirst, c.cfg.FirstMessage, time.Time{})
	}
	for {
		c.silenceSync()
		select {
		case <-ctx.Done():
			return "", nil
		case <-c.sil.C():
			c.onSilence(ctx)
		case <-maxDur:
			return call.EndMaxDuration, nil
		case <-c.endpoint.C:
			c.commitTurn(ctx)
		case <-c.falseT.C:
			c.resumeAfterFalseInterruption()
		case <-c.keysT.C:
			c.commitKeys(ctx)
		case <-c.play.Signal():
			if reason, done := c.onPlayout(ctx); done {
				return reason, c.failErr
			}
		case ev := <-c.events:
			c.silenceObserve(ev)
			if reason, err, done := c.handle(ctx, ev); done {
				if err == nil {
					err = c.failErr
				}
				return reason, err
			}
		}
	}
}

func stopped() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func (c *Conversation) readSTT(ctx context.Context, s stt.Stream) {
	defer c.wg.Done()
	for {
		ev, err := s.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				c.post(ctx, event{kind: evSTTFailed, err: err})
			}
			return
		}
		c.post(ctx, event{kind: evSTT, stt: ev, at: time.Now()})
	}
}

// handle applies one event; done reports that the call must end.
func (c *Conversation) handle(ctx context.Context, ev event) (call.EndReason, error, bool) {
	switch ev.kind {
	case evSpeechStart:
		c.speaking, c.speechAt, c.words, c.voicedEnough = true, ev.at, 0, false
		c.endpoint.Stop()
		c.armFalseInterruption() // off while the caller speaks
	case evVoiced:
		c.voicedEnough = true
		c.checkInterruption(ctx)
	case evSpeechEnd:
		c.speaking, c.lastVoice = false, ev.at
		c.checkInterruption(ctx)
		c.armFalseInterruption()
		c.scheduleEndpoint(ctx)
	case evSTT:
		if c.voicemailHolds() {
			reason, done := c.voicemailSTT(ctx, ev.stt, ev.at)
			return reason, nil, done
		}
		c.onSTT(ctx, ev.stt, ev.at)
	case evVoicemail:
		reason, done := c.onVoicemail(ctx)
		return reason, nil, done
	case evSTTFailed:
		c.log.Warn("stt failed", "error", ev.err)
		return c.fail(ctx, call.EndSTTError, ev.err)
	case evCommand:
		reason, err := c.command(ctx, ev.cmd)
		ev.ack <- err
		if reason != "" {
			return reason, nil, true
		}
		return "", nil, false
	case evDTMF:
		c.onKey(ctx, ev.digit)
		return "", nil, false
	}
	r := c.cur
	if r == nil || ev.reply != r.id {
		return "", nil, false // no reply events, or a stale reply's
	}
	switch ev.kind {
	case evFirstToken:
		r.m.LLMFirstToken = ev.at.Sub(ev.since)
	case evTTSSent:
		if r.ttsSent.IsZero() {
			r.ttsSent = ev.at
		}
	case evFirstAudio:
		if !r.ttsSent.IsZero() {
			r.m.TTSFirstAudio = ev.at.Sub(r.ttsSent)
		}
	case evReplyText:
		res := ev.result
		r.result, r.text = &res, res.text
		if res.endCall && r.endAfter == "" {
			r.endAfter = call.EndAssistantHangup
		}
		if res.transfer != "" && r.endAfter == "" {
			r.endAfter, c.transferTo = call.EndTransferred, res.transfer
		}
		if res.endCall || res.transfer != "" {
			// The model hung up or handed the caller on: the rest of
			// this reply is a goodbye, said in full like a closing, so
			// talking over it cannot drop the hang-up or transfer.
			c.closing = true
		}
	case evAudioDone:
		r.audio = true
		if reason, done := c.onPlayout(ctx); done {
			return reason, nil, true
		}
	case evReplyFailed:
		var re *replyError
		reason := call.EndError
		if errors.As(ev.err, &re) {
			reason = map[stage]call.EndReason{stageLLM: call.EndLLMError, stageTTS: call.EndTTSError}[re.stage]
		}
		c.log.Warn("reply failed", "reason", reason, "error", ev.err)
		return c.fail(ctx, reason, ev.err)
	}
	return "", nil, false
}

// onSTT folds a transcript event into the caller's turn.
func (c *Conversation) onSTT(ctx context.Context, ev stt.Event, at time.Time) {
	switch ev.Type {
	case stt.Interim:
		c.words = max(c.words, countWords(ev.Text)+countWords(c.turn.String()))
		c.checkInterruption(ctx)
	case stt.Final:
		c.words = max(c.words, countWords(ev.Text)+countWords(c.turn.String()))
		c.checkInterruption(ctx)
		if c.cur != nil {
			return // the agent is talking and this did not interrupt: a backchannel
		}
		if t := strings.TrimSpace(ev.Text); t != "" {
			if c.turn.Len() > 0 {
				c.turn.WriteByte(' ')
			}
			c.turn.WriteString(t)
			c.finalAt = at
		}
		if ev.SpeechFinal {
			c.uttDone = true
		}
		c.scheduleEndpoint(ctx)
	case stt.UtteranceEnd:
		if c.cur == nil {
			c.uttDone = true
			c.scheduleEndpoint(ctx)
		}
	case stt.SpeechStarted:
	}
}

// unfinished reports whether a transcript sounds cut off mid-thought.
func unfinished(t string) bool {
	t = strings.TrimSpace(strings.ToLower(t))
	if t == "" || strings.HasSuffix(t, ",") {
		return true
	}
	f := strings.Fields(t)
	switch strings.Trim(f[len(f)-1], ".!?") {
	case "and", "so", "but", "or", "uh", "um", "because", "the", "a", "to":
		return true
	}
	return false
}

// scheduleEndpoint arms the end-of-turn timer (turn-taking.md).
func (c *Conversation) scheduleEndpoint(ctx context.Context) {
	c.endpoint.Stop()
	if c.cur != nil || c.speaking || c.turn.Len() == 0 {
		return
	}
	base := c.lastVoice
	if base.IsZero() {
		base = c.finalAt
	}
	delay := c.cfg.Turn.EndpointingMaxDelay
	if c.uttDone && !unfinished(c.turn.String()) {
		delay = c.cfg.Turn.EndpointingMinDelay
	}
	wait := time.Until(base.Add(delay))
	if wait <= 0 {
		c.commitTurn(ctx)
		return
	}
	c.endpoint.Reset(wait)
}

// commitTurn ends the caller's turn and starts the reply.
func (c *Conversation) commitTurn(ctx context.Context) {
	text := strings.TrimSpace(c.turn.String())
	if text == "" || c.cur != nil || c.speaking {
		return
	}
	now := time.Now()
	c.turn.Reset()
	c.uttDone = false
	c.deps.Recorder.Message(Message{Role: llm.User, Content: text, At: now})
	c.history = append(c.history, llm.Message{Role: llm.User, Content: text})
	c.startReply(ctx, kindAnswer, "", now)
	r := c.cur
	if !c.lastVoice.IsZero() {
		r.m.Endpointing = now.Sub(c.lastVoice)
	}
	r.finalAt = c.finalAt
}

func (c *Conversation) startReply(ctx context.Context, kind replyKind, fixed string, t0 time.Time) {
	c.nextID++
	rctx, cancel := context.WithCancel(ctx)
	r := &reply{id: c.nextID, kind: kind, cancel: cancel, t0: t0}
	if kind == kindAnswer {
		c.turns++
		r.m.Turn = c.turns
	}
	if fixed != "" {
		r.text = fixed
	}
	c.cur = r
	c.play.Start(r.id)
	job := replyJob{id: r.id, fixed: fixed}
	if fixed == "" {
		job.messages = append([]llm.Message(nil), c.history...)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.runReply(rctx, job)
	}()
}

// interruptible reports whether caller speech may cut the current reply:
// not once the call is closing (a closing reply is only started with
// closing set, and a model reply that ends the call sets it).
func (c *Conversation) interruptible() bool {
	return c.cur != nil && !c.closing
}

// interrupt stops the reply at once and keeps only what the caller heard.
func (c *Conversation) interrupt() {
	r := c.cur
	c.falseT.Stop()
	played, queued := c.play.Stop()
	r.cancel()
	c.cur = nil
	text := r.text
	if text == "" && r.result != nil {
		text = r.result.text
	}
	// Estimate what the audio played covers: the whole text when all of its
	// audio had arrived, else text at a typical 15 characters per second.
	total := queued
	if !r.audio {
		total = max(queued, len(text)*SampleRate/15)
	}
	heard := ""
	if total > 0 {
		heard = SpokenPrefix(text, float64(played)/float64(total))
	}
	c.settle(r, heard, true)
	c.log.Debug("caller interrupted", "reply", r.id, "played_ms", played/8, "heard", len(heard))
}

// onPlayout reacts to the playout queue: a first frame sent or all played.
func (c *Conversation) onPlayout(ctx context.Context) (call.EndReason, bool) {
	r := c.cur
	if r == nil {
		return "", false
	}
	st := c.play.State()
	if st.Reply != r.id {
		return "", false
	}
	if !st.FirstAt.IsZero() && !r.firstPkt {
		r.firstPkt = true
		if !r.t0.IsZero() {
			r.m.FirstPacket = st.FirstAt.Sub(r.t0)
		}
		if !r.finalAt.IsZero() {
			r.m.FinalToFirstPacket = st.FirstAt.Sub(r.finalAt)
		}
	}
	if st.DoneAt.IsZero() || !r.audio || r.result == nil {
		return "", false
	}
	// Played in full.
	c.cur = nil
	c.falseT.Stop()
	c.settle(r, r.text, false)
	if r.endAfter == "" {
		if c.trigger {
			c.trigger = false
			c.startReply(ctx, kindAnswer, "", time.Now())
			return "", false
		}
		c.scheduleEndpoint(ctx)
		return "", false
	}
	if r.kind != kindClosing && r.endAfter == call.EndAssistantHangup && c.cfg.EndCallMessage != "" {
		c.closeWith(ctx, c.cfg.EndCallMessage, call.EndAssistantHangup)
		return "", false
	}
	return r.endAfter, true
}

// settle records a finished or interrupted reply.
func (c *Conversation) settle(r *reply, heard string, interrupted bool) {
	if r.result != nil {
		c.history = append(c.history, r.result.extra...)
	}
	if heard != "" {
		c.history = append(c.history, llm.Message{Role: llm.Assistant, Content: heard})
		c.deps.Recorder.Message(Message{Role: llm.Assistant, Content: heard, Interrupted: interrupted, At: time.Now()})
	}
	if r.kind == kindAnswer {
		r.m.Interrupted = interrupted
		c.deps.Recorder.Turn(r.m)
	}
}

// fail handles a provider failure: apologise (when TTS still works) and end.
func (c *Conversation) fail(ctx context.Context, reason call.EndReason, err error) (call.EndReason, error, bool) {
	if c.closing || reason == call.EndTTSError {
		return reason, err, true
	}
	c.closing = true
	c.failErr = err
	if c.cur != nil {
		c.play.Stop()
		c.cur.cancel()
		c.cur = nil
	}
	c.startReply(ctx, kindClosing, c.cfg.Apology, time.Time{})
	c.cur.endAfter = reason
	c.cur.result = &replyResult{text: c.cfg.Apology}
	return "", nil, false
}

// failEarly ends a conversation that could not start, apologising if TTS works.
func (c *Conversation) failEarly(ctx context.Context, reason call.EndReason, err error) (call.EndReason, error) {
	c.log.Warn("conversation could not start", "reason", reason, "error", err)
	if _, _, done := c.fail(ctx, reason, err); done {
		return reason, err
	}
	for {
		select {
		case <-ctx.Done():
			return reason, err
		case <-c.play.Signal():
			if r, done := c.onPlayout(ctx); done {
				return r, err
			}
		case ev := <-c.events:
			if ev.kind == evSpeechStart || ev.kind == evSpeechEnd {
				continue
			}
			if _, _, done := c.handle(ctx, ev); done {
				return reason, err
			}
		}
	}
}

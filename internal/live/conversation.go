package live

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

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/llm"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/playout"
	"github.com/parley-voice/parley/internal/realtime"
	"github.com/parley-voice/parley/internal/silence"
)

type eventKind uint8

const (
	evConnected     eventKind = iota + 1 // Connect returned: session or err
	evSession                            // ev from the session
	evSessionFailed                      // the session ended by itself
	evToolsDone                          // a tool round finished
	evApology                            // the apology's audio is all queued, or failed
	evCommand
	evDTMF
)

type event struct {
	kind    eventKind
	at      time.Time
	session realtime.Session
	ev      realtime.Event
	err     error
	reply   int
	results []realtime.ToolResult
	cmd     call.Command
	ack     chan error
	digit   rune
}

// replyKind says what a reply is for.
type replyKind uint8

const (
	kindAnswer  replyKind = iota // the model answering the caller
	kindFirst                    // first_message
	kindSay                      // text the model was asked to say (control, silence check)
	kindClosing                  // a goodbye or the apology: not interruptible, the call ends after it
)

// reply is what the assistant says between two turns of the caller: one
// or more responses of the model (tool rounds continue a reply), played
// through one playout reply.
type reply struct {
	id   int
	kind replyKind
	text strings.Builder // transcripts of its responses so far
	// items are the model's audio items in the order played, each with
	// the sample offset at which it starts in the reply.
	items []item
	// open: a response of this reply is being generated (audio or tool
	// calls may still come).
	open bool
	// tools: a tool round is running; the reply goes on after it.
	tools bool
	// finished: its audio is all queued (playout Finish).
	finished bool
	// endAfter ends the call with this reason once the reply has played.
	endAfter call.EndReason
	// heard is set when the caller interrupted it: the fraction of its
	// audio they heard, applied to the transcript once it is complete.
	heard float64
	// played and cutAt: the samples heard and when, for a reply cut while
	// its response was open (Conversation.cut).
	played int
	cutAt  time.Time
	m      pipeline.TurnMetrics
	t0     time.Time // the caller's turn ended (speech stopped)
	// audioAt is when its first audio arrived from the service.
	audioAt  time.Time
	firstPkt bool
	samples  int // audio received
}

type item struct {
	id    string
	start int // samples into the reply
}

// Conversation is one call's realtime conversation. Create it with New,
// give it to the media session as Source and Sink, then Run it.
type Conversation struct {
	cfg  Config
	deps Deps
	log  *slog.Logger
	play *playout.Queue

	events chan event
	// sess is the open session for WriteFrame (media receive goroutine).
	sess atomic.Pointer[sessionRef]
	// out runs session requests in order, off Run's goroutine.
	out *outbox
	wg  sync.WaitGroup // Run's helpers: reader, tool rounds, apology
	bg  sync.WaitGroup // detached tool calls, which may outlive Run

	// Run's goroutine only:
	session  realtime.Session
	nextID   int
	turns    int
	cur      *reply
	cut      *reply // interrupted while its response was open: waits for that response's end
	speaking bool
	// turnEnd is when the caller's last turn ended (speech stopped).
	turnEnd    time.Time
	closing    bool
	closeT     *time.Timer
	transferTo string
	trigger    bool // answer once the current reply has played
	keys       strings.Builder
	keysT      *time.Timer
	sil        *silence.Watch // nil: silence handling off
	failErr    error
}

type sessionRef struct{ s realtime.Session }

// New prepares a conversation.
func New(cfg Config, deps Deps) *Conversation {
	cfg.defaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Session.Tools = pipeline.ToolSpecs(cfg.Tools, cfg.EndCallTool, cfg.Transfers, deps.Keypad != nil)
	if cfg.Session.Logger == nil {
		cfg.Session.Logger = deps.Logger
	}
	return &Conversation{cfg: cfg, deps: deps, log: deps.Logger, play: playout.New(), events: make(chan event, 256)}
}

// ReadFrame implements the media Source: the next 20 ms of the model's
// audio.
func (c *Conversation) ReadFrame(frame []int16) bool { return c.play.ReadFrame(frame) }

// Wake implements the media waker.
func (c *Conversation) Wake() <-chan struct{} { return c.play.Wake() }

// WriteFrame implements the media Sink: one 20 ms frame of the caller,
// sent to the service, whose voice-activity detection hears it.
func (c *Conversation) WriteFrame(frame []int16) {
	ref := c.sess.Load()
	if ref == nil {
		return
	}
	if err := ref.s.SendAudio(append([]int16(nil), frame...)); err != nil {
		c.log.Debug("realtime audio not sent", "error", err)
	}
}

// DTMF implements the media DTMF sink: a key the caller pressed.
func (c *Conversation) DTMF(digit rune) {
	c.postNow(event{kind: evDTMF, digit: digit, at: time.Now()})
}

// Background waits for the detached tool calls the conversation started;
// Run does not wait for them.
func (c *Conversation) Background() { c.bg.Wait() }

func (c *Conversation) postNow(ev event) {
	select {
	case c.events <- ev:
	default:
		c.log.Warn("conversation event queue full; event dropped", "kind", ev.kind)
	}
}

func (c *Conversation) post(ctx context.Context, ev event) {
	select {
	case c.events <- ev:
	case <-ctx.Done():
	}
}

// Run holds the conversation until the call ends. It returns how the
// conversation ended the call, with an empty Reason when ctx ended it.
func (c *Conversation) Run(ctx context.Context) (pipeline.Ending, error) {
	reason, err := c.run(ctx)
	e := pipeline.Ending{Reason: reason}
	if reason == call.EndTransferred {
		e.TransferTo = c.transferTo
	}
	return e, err
}

func (c *Conversation) run(ctx context.Context) (call.EndReason, error) {
	ctx, cancel := context.WithCancel(ctx)
	c.closeT, c.keysT = stopped(), stopped()
	c.sil = silence.NewWatch(c.cfg.Silence)
	defer func() {
		cancel()
		if ref := c.sess.Swap(nil); ref != nil {
			ref.s.Close()
		}
		c.out.stop()
		c.wg.Wait()
		c.closeUnclaimed()
		c.settleAll()
		c.closeT.Stop()
		c.keysT.Stop()
		c.sil.Stop()
	}()
	var maxDur <-chan time.Time
	if c.cfg.MaxDuration > 0 {
		t := time.NewTimer(c.cfg.MaxDuration)
		defer t.Stop()
		maxDur = t.C
	}
	// The session connects while the loop runs, so commands and the first
	// message are taken at once; the outbox holds them until it is up.
	c.out = newOutbox(ctx, c.log)
	c.wg.Add(1)
	go c.connect(ctx)
	switch {
	case c.cfg.FirstMessage != "" && c.cfg.FirstMessageEnds:
		c.closeWith(c.cfg.FirstMessage, call.EndAssistantHangup)
	case c.cfg.FirstMessage != "":
		c.say(kindFirst, c.cfg.FirstMessage)
	}
	for {
		c.silenceSync()
		select {
		case <-ctx.Done():
			return "", nil
		case <-maxDur:
			return call.EndMaxDuration, nil
		case <-c.sil.C():
			c.onSilence()
		case <-c.keysT.C:
			c.commitKeys()
		case <-c.closeT.C:
			c.log.Warn("the goodbye did not play in time; ending the call")
			return c.closingReason(), c.failErr
		case <-c.play.Signal():
			if reason, done := c.onPlayout(); done {
				return reason, c.failErr
			}
		case ev := <-c.events:
			if reason, done := c.handle(ctx, ev); done {
				return reason, c.failErr
			}
		}
	}
}

func stopped() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

// connect opens the session and hands it to Run's goroutine.
func (c *Conversation) connect(ctx context.Context) {
	defer c.wg.Done()
	s, err := c.deps.Provider.Connect(ctx, c.cfg.Session)
	select {
	case c.events <- event{kind: evConnected, session: s, err: err}:
	case <-ctx.Done():
		if s != nil {
			s.Close()
		}
	}
}

// closeUnclaimed closes a session that connected as Run ended.
func (c *Conversation) closeUnclaimed() {
	for {
		select {
		case ev := <-c.events:
			if ev.kind == evConnected && ev.session != nil {
				ev.session.Close()
			}
		default:
			return
		}
	}
}

// onConnected starts the session, or fails the call when it could not
// connect.
func (c *Conversation) onConnected(ctx context.Context, s realtime.Session, err error) (call.EndReason, bool) {
	if err != nil {
		c.out.start(nil)
		if ctx.Err() != nil {
			return "", false
		}
		c.log.Warn("realtime session could not start", "error", err)
		return c.fail(ctx, fmt.Errorf("connect realtime session: %w", err))
	}
	c.session = s
	c.sess.Store(&sessionRef{s})
	c.out.start(s)
	c.wg.Add(1)
	go c.read(ctx, s)
	return "", false
}

// read moves the session's events to Run's goroutine.
func (c *Conversation) read(ctx context.Context, s realtime.Session) {
	defer c.wg.Done()
	for {
		ev, err := s.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) && ctx.Err() == nil {
				c.post(ctx, event{kind: evSessionFailed, err: err})
			}
			return
		}
		c.post(ctx, event{kind: evSession, ev: ev, at: time.Now()})
	}
}

// handle applies one event; done reports that the call must end.
func (c *Conversation) handle(ctx context.Context, ev event) (call.EndReason, bool) {
	switch ev.kind {
	case evConnected:
		return c.onConnected(ctx, ev.session, ev.err)
	case evSession:
		c.onSession(ctx, ev.ev, ev.at)
	case evSessionFailed:
		c.log.Warn("realtime session failed", "error", ev.err)
		if c.failErr == nil {
			return c.fail(ctx, ev.err)
		}
	case evToolsDone:
		return c.onToolsDone(ev)
	case evApology:
		if r := c.cur; r != nil && r.id == ev.reply {
			r.finished = true
			c.play.Finish(r.id)
			if ev.err != nil {
				c.log.Warn("the apology could not be spoken", "error", ev.err)
				return call.EndLLMError, true
			}
		}
	case evCommand:
		reason, err := c.command(ev.cmd)
		ev.ack <- err
		return reason, reason != ""
	case evDTMF:
		c.onKey(ev.digit)
	}
	return "", false
}

// onSession applies an event of the service.
func (c *Conversation) onSession(ctx context.Context, ev realtime.Event, at time.Time) {
	if c.failErr != nil {
		return // apologising: the session is done with
	}
	switch ev.Type {
	case realtime.SpeechStarted:
		c.speaking = true
		c.sil.Heard()
		if c.interruptible() {
			c.interrupt()
		}
	case realtime.SpeechStopped:
		c.speaking, c.turnEnd = false, at
	case realtime.UserTranscript:
		if t := strings.TrimSpace(ev.Text); t != "" {
			c.sil.Heard()
			when := c.turnEnd
			if when.IsZero() {
				when = at
			}
			c.deps.Recorder.Message(pipeline.Message{Role: llm.User, Content: t, At: when})
		}
	case realtime.Audio:
		c.onAudio(ev, at)
	case realtime.ToolCalls:
		c.onToolCalls(ctx, ev)
	case realtime.ResponseDone:
		c.onResponseDone(ev)
	case realtime.Warning:
		c.log.Warn("realtime service warning", "message", ev.Text)
	}
}

// onAudio queues a piece of the model's speech, starting a reply when the
// service started answering by itself.
func (c *Conversation) onAudio(ev realtime.Event, at time.Time) {
	if r := c.cut; r != nil {
		if time.Since(r.cutAt) < cutWait {
			// The rest of what the caller interrupted: the services run one
			// response at a time, and its end has not come yet.
			r.addAudio(ev.ItemID, len(ev.Audio))
			return
		}
		c.log.Warn("the interrupted response never ended; recorded as heard so far", "reply", r.id)
		c.cut = nil
		c.record(r, pipeline.SpokenPrefix(r.text.String(), r.heard), true)
	}
	r := c.cur
	if r != nil && c.closing && r.finished && !r.hasItem(ev.ItemID) {
		return // the call is closing: a new answer of the service is not played
	}
	if r == nil {
		r = c.start(kindAnswer)
		r.t0, c.turnEnd = c.turnEnd, time.Time{} // a turn is answered once
	}
	r.open = true
	if r.audioAt.IsZero() && len(ev.Audio) > 0 {
		r.audioAt = at
		if !r.t0.IsZero() {
			r.m.LLMFirstToken = at.Sub(r.t0)
		}
	}
	r.addAudio(ev.ItemID, len(ev.Audio))
	c.play.Push(r.id, ev.Audio)
}

// addAudio counts n samples of item into the reply.
func (r *reply) addAudio(itemID string, n int) {
	if len(r.items) == 0 || r.items[len(r.items)-1].id != itemID {
		r.items = append(r.items, item{id: itemID, start: r.samples})
	}
	r.samples += n
}

// cutWait bounds the wait for the end of a response the caller
// interrupted; audio after it is taken for a new response's.
const cutWait = 3 * time.Second

// onResponseDone ends a response: the reply is complete unless a tool
// round continues it.
func (c *Conversation) onResponseDone(ev realtime.Event) {
	if r := c.cut; r != nil {
		c.endCut(ev.Text)
		return
	}
	r := c.cur
	if r == nil {
		return
	}
	addText(&r.text, ev.Text)
	r.open = false
	if !r.tools {
		r.finished = true
		c.play.Finish(r.id)
	}
}

// endCut records the interrupted reply once its response has ended: the
// share of its audio the caller heard, of its whole transcript.
func (c *Conversation) endCut(text string) {
	r := c.cut
	c.cut = nil
	addText(&r.text, text)
	if r.samples > 0 {
		r.heard = min(1, float64(r.played)/float64(r.samples))
	}
	c.record(r, pipeline.SpokenPrefix(r.text.String(), r.heard), true)
}

// start begins a new reply and makes it current.
func (c *Conversation) start(kind replyKind) *reply {
	c.nextID++
	r := &reply{id: c.nextID, kind: kind}
	if kind == kindAnswer {
		c.turns++
		r.m.Turn = c.turns
	}
	c.cur = r
	c.play.Start(r.id)
	return r
}

// say has the model speak text word for word as a new reply.
func (c *Conversation) say(kind replyKind, text string) *reply {
	return c.respond(kind, realtime.Verbatim(text))
}

// respond asks the model for a reply of its own, steered by instructions
// when set.
func (c *Conversation) respond(kind replyKind, instructions string) *reply {
	r := c.start(kind)
	c.ask(r, instructions)
	return r
}

// ask requests a response that continues reply r.
func (c *Conversation) ask(r *reply, instructions string) {
	r.open = true
	c.out.do("respond", func(ctx context.Context, s realtime.Session) error {
		return s.Respond(ctx, instructions)
	})
}

// interruptible reports whether caller speech may cut the current reply.
func (c *Conversation) interruptible() bool {
	return c.cur != nil && !c.closing
}

// interrupt stops the current reply at once, tells the service how much of
// it the caller heard, and records that much.
func (c *Conversation) interrupt() {
	r := c.cur
	c.cur = nil
	played, _ := c.play.Stop()
	for i, it := range r.items {
		heard := max(0, played-it.start)
		if i+1 < len(r.items) {
			heard = min(heard, r.items[i+1].start-it.start)
		}
		if it.id == "" || (heard == 0 && i > 0) {
			continue
		}
		id, ms := it.id, time.Duration(heard)*time.Second/SampleRate
		c.out.do("truncate", func(ctx context.Context, s realtime.Session) error {
			return s.Truncate(ctx, id, ms)
		})
	}
	if r.open {
		c.out.do("cancel", func(ctx context.Context, s realtime.Session) error { return s.Cancel(ctx) })
	}
	total := r.samples
	if r.open {
		// More was coming: judge what was heard against the text at a
		// typical 15 characters per second.
		total = max(total, r.text.Len()*SampleRate/15)
	}
	r.heard = 0
	if total > 0 {
		r.heard = float64(played) / float64(total)
	}
	c.log.Debug("caller interrupted", "reply", r.id, "played_ms", played*1000/SampleRate)
	if r.open && !r.tools {
		if old := c.cut; old != nil {
			// Still waiting for an earlier cut response's end: record it
			// with what is known.
			c.record(old, pipeline.SpokenPrefix(old.text.String(), old.heard), true)
		}
		r.played, r.cutAt = played, time.Now()
		c.cut = r // its transcript is complete at the response's end
		return
	}
	c.record(r, pipeline.SpokenPrefix(r.text.String(), r.heard), true)
}

// onPlayout reacts to the playout queue: a first frame sent or all played.
func (c *Conversation) onPlayout() (call.EndReason, bool) {
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
		if !r.audioAt.IsZero() {
			r.m.FinalToFirstPacket = st.FirstAt.Sub(r.audioAt)
		}
	}
	if st.DoneAt.IsZero() || !r.finished {
		return "", false
	}
	c.cur = nil
	c.record(r, r.text.String(), false)
	switch {
	case r.endAfter == call.EndAssistantHangup && r.kind != kindClosing && c.cfg.EndCallMessage != "":
		c.closeWith(c.cfg.EndCallMessage, call.EndAssistantHangup)
	case r.endAfter != "":
		return r.endAfter, true
	case c.trigger:
		c.trigger = false
		c.respond(kindAnswer, "")
	}
	return "", false
}

// record writes a reply into the transcript and, for answers, its turn
// metrics.
func (c *Conversation) record(r *reply, text string, interrupted bool) {
	if t := strings.TrimSpace(text); t != "" {
		c.deps.Recorder.Message(pipeline.Message{Role: llm.Assistant, Content: t, Interrupted: interrupted, At: time.Now()})
	}
	if r.kind == kindAnswer {
		r.m.Interrupted = interrupted
		c.deps.Recorder.Turn(r.m)
	}
}

// settleAll records what is left when Run ends.
func (c *Conversation) settleAll() {
	if r := c.cut; r != nil {
		c.cut = nil
		c.record(r, pipeline.SpokenPrefix(r.text.String(), r.heard), true)
	}
	if r := c.cur; r != nil {
		c.cur = nil
		played, queued := c.play.Stop()
		frac := 1.0
		if queued > 0 && played < queued {
			frac = float64(played) / float64(queued)
		}
		c.record(r, pipeline.SpokenPrefix(r.text.String(), frac), frac < 1)
	}
}

// fail handles the session's failure: the apology, then the end.
func (c *Conversation) fail(ctx context.Context, err error) (call.EndReason, bool) {
	c.failErr = err
	if ref := c.sess.Swap(nil); ref != nil {
		ref.s.Close()
	}
	if c.cur != nil {
		c.interruptLocal()
	}
	if c.closing || c.deps.Apology == nil {
		return call.EndLLMError, true
	}
	c.closing = true
	r := c.start(kindClosing)
	r.endAfter = call.EndLLMError
	addText(&r.text, c.cfg.Apology)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := speak(ctx, c.deps.Apology, c.cfg.ApologyVoice, c.cfg.Apology, func(pcm []int16) { c.play.Push(r.id, pcm) })
		c.post(ctx, event{kind: evApology, reply: r.id, err: err})
	}()
	return "", false
}

// interruptLocal stops the current reply without telling the service.
func (c *Conversation) interruptLocal() {
	r := c.cur
	c.cur = nil
	played, _ := c.play.Stop()
	frac := 1.0
	if r.samples > 0 {
		frac = float64(played) / float64(r.samples)
	}
	c.record(r, pipeline.SpokenPrefix(r.text.String(), frac), true)
}

// closeWith has the model say a goodbye, uninterruptible, and then ends
// the call; CloseWait bounds it.
func (c *Conversation) closeWith(text string, reason call.EndReason) {
	c.closing = true
	r := c.say(kindClosing, text)
	r.endAfter = reason
	c.closeT.Reset(c.cfg.CloseWait)
}

// closingReason is why the call ends when a goodbye never finished.
func (c *Conversation) closingReason() call.EndReason {
	if c.cur != nil && c.cur.endAfter != "" {
		return c.cur.endAfter
	}
	return call.EndAPIRequest
}

func (r *reply) hasItem(id string) bool {
	for _, it := range r.items {
		if it.id == id {
			return true
		}
	}
	return false
}

func addText(b *strings.Builder, t string) {
	t = strings.TrimSpace(t)
	if t == "" {
		return
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(t)
}

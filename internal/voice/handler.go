package voice

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"path/filepath"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/consent"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/live"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
	"github.com/parley-voice/parley/internal/tts"
)

// handler runs one routed call (telephony.Handler), inbound or outbound.
type handler struct {
	e     *Engine
	row   *store.Call
	plan  *plan
	log   *slog.Logger
	hooks *callHooks
	// number is the Parley number the call is on (its transfer trunk is
	// used for bridged transfers).
	number *store.Number
	// speakOnly, when set, is said and then the call ends (an
	// assistant-request webhook refused the call).
	speakOnly string
	// mediaSources are networks besides the SDP and signalling addresses
	// RTP may come from: the IPs and prefixes of the trunk's
	// inbound_addresses (telephony.MediaSourcer).
	mediaSources []netip.Prefix
}

// MediaSources implements telephony.MediaSourcer.
func (h *handler) MediaSources() []netip.Prefix { return h.mediaSources }

// finishTimeout bounds a write made as a call ends (a transcript save).
const finishTimeout = 10 * time.Second

// endTimeout is how long recording a call's end is retried before the
// engine gives up on it (the database is down). Should the process stop
// meanwhile, crash recovery ends the call on the next start.
const endTimeout = 5 * time.Minute

// recordEnd writes a call's end, retrying with backoff until it is written,
// the call is found ended already, or ctx ends. Writes that record what
// happened are not dropped on a first failure.
func (e *Engine) recordEnd(ctx context.Context, end store.CallEnd, log *slog.Logger) error {
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := e.db.EndCall(ctx, end)
		if err == nil {
			return nil
		}
		if endSettled(err) {
			log.Warn("call end already recorded", "error", err)
			return err
		}
		log.Error("record call end; retrying", "error", err, "attempt", attempt, "retry_in", wait)
		select {
		case <-ctx.Done():
			log.Error("record call end: giving up", "error", err, "attempts", attempt)
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
}

// endSettled reports whether an EndCall error means there is nothing left to
// write: the call had ended already (recorded earlier, or by recovery), or
// it is gone.
func endSettled(err error) bool {
	return errors.Is(err, store.ErrEnded) || fault.KindOf(err) == fault.NotFound
}

// conversation is what a call's handler needs of its conversation engine,
// the pipeline's (pipeline.Conversation) or the realtime one's
// (live.Conversation).
type conversation interface {
	media.Source
	media.Sink
	media.DTMFSink
	Run(ctx context.Context) (pipeline.Ending, error)
	Control(ctx context.Context, cmd call.Command) error
	Background()
}

func (h *handler) ServeCall(ctx context.Context, c *telephony.Call) {
	var conv conversation
	defer func() { h.release(conv) }()
	started := c.AnsweredAt
	evs := h.hooks.status(call.StatusInProgress, "", "")
	if err := h.e.db.StartCall(ctx, h.row.OrgID, h.row.ID, started, evs...); err != nil {
		h.log.Error("mark call in progress", "error", err)
	}
	h.e.committed(evs)
	tr := newRecorder(ctx, h.e.db, h.row.OrgID, h.row.ID, h.log)
	out := outcome{status: call.StatusEnded}

	if h.askConsent() {
		answer, err := h.consent(ctx, c)
		if ended := h.consentEnding(ctx, answer, err, &out); ended {
			h.finish(ctx, c, tr, nil, started, out)
			return
		}
	}
	audio := h.startRecording()

	cfg := h.plan.cfg
	if h.speakOnly != "" {
		cfg.FirstMessage = "" // the refusal is said instead (sayAndHangUp)
	}
	tools := &toolRunner{e: h.e, hooks: h.hooks, routes: h.plan.routes}
	if h.plan.rt != nil {
		if cfg.Voicemail != nil {
			h.log.Info("voicemail detection does not apply to realtime assistants; the call goes on without it")
		}
		fb := h.e.cfg.Providers.Fallback
		lc := h.plan.liveConfig(fb)
		lc.FirstMessage = cfg.FirstMessage
		if h.speakOnly != "" {
			// The refusal is the model's first words, then the call ends:
			// the session may take a while to connect.
			lc.FirstMessage, lc.FirstMessageEnds = h.speakOnly, true
		}
		conv = live.New(lc, live.Deps{Provider: h.plan.rt.provider, Apology: fb.TTS, Recorder: tr,
			Tools: tools, Keypad: keypad{c}, Logger: h.log})
	} else {
		vad := h.newVAD()
		defer h.closeVAD(vad)
		conv = pipeline.New(cfg, pipeline.Deps{Providers: h.plan.providers, Recorder: tr, Logger: h.log,
			Tools: tools, Keypad: keypad{c}, VAD: vad})
	}
	var sink media.Sink = conv
	source := h.withAmbience(conv)
	if audio != nil {
		sink, source = audio.Sink(conv), audio.Source(source)
	}
	c.Media.SetSink(sink)
	c.Media.SetSource(source)
	c.Media.SetDTMFSink(conv)
	h.log.Info("call answered", "codec", c.Media.Codec().Name, "direction", h.row.Direction.String(), "recording", audio != nil)

	h.e.track(h.row.ID, &liveCall{orgID: h.row.OrgID, conv: conv})
	var end pipeline.Ending
	var err error
	if h.speakOnly != "" && h.plan.rt == nil {
		end, err = h.sayAndHangUp(ctx, conv)
	} else {
		end, err = conv.Run(ctx)
	}
	h.e.untrack(h.row.ID)
	c.Media.SetDTMFSink(nil)
	c.Media.SetSource(nil)
	c.Media.SetSink(nil)
	reason := end.Reason
	if reason == "" {
		reason = causeReason(context.Cause(ctx))
	}
	out.reason = reason
	if reason.ProviderFailure() && err != nil {
		out.errMsg = err.Error()
	}
	if reason == call.EndTransferred {
		if terr := h.transfer(ctx, c, end.TransferTo); terr != nil {
			h.log.Warn("transfer failed", "destination", end.TransferTo, "error", terr)
			out.reason, out.errMsg = call.EndTransferFailed, terr.Error()
		} else {
			out.status = call.StatusTransferred
		}
	}
	if out.reason.ProviderFailure() {
		out.status = call.StatusEndedWithError
	}
	if h.speakOnly != "" {
		out.status, out.reason, out.errMsg = call.StatusRejected, call.EndWebhookRejected, h.speakOnly
	}
	h.finish(ctx, c, tr, audio, started, out)
}

// VAD is a call's voice-activity detector, closed when the call ends.
type VAD interface {
	pipeline.VAD
	io.Closer
}

// newVAD returns the call's configured voice-activity detector, or nil for
// the pipeline's energy VAD.
func (h *handler) newVAD() VAD {
	if h.e.cfg.NewVAD == nil {
		return nil
	}
	v, err := h.e.cfg.NewVAD()
	if err != nil {
		h.log.Warn("voice-activity detector unavailable; the call uses the energy VAD", "error", err)
		return nil
	}
	return v
}

// closeVAD releases the call's detector. The media session may still hand
// it a frame: the detector waits for it and ignores later ones.
func (h *handler) closeVAD(v VAD) {
	if v == nil {
		return
	}
	if err := v.Close(); err != nil {
		h.log.Warn("voice-activity detector failed during the call; the energy VAD took over", "error", err)
	}
}

// outcome is how a call ended.
type outcome struct {
	status  call.Status
	reason  call.EndReason
	errMsg  string
	consent string // the caller's recording-consent answer, when asked
}

// askConsent reports whether the call starts with the recording-consent
// prompt (spec §12.8: inbound phone calls whose assistant enables it).
func (h *handler) askConsent() bool {
	return h.plan.consent != "" && h.row.Direction == call.Inbound && h.speakOnly == "" && h.canAskConsent()
}

// consentVoice is the voice the consent prompt is played in: the
// assistant's, or for a realtime assistant (whose model is not yet
// listening) the server's fallback voice.
func (h *handler) consentVoice() (tts.Provider, tts.Config) {
	if h.plan.rt != nil {
		fb := h.e.cfg.Providers.Fallback
		return fb.TTS, fb.Voice
	}
	return h.plan.providers.TTS, h.plan.cfg.TTS
}

// canAskConsent reports whether there is a voice to ask with. A realtime
// assistant on a server without a fallback voice cannot ask, and its calls
// are then not recorded at all.
func (h *handler) canAskConsent() bool {
	p, _ := h.consentVoice()
	return p != nil
}

// consent plays the consent message in the assistant's voice and waits for
// the caller's key. Until the caller agrees, nothing of theirs reaches
// speech-to-text, the model or the recording: the media session has no
// sink meanwhile.
func (h *handler) consent(ctx context.Context, c *telephony.Call) (consent.Decision, error) {
	voice, cfg := h.consentVoice()
	p := consent.New(consent.Config{Message: h.plan.consent, TTS: voice, Voice: cfg,
		Wait: h.e.cfg.ConsentWait, Logger: h.log})
	c.Media.SetSink(nil)
	c.Media.SetSource(p)
	c.Media.SetDTMFSink(p)
	defer func() {
		c.Media.SetDTMFSink(nil)
		c.Media.SetSource(nil)
	}()
	d, err := p.Run(ctx)
	h.log.Info("recording consent", "answer", d.String(), "error", err)
	return d, err
}

// consentEnding folds the consent answer into the call's outcome and
// reports whether the call ends here.
func (h *handler) consentEnding(ctx context.Context, d consent.Decision, err error, out *outcome) bool {
	switch {
	case ctx.Err() != nil:
		out.reason = causeReason(context.Cause(ctx))
		return true
	case err != nil:
		out.status, out.reason, out.errMsg = call.StatusEndedWithError, call.EndTTSError, err.Error()
		return true
	}
	out.consent = d.String()
	switch d {
	case consent.Declined:
		out.reason = call.EndConsentDeclined
		return true
	case consent.NoAnswer:
		out.reason = call.EndConsentTimeout
		return true
	}
	return false
}

// startRecording starts the call's audio recording when its assistant
// records (recording_enabled) or its caller agreed to be recorded, unless
// the assistant is in GDPR mode. A recording that cannot start is logged;
// the call goes on without it.
func (h *handler) startRecording() *recording.Recorder {
	rc := h.e.cfg.Recordings
	if rc == nil || h.plan.gdpr || h.speakOnly != "" {
		return nil
	}
	if !h.plan.record && !h.askConsent() {
		return nil
	}
	if h.plan.consent != "" && h.row.Direction == call.Inbound && !h.canAskConsent() {
		h.log.Warn("recording consent cannot be asked without the server's fallback voice; the call is not recorded")
		return nil
	}
	r, err := recording.Start(*rc, h.row.ID)
	if err != nil {
		h.log.Error("start recording; the call goes on unrecorded", "error", err)
		return nil
	}
	return r
}

// release closes the call's plan (MCP sessions) once the conversation's
// detached tool calls are done. That wait is the engine's, so the call's
// BYE and its end are not held up by a slow tool.
func (h *handler) release(conv conversation) {
	if conv == nil {
		h.plan.close()
		return
	}
	h.e.wg.Add(1)
	go func() {
		defer h.e.wg.Done()
		conv.Background()
		h.plan.close()
	}()
}

// sayAndHangUp plays the conversation's first message and ends the call.
func (h *handler) sayAndHangUp(ctx context.Context, conv conversation) (pipeline.Ending, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	var end pipeline.Ending
	var err error
	go func() { defer close(done); end, err = conv.Run(ctx) }()
	if cerr := conv.Control(ctx, call.Command{Type: call.CmdSay, Content: h.speakOnly, EndAfter: true}); cerr != nil {
		cancel()
	}
	<-done
	return end, err
}

// finish records the call's end: status, transcript, usage, the webhook and
// the post-call jobs, in one transaction. The recording is finished first
// (into a file the upload job moves to the object store).
func (h *handler) finish(ctx context.Context, c *telephony.Call, tr *recorder, audio *recording.Recorder, started time.Time, out outcome) {
	ended := h.e.now()
	out.reason = h.noAudio(out.reason, c.Media.Stats())
	msgs, metrics := tr.close()
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	end := store.CallEnd{OrgID: h.row.OrgID, ID: h.row.ID, Status: out.status, EndReason: out.reason, Error: out.errMsg,
		EndedAt: ended, Messages: msgs, Metrics: metrics, Consent: out.consent}
	secs := int(math.Ceil(ended.Sub(started).Seconds()))
	end.Duration = &secs
	end.Usage = &store.UsageLog{
		OrgID: h.row.OrgID, CallID: &h.row.ID, DurationSec: secs, CallType: h.row.Direction.UsageType(),
		BYOKSTT: h.plan.byok.stt, BYOKLLM: h.plan.byok.llm, BYOKTTS: h.plan.byok.tts,
		PhoneNumber: h.row.PhoneNumber, AgentName: h.row.AgentName, BusinessName: h.row.BusinessName,
	}
	file := h.finishRecording(audio)
	if file != "" {
		end.Recording = store.RecordingPending
	}
	if h.plan.gdpr {
		end.ContentExpiresAt = h.contentExpiry(fctx, ended)
	}
	end.Events = h.hooks.status(out.status, out.reason, out.errMsg)
	if ac := h.e.cfg.AfterCall; ac != nil {
		ending := *h.row
		reason := string(out.reason)
		ending.Status, ending.EndReason, ending.DurationSeconds, ending.Messages, ending.RecordingState = out.status, &reason, &secs, msgs, end.Recording
		if sum, ok := ac.Settled(&ending); ok {
			end.Summary = sum
		} else {
			end.InTx = func(ctx context.Context, tx *sql.Tx) error {
				return ac.Schedule(ctx, tx, h.row.OrgID, h.row.ID, file)
			}
		}
	}
	err := h.e.db.EndCall(fctx, end)
	if err != nil && !endSettled(err) {
		if end.InTx != nil {
			// The end itself matters most: record it without its post-call work.
			h.log.Error("record call end with its post-call work; recording the end alone", "error", err)
			end.InTx = nil
		}
		err = h.e.recordEnd(fctx, end, h.log)
	}
	if err == nil {
		h.e.committed(end.Events)
	}
	st := c.Media.Stats()
	h.log.Info("call ended", "status", out.status.String(), "end_reason", string(out.reason), "duration_s", secs,
		"rtp_sent", st.PacketsSent, "rtp_received", st.PacketsReceived, "rtp_lost", st.PacketsLost, "jitter", st.Jitter,
		"rtp_dropped_foreign", st.PacketsForeign, "rtcp_dropped_foreign", st.RTCPForeign, "rtp_invalid", st.PacketsInvalid, "srtp", c.Media.Secure())
}

// noAudio turns a hang-up or media timeout of a call that never received a
// single RTP packet into no_audio_received, with a warning that says where
// to look: such a call otherwise looks like a normal one in the call list.
func (h *handler) noAudio(reason call.EndReason, st media.Stats) call.EndReason {
	if st.PacketsReceived > 0 || (reason != call.EndUserHangup && reason != call.EndMediaTimeout) {
		return reason
	}
	who := "the caller"
	if h.row.Direction == call.Outbound {
		who = "the called party"
	}
	h.log.Warn("no audio arrived from "+who+": check the softphone's sound device, NAT, and the media address in its SDP",
		"ended_by", string(reason), "rtp_dropped_foreign", st.PacketsForeign, "rtp_invalid", st.PacketsInvalid)
	return call.EndNoAudio
}

// finishRecording writes the call's WAV where the upload job finds it and
// returns its path ("" when the call was not recorded or writing failed).
func (h *handler) finishRecording(audio *recording.Recorder) string {
	if audio == nil {
		return ""
	}
	path := doneFile(h.e.cfg.Recordings.Dir, h.row.ID)
	info, err := audio.FinishFile(path)
	if err != nil {
		h.log.Error("finish recording; the call has none", "error", err)
		audio.Abort()
		return ""
	}
	h.log.Debug("recording written", "file", path, "duration", info.Duration, "bytes", info.Size)
	return path
}

// doneFile is where a call's finished recording waits for its upload job,
// under the recordings spool.
func doneFile(spool, callID string) string {
	return filepath.Join(spool, "done", recording.Sanitize(callID)+".wav")
}

// defaultContentRetention is how long a GDPR-mode call keeps its content
// when the organization sets no content retention (the shortest period the
// API offers).
const defaultContentRetention = 30

// contentExpiry is when a GDPR-mode call's content is deleted: its end plus
// the organization's content retention.
func (h *handler) contentExpiry(ctx context.Context, ended time.Time) *time.Time {
	days := defaultContentRetention
	if org, err := h.e.db.GetOrg(ctx, h.row.OrgID); err != nil {
		h.log.Warn("load organization retention; using the default", "error", err, "days", days)
	} else if org.ContentRetentionDays != nil && *org.ContentRetentionDays > 0 {
		days = *org.ContentRetentionDays
	}
	at := ended.Add(time.Duration(days) * 24 * time.Hour)
	return &at
}

func (h *handler) NotAnswered(ctx context.Context, err error) {
	h.log.Info("call not answered", "reason", err)
	if errors.Is(err, telephony.ErrCanceled) {
		h.failed(ctx, call.EndCallerCancelled, "")
		return
	}
	h.failed(ctx, call.EndError, err.Error())
}

// keypad sends DTMF on the call (pipeline.Keypad).
type keypad struct{ c *telephony.Call }

func (k keypad) SendDTMF(ctx context.Context, digits string) error { return k.c.SendDTMF(ctx, digits) }

// causeReason maps why the call's context ended to an end reason.
func causeReason(cause error) call.EndReason {
	switch {
	case errors.Is(cause, telephony.ErrRemoteHangup):
		return call.EndUserHangup
	case errors.Is(cause, media.ErrMediaTimeout):
		return call.EndMediaTimeout
	case errors.Is(cause, telephony.ErrNoACK):
		return call.EndNoACK
	case errors.Is(cause, telephony.ErrShutdown):
		return call.EndShutdown
	}
	return call.EndError
}

// recorder persists the transcript turn by turn, off the conversation's
// goroutine, in order.
type recorder struct {
	db        Store
	base      context.Context
	org, id   string
	log       *slog.Logger
	mu        sync.Mutex
	msgs      []transcriptEntry
	turns     []turnFigures
	dirty     chan struct{}
	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

type transcriptEntry struct {
	Role        string `json:"role"`
	Content     string `json:"content"`
	Interrupted bool   `json:"interrupted,omitempty"`
}

// turnFigures is one row of calls.metrics (milliseconds).
type turnFigures struct {
	Turn              int   `json:"turn"`
	EndpointingMS     int64 `json:"endpointing_ms"`
	LLMFirstTokenMS   int64 `json:"llm_first_token_ms"`
	TTSFirstAudioMS   int64 `json:"tts_first_audio_ms"`
	FirstPacketMS     int64 `json:"first_packet_ms"`
	FinalToFirstPktMS int64 `json:"stt_final_to_first_packet_ms"`
	Interrupted       bool  `json:"interrupted,omitempty"`
	FalseInterruption bool  `json:"false_interruption,omitempty"`
}

func newRecorder(ctx context.Context, db Store, org, id string, log *slog.Logger) *recorder {
	r := &recorder{db: db, base: context.WithoutCancel(ctx), org: org, id: id, log: log,
		dirty: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go r.loop()
	return r
}

func (r *recorder) Message(m pipeline.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, transcriptEntry{Role: string(m.Role), Content: m.Content, Interrupted: m.Interrupted})
	r.mu.Unlock()
	r.kick()
}

func (r *recorder) Turn(m pipeline.TurnMetrics) {
	r.mu.Lock()
	r.turns = append(r.turns, turnFigures{
		Turn: m.Turn, EndpointingMS: m.Endpointing.Milliseconds(), LLMFirstTokenMS: m.LLMFirstToken.Milliseconds(),
		TTSFirstAudioMS: m.TTSFirstAudio.Milliseconds(), FirstPacketMS: m.FirstPacket.Milliseconds(),
		FinalToFirstPktMS: m.FinalToFirstPacket.Milliseconds(), Interrupted: m.Interrupted, FalseInterruption: m.FalseInterruption,
	})
	r.mu.Unlock()
	r.kick()
}

func (r *recorder) kick() {
	select {
	case r.dirty <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() (json.RawMessage, json.RawMessage) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var msgs, turns json.RawMessage
	if len(r.msgs) > 0 {
		msgs, _ = json.Marshal(r.msgs)
	}
	if len(r.turns) > 0 {
		turns, _ = json.Marshal(r.turns)
	}
	return msgs, turns
}

func (r *recorder) loop() {
	defer close(r.stopped)
	for {
		select {
		case <-r.done:
			return
		case <-r.dirty:
		}
		msgs, turns := r.snapshot()
		ctx, cancel := context.WithTimeout(r.base, finishTimeout)
		if err := r.db.SaveTranscript(ctx, r.org, r.id, msgs, turns); err != nil {
			r.log.Error("save transcript", "error", err)
		}
		cancel()
	}
}

// close stops the writer (waiting for a write in flight, so none lands
// after the final one) and returns the final transcript.
func (r *recorder) close() (json.RawMessage, json.RawMessage) {
	r.closeOnce.Do(func() { close(r.done) })
	<-r.stopped
	return r.snapshot()
}

package voice

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/media"
	"github.com/parley-voice/parley/internal/pipeline"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/telephony"
)

// handler runs one routed call (telephony.Handler).
type handler struct {
	e    *Engine
	row  *store.Call
	plan *plan
	log  *slog.Logger
}

// finishTimeout bounds the final writes after a call ends.
const finishTimeout = 10 * time.Second

func (h *handler) ServeCall(ctx context.Context, c *telephony.Call) {
	started := c.AnsweredAt
	if err := h.e.db.StartCall(ctx, h.row.OrgID, h.row.ID, started); err != nil {
		h.log.Error("mark call in progress", "error", err)
	}
	rec := newRecorder(ctx, h.e.db, h.row.OrgID, h.row.ID, h.log)
	conv := pipeline.New(h.plan.cfg, pipeline.Deps{Providers: h.plan.providers, Recorder: rec, Logger: h.log})
	c.Media.SetSink(conv)
	c.Media.SetSource(conv)
	h.log.Info("call answered", "codec", c.Media.Codec().Name)

	reason, err := conv.Run(ctx)
	c.Media.SetSource(nil)
	c.Media.SetSink(nil)
	if reason == "" {
		reason = causeReason(context.Cause(ctx))
	}
	ended := h.e.now()
	msgs, metrics := rec.close()

	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	status := call.StatusEnded
	end := store.CallEnd{OrgID: h.row.OrgID, ID: h.row.ID, EndReason: reason, EndedAt: ended, Messages: msgs, Metrics: metrics}
	if reason.ProviderFailure() {
		status = call.StatusEndedWithError
		if err != nil {
			end.Error = err.Error()
		}
	}
	end.Status = status
	secs := int(math.Ceil(ended.Sub(started).Seconds()))
	end.Duration = &secs
	end.Usage = &store.UsageLog{
		OrgID: h.row.OrgID, CallID: &h.row.ID, DurationSec: secs, CallType: call.Inbound.UsageType(),
		BYOKSTT: h.plan.byok.stt, BYOKLLM: h.plan.byok.llm, BYOKTTS: h.plan.byok.tts,
		PhoneNumber: h.row.PhoneNumber, AgentName: h.row.AgentName, BusinessName: h.row.BusinessName,
	}
	if err := h.e.db.EndCall(fctx, end); err != nil {
		h.log.Error("record call end", "error", err)
	}
	st := c.Media.Stats()
	h.log.Info("call ended", "status", status.String(), "end_reason", string(reason), "duration_s", secs,
		"rtp_sent", st.PacketsSent, "rtp_received", st.PacketsReceived, "rtp_lost", st.PacketsLost, "jitter", st.Jitter)
}

func (h *handler) NotAnswered(ctx context.Context, err error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	end := store.CallEnd{OrgID: h.row.OrgID, ID: h.row.ID, Status: call.StatusFailed, EndedAt: h.e.now()}
	if errors.Is(err, telephony.ErrCanceled) {
		end.EndReason = call.EndCallerCancelled
	} else {
		end.EndReason, end.Error = call.EndError, err.Error()
	}
	if err := h.e.db.EndCall(ctx, end); err != nil {
		h.log.Error("record unanswered call", "error", err)
	}
	h.log.Info("call not answered", "reason", err)
}

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

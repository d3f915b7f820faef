package postcall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/analysis"
	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/webhook"
)

// reportArgs is the job that summarises, analyses and reports one call.
type reportArgs struct {
	OrgID  string `json:"org_id"`
	CallID string `json:"call_id"`
}

func (reportArgs) Kind() string { return "postcall_report" }

type reportWorker struct {
	river.WorkerDefaults[reportArgs]
	s *Service
}

// Timeout covers the summary, the analysis and its repair, each bounded by
// the model timeout, plus the wait for a model slot.
func (w *reportWorker) Timeout(*river.Job[reportArgs]) time.Duration {
	return 4*w.s.cfg.ModelTimeout + time.Minute
}

func (w *reportWorker) NextRetry(j *river.Job[reportArgs]) time.Time {
	return w.s.now().Add(w.s.backoff(j.Attempt))
}

// snapshot is the part of the call's resolved assistant the report reads.
type snapshot struct {
	AnalysisPlan json.RawMessage `json:"analysis_plan"`
	Voicemail    *string         `json:"voicemail_message"`
	STT          struct {
		Language string `json:"language"`
	} `json:"stt_config"`
}

// transient marks a failure worth retrying (a model or database error), as
// opposed to one that will fail the same way again (an invalid schema).
type transient struct{ err error }

func (t transient) Error() string { return t.err.Error() }
func (t transient) Unwrap() error { return t.err }

func (w *reportWorker) Work(ctx context.Context, j *river.Job[reportArgs]) error {
	err := w.work(ctx, j)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The node is stopping: run the job again soon, without counting
		// the interruption as a failed attempt.
		return river.JobSnooze(0)
	}
	return err
}

func (w *reportWorker) work(ctx context.Context, j *river.Job[reportArgs]) error {
	s := w.s
	a := j.Args
	log := s.log.With("call_id", a.CallID, "org_id", a.OrgID, "job", "postcall_report", "attempt", j.Attempt)
	c, err := s.cfg.Store.GetCall(ctx, a.OrgID, a.CallID)
	if fault.KindOf(err) == fault.NotFound {
		log.Warn("call gone before its report; nothing to do")
		return nil
	}
	if err != nil {
		return fmt.Errorf("load call: %w", err)
	}
	if c.EndedAt == nil {
		return river.JobCancel(fmt.Errorf("call %s has not ended", c.ID))
	}
	final := j.Attempt >= j.MaxAttempts
	var snap snapshot
	_ = json.Unmarshal(c.Assistant, &snap)
	in := callInput(c, snap)

	if c.Summary == nil {
		sum, err := s.summarize(ctx, c, in)
		switch {
		case err == nil:
			if err := s.cfg.Store.SaveSummary(ctx, c.OrgID, c.ID, sum); err != nil {
				return fmt.Errorf("save summary: %w", err)
			}
			c.Summary = &sum
		case !final:
			return fmt.Errorf("summary: %w", err)
		default:
			log.Error("no summary: the model kept failing; reporting without it", "error", err)
		}
	}

	if c.AnalysisResult == nil && c.AnalysisError == nil {
		res, err := s.analyze(ctx, c, snap, in)
		var tr transient
		switch {
		case err == nil && res == nil: // no plan, or not due
		case err == nil:
			if err := s.cfg.Store.SaveAnalysis(ctx, c.OrgID, c.ID, res, ""); err != nil {
				return fmt.Errorf("save analysis: %w", err)
			}
			c.AnalysisResult = res
		case errors.As(err, &tr) && !final:
			return fmt.Errorf("analysis: %w", err)
		default:
			msg := err.Error()
			log.Warn("structured analysis failed", "error", msg)
			if err := s.cfg.Store.SaveAnalysis(ctx, c.OrgID, c.ID, nil, msg); err != nil {
				return fmt.Errorf("save analysis error: %w", err)
			}
			c.AnalysisError = &msg
		}
	}

	if c.RecordingState == store.RecordingPending {
		if waited := s.now().Sub(*c.EndedAt); waited < s.cfg.RecordingWait {
			return river.JobSnooze(500 * time.Millisecond)
		}
		log.Warn("recording still not uploaded; reporting without it", "waited", s.cfg.RecordingWait)
	}
	if err := s.report(ctx, c); err != nil {
		return err
	}
	for _, f := range s.cfg.Followups {
		if f.Wants(c) {
			if err := f.Queue(ctx, c); err != nil {
				return fmt.Errorf("queue what follows the report: %w", err)
			}
		}
	}
	return nil
}

// callInput is what the analysis reads of the call.
func callInput(c *store.Call, snap snapshot) analysis.Call {
	in := analysis.Call{Language: snap.STT.Language}
	var msgs []analysis.Message
	if json.Unmarshal(c.Messages, &msgs) == nil {
		in.Messages = msgs
	}
	if c.EndReason != nil {
		in.EndedReason = *c.EndReason
		if *c.EndReason == string(call.EndVoicemail) {
			left := ""
			if snap.Voicemail != nil {
				left = *snap.Voicemail
			}
			in.Voicemail = &left
		}
	}
	if c.DurationSeconds != nil {
		in.Duration = time.Duration(*c.DurationSeconds) * time.Second
	}
	if c.CallerPhone != nil {
		in.CallerNumber = *c.CallerPhone
	}
	return in
}

// model takes a model slot (bounded per node) and the call's post-call
// model; release gives the slot back.
func (s *Service) model(ctx context.Context, c *store.Call) (analysis.Model, func(), error) {
	m, err := s.cfg.Models.PostcallModel(ctx, c.OrgID, c.Assistant)
	if err != nil {
		return analysis.Model{}, nil, err
	}
	select {
	case s.models <- struct{}{}:
	case <-ctx.Done():
		return analysis.Model{}, nil, ctx.Err()
	}
	return m, func() { <-s.models }, nil
}

func (s *Service) summarize(ctx context.Context, c *store.Call, in analysis.Call) (string, error) {
	if s, ok := analysis.FixedSummary(in); ok {
		return s, nil // no model, no slot, no key needed
	}
	m, release, err := s.model(ctx, c)
	if err != nil {
		return "", err
	}
	defer release()
	mctx, cancel := context.WithTimeout(ctx, s.cfg.ModelTimeout)
	defer cancel()
	return analysis.Summarize(mctx, m, in)
}

// analyze runs the assistant's analysis plan; nil result and error when
// there is none or the call is too short for it.
func (s *Service) analyze(ctx context.Context, c *store.Call, snap snapshot, in analysis.Call) (json.RawMessage, error) {
	if len(snap.AnalysisPlan) == 0 || string(snap.AnalysisPlan) == "null" {
		return nil, nil
	}
	plan, err := analysis.ParsePlan(ctx, snap.AnalysisPlan, func(ctx context.Context, id string) (json.RawMessage, error) {
		d, err := s.cfg.Store.GetDoc(ctx, store.AnalysisTemplates, c.OrgID, id)
		if err != nil {
			if fault.KindOf(err) == fault.NotFound {
				return nil, fmt.Errorf("analysis template %s does not exist (deleted?)", id)
			}
			return nil, transient{err}
		}
		return d.Body, nil
	})
	if err != nil || plan == nil || !plan.Due(in) {
		return nil, err
	}
	m, release, err := s.model(ctx, c)
	if err != nil {
		return nil, transient{err}
	}
	defer release()
	// Two requests at most (the answer and one repair).
	mctx, cancel := context.WithTimeout(ctx, 2*s.cfg.ModelTimeout)
	defer cancel()
	summary := ""
	if c.Summary != nil {
		summary = *c.Summary
	}
	res, err := analysis.Analyze(mctx, m, plan, in, summary)
	var invalid *analysis.InvalidError
	if err != nil && !errors.As(err, &invalid) {
		return nil, transient{err}
	}
	return res, err
}

// report queues the end-of-call report for the call's webhook, once.
func (s *Service) report(ctx context.Context, c *store.Call) error {
	target, err := webhook.ParseTarget(c.Webhook)
	if err != nil {
		return fmt.Errorf("read the call's webhook target: %w", err)
	}
	if !target.Wants(webhook.EventEndOfCallReport) {
		return nil
	}
	env, err := webhook.StoredEnvelope(ctx, s.cfg.Store, c)
	if err != nil {
		return err
	}
	extra := map[string]any{
		"duration_seconds": 0,
		"summary":          "",
		"messages":         json.RawMessage("[]"),
		"end_reason":       c.EndReason,
		"started_at":       tsPtr(c.StartedAt),
		"ended_at":         tsPtr(c.EndedAt),
	}
	if c.DurationSeconds != nil {
		extra["duration_seconds"] = *c.DurationSeconds
	}
	if c.Summary != nil {
		extra["summary"] = *c.Summary
	}
	if len(c.Messages) > 0 {
		extra["messages"] = c.Messages
	}
	if len(c.AnalysisResult) > 0 {
		extra["analysis"] = c.AnalysisResult
	}
	if c.AnalysisError != nil {
		extra["analysis_error"] = *c.AnalysisError
	}
	if c.RecordingState == store.RecordingReady {
		extra["recording_url"] = s.RecordingURL(c.OrgID, c.ID)
	}
	if c.Error != nil {
		extra["error"] = *c.Error
	}
	ev := store.OutboxEvent{
		ID: webhook.EventID(c.ID, webhook.EventEndOfCallReport), OrgID: c.OrgID, CallID: &c.ID,
		EventType: webhook.EventEndOfCallReport, URL: target.URL,
		Payload: env.Body(webhook.EventEndOfCallReport, s.now(), extra),
	}
	if target.Secret != "" {
		ev.Secret = &target.Secret
	}
	inserted, err := s.cfg.Store.InsertEventOnce(ctx, ev, nil)
	if err != nil {
		return fmt.Errorf("queue the end-of-call report: %w", err)
	}
	if inserted && s.cfg.Outbox != nil {
		s.cfg.Outbox.Notify()
	}
	return nil
}

func tsPtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}

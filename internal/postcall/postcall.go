// Package postcall does a call's work after it ends, as durable jobs (package
// jobs) queued in the same transaction that records the end:
//
//   - report (queue "postcall", any node): the AI summary, then the
//     structured analysis of the assistant's analysis_plan (package
//     analysis), each saved on the call as it completes; then, once the
//     recording is uploaded, the end-of-call-report webhook (spec §9.7) is
//     queued in the webhook outbox, which signs, delivers and retries it
//     like every other event; then the followups (the notification
//     e-mails of package notify) are queued.
//   - upload (a queue of the node that ran the call): the recording's WAV,
//     written on that node's disk when the call ended, into the object store.
//   - expiry (periodic): content of GDPR-mode calls past its retention is
//     deleted (transcript, summary, analysis, recording).
//
// Every step is idempotent, so a job that runs twice (a crash mid-job, a
// retry) repeats no visible effect: a saved summary is not made again, and
// the report's event id is derived from the call, so it is queued once
// however often the job runs; receivers see it at least once, with one
// X-Webhook-Id. Model requests are bounded per node (a semaphore) and each
// has a timeout, so a thousand calls ending together make a queue, not a
// thousand requests.
package postcall

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/riverqueue/river"

	"github.com/parley-voice/parley/internal/analysis"
	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/jobs"
	"github.com/parley-voice/parley/internal/recording"
	"github.com/parley-voice/parley/internal/signedurl"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/webhook"
)

// Store is what the post-call jobs need from storage.
type Store interface {
	GetCall(ctx context.Context, orgID, id string) (*store.Call, error)
	GetNumber(ctx context.Context, orgID, id string) (*store.Number, error)
	GetDoc(ctx context.Context, k store.Kind, orgID, id string) (*store.Doc, error)
	SaveSummary(ctx context.Context, orgID, id, summary string) error
	SaveAnalysis(ctx context.Context, orgID, id string, result json.RawMessage, errMsg string) error
	FinishRecording(ctx context.Context, orgID, id string, state store.RecordingState, key *string, also store.TxFunc) error
	InsertEventOnce(ctx context.Context, ev store.OutboxEvent, also store.TxFunc) (bool, error)
	ExpiredContent(ctx context.Context, now time.Time, limit int) ([]store.ExpiredCall, error)
	ClearContent(ctx context.Context, orgID, id string) error
}

// Models picks the model that summarises and analyses a call run by an
// assistant (the catalog's post-call model of its provider, with the
// organization's key or the server's).
type Models interface {
	PostcallModel(ctx context.Context, orgID string, assistant json.RawMessage) (analysis.Model, error)
}

// Notifier wakes the webhook outbox dispatcher.
type Notifier interface{ Notify() }

// Followup is work that follows a call's report once it is built (package
// notify's e-mails).
type Followup interface {
	// Wants reports whether the call needs it: such a call gets a report
	// job even when it has no other post-call work.
	Wants(c *store.Call) bool
	// Queue queues it, once however often it is called.
	Queue(ctx context.Context, c *store.Call) error
}

// Inserter queues jobs in a store transaction (jobs.Queue).
type Inserter interface {
	InsertTx(ctx context.Context, tx *sql.Tx, args river.JobArgs, opts *river.InsertOpts) error
}

// Config configures the post-call work of a node.
type Config struct {
	// NodeID names this node; its upload queue is named after it.
	NodeID string
	Store  Store
	Models Models
	// Blobs is where recordings are kept.
	Blobs blob.Store
	// Links signs recording_url links; LinkTTL is how long one works
	// (default 24 hours).
	Links   signedurl.Signer
	LinkTTL time.Duration
	Outbox  Notifier
	// Followups are queued once a call's report is built.
	Followups []Followup
	// Workers is how many report jobs run at once on this node (default
	// 2 × ModelConcurrency); ModelConcurrency bounds the model requests in
	// flight (default 8), ModelTimeout each request (default 60 s).
	Workers          int
	ModelConcurrency int
	ModelTimeout     time.Duration
	// MaxAttempts is how often a report job runs before it gives up on a
	// failing model and sends the report without what failed (default 5).
	MaxAttempts int
	// RetryBase is the wait before a failed job's second attempt; each
	// later wait is four times longer, up to 10 minutes (default 5 s).
	RetryBase time.Duration
	// RecordingWait is how long the report waits for the recording's
	// upload before it goes without recording_url (default 10 minutes).
	RecordingWait time.Duration
	// ExpiryInterval is how often expired content is looked for (default
	// 10 minutes).
	ExpiryInterval time.Duration
	Logger         *slog.Logger
	Now            func() time.Time
}

// Service runs the post-call jobs.
type Service struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	models chan struct{} // semaphore: model requests in flight
	queue  Inserter
}

// Queue names.
const (
	QueueReports = "postcall"
	QueueExpiry  = "maintenance"
	uploadPrefix = "recordings"
)

// New builds the service. Register its workers, then Attach the queue and
// the models.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ModelConcurrency <= 0 {
		cfg.ModelConcurrency = 8
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2 * cfg.ModelConcurrency
	}
	if cfg.ModelTimeout <= 0 {
		cfg.ModelTimeout = time.Minute
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 5
	}
	if cfg.RecordingWait <= 0 {
		cfg.RecordingWait = 10 * time.Minute
	}
	if cfg.ExpiryInterval <= 0 {
		cfg.ExpiryInterval = 10 * time.Minute
	}
	if cfg.LinkTTL <= 0 {
		cfg.LinkTTL = 24 * time.Hour
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 5 * time.Second
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now, models: make(chan struct{}, cfg.ModelConcurrency)}
}

// uploadQueue is this node's upload queue.
func (s *Service) uploadQueue() string { return jobs.NodeQueue(uploadPrefix, s.cfg.NodeID) }

// Queues are the queues this node works, with their worker counts.
func (s *Service) Queues() map[string]int {
	return map[string]int{QueueReports: s.cfg.Workers, s.uploadQueue(): 2, QueueExpiry: 1}
}

// Register adds the job kinds to workers.
func (s *Service) Register(w *river.Workers) {
	river.AddWorker(w, &reportWorker{s: s})
	river.AddWorker(w, &uploadWorker{s: s})
	river.AddWorker(w, &expiryWorker{s: s})
}

// Periodic are the periodic jobs (the leader inserts them).
func (s *Service) Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.cfg.ExpiryInterval),
			func() (river.JobArgs, *river.InsertOpts) {
				return expiryArgs{}, &river.InsertOpts{Queue: QueueExpiry}
			}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// Attach gives the service the queue that Schedule inserts into and the
// models the jobs use (the voice engine, which itself schedules through the
// service: hence attached after both are built).
func (s *Service) Attach(q Inserter, m Models) { s.queue, s.cfg.Models = q, m }

// Schedule queues the post-call work of an ended call inside the
// transaction that records its end. recording is the path of the call's WAV
// on this node's disk, when the call was recorded.
func (s *Service) Schedule(ctx context.Context, tx *sql.Tx, orgID, callID, recording string) error {
	if s.queue == nil {
		return errors.New("post-call work: no job queue attached")
	}
	if recording != "" {
		args := uploadArgs{OrgID: orgID, CallID: callID, File: recording}
		if err := s.queue.InsertTx(ctx, tx, args, &river.InsertOpts{Queue: s.uploadQueue(), MaxAttempts: 10}); err != nil {
			return err
		}
	}
	args := reportArgs{OrgID: orgID, CallID: callID}
	return s.queue.InsertTx(ctx, tx, args, &river.InsertOpts{Queue: QueueReports, MaxAttempts: s.cfg.MaxAttempts,
		UniqueOpts: river.UniqueOpts{ByArgs: true}})
}

// Settled returns the summary of an ended call that needs no post-call work
// at all, and true: nothing recorded to upload, no webhook taking its
// end-of-call report, no analysis plan, and a summary that needs no model
// (no conversation took place, or voicemail). The engine writes that summary
// with the call's end instead of queueing a job, which at a burst of short
// calls (spam, hang-ups during the greeting) is most of the cost of the end.
// c is the call as it ends: messages, end reason, duration, the assistant
// snapshot, the webhook target and the recording state.
func (s *Service) Settled(c *store.Call) (string, bool) {
	if c.RecordingState == store.RecordingPending {
		return "", false
	}
	for _, f := range s.cfg.Followups {
		if f.Wants(c) {
			return "", false
		}
	}
	if t, err := webhook.ParseTarget(c.Webhook); err != nil || t.Wants(webhook.EventEndOfCallReport) {
		return "", false
	}
	var snap snapshot
	if json.Unmarshal(c.Assistant, &snap) != nil {
		return "", false
	}
	if len(snap.AnalysisPlan) > 0 && string(snap.AnalysisPlan) != "null" {
		return "", false
	}
	return analysis.FixedSummary(callInput(c, snap))
}

// RecordingKey is the object key of a call's recording.
func RecordingKey(orgID, callID string) string {
	return "recordings/" + orgID + "/" + url.PathEscape(callID) + ".wav"
}

// RecordingURL is a signed link to a call's recording.
func (s *Service) RecordingURL(orgID, callID string) string {
	return recording.Link(s.cfg.Links, orgID, callID, s.cfg.LinkTTL)
}

// backoff is the delay before attempt n+1 of a failed job: base, 4×base,
// 16×base, …, at most 10 minutes (5 s, 20 s, 80 s, ~5 min, 10 min by default).
func (s *Service) backoff(attempt int) time.Duration { return jobs.Backoff(s.cfg.RetryBase, attempt) }

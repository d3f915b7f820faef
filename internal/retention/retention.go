// Package retention enforces organizations' data retention (spec §7.14,
// §12.8): once content_retention_days have passed since a call ended, its
// content goes (transcript, summary, analysis, the recording object and its
// reference, the end-of-call-report webhook events that carry them); once
// metadata_retention_days have passed, its metadata goes (the caller's
// number, the link from its campaign lead, its webhook events and their
// delivery attempts). An organization without a setting keeps its data; a
// child organization has its own settings. Calls still live are never
// touched.
//
// The work is a periodic River job (kind "retention", queue "maintenance")
// that the leader inserts every Interval and one node runs; Run is one full
// pass, shared by the job and tests. A pass pages through each
// organization's due calls and purges each in its own transaction; purged
// calls are marked and not looked at again, so a pass cut short (its time
// limit, a crash) is simply continued by the next. A recording object is
// deleted before the row forgets it, so a crash in between leaves a
// reference to a missing object (which is not an error) and never an object
// nobody knows of. A webhook event still pending delivery is not deleted: the
// call stays due and a later pass finishes it.
//
// Inbound call ids can hold the caller's number, so nothing here logs a call
// id or a recording key: counts and organization ids only.
package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/parley-voice/parley/internal/blob"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
)

// Store is what retention needs from storage (*store.DB).
type Store interface {
	RetentionPolicies(ctx context.Context) ([]store.RetentionPolicy, error)
	ContentDue(ctx context.Context, orgID string, before time.Time, after store.DueCall, limit int) ([]store.DueCall, error)
	PurgeContent(ctx context.Context, orgID, id string, deletedKey *string) (store.PurgeOutcome, error)
	MetadataDue(ctx context.Context, orgID string, before time.Time, after store.DueCall, limit int) ([]store.DueCall, error)
	PurgeMetadata(ctx context.Context, orgID, id string) (store.PurgeOutcome, error)
}

// Config configures retention enforcement.
type Config struct {
	Store Store
	// Blobs is where recordings are kept.
	Blobs  blob.Store
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Interval is how often the periodic job runs (default 1 hour).
	Interval time.Duration
	// RunLimit bounds one run of the job; a pass that needs longer (the
	// first one over a large backlog) stops there and the next run continues
	// it (default 90 s, under the job queue's default 2-minute timeout).
	RunLimit time.Duration
	// Batch is how many calls are listed at a time (default 200).
	Batch int
}

// Counts is what a pass did, in calls.
type Counts struct {
	// ContentPurged and MetadataPurged calls are done with that part.
	ContentPurged  int
	MetadataPurged int
	// ContentDeferred and MetadataDeferred calls were purged as far as
	// they could be and stay due: a webhook event still pending delivery,
	// a recording upload still pending.
	ContentDeferred  int
	MetadataDeferred int
}

func (c *Counts) add(o Counts) {
	c.ContentPurged += o.ContentPurged
	c.MetadataPurged += o.MetadataPurged
	c.ContentDeferred += o.ContentDeferred
	c.MetadataDeferred += o.MetadataDeferred
}

// Queue is the queue the job runs in (shared with postcall's expiry job).
const Queue = "maintenance"

// day is a retention day.
const day = 24 * time.Hour

// Service enforces retention.
type Service struct {
	cfg Config
	log *slog.Logger
	now func() time.Time
}

// New builds the service. Register its worker and give its Queues and
// Periodic jobs to the job queue.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Hour
	}
	if cfg.RunLimit <= 0 {
		cfg.RunLimit = 90 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 200
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now}
}

// Queues are the queues this node works for retention, with their worker
// counts. The queue is shared with postcall's: merge the maps.
func (s *Service) Queues() map[string]int { return map[string]int{Queue: 1} }

// Register adds the job kind to workers.
func (s *Service) Register(w *river.Workers) { river.AddWorker(w, &worker{s: s}) }

// Periodic are the periodic jobs (the leader inserts them). One run at a
// time: a run is not inserted while another waits or runs.
func (s *Service) Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{
		river.NewPeriodicJob(river.PeriodicInterval(s.cfg.Interval),
			func() (river.JobArgs, *river.InsertOpts) {
				return args{}, &river.InsertOpts{Queue: Queue, MaxAttempts: 3, UniqueOpts: river.UniqueOpts{
					ByArgs: true,
					ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
						rivertype.JobStateRunning, rivertype.JobStateScheduled},
				}}
			}, &river.PeriodicJobOpts{RunOnStart: true}),
	}
}

// args is the periodic job that runs a pass.
type args struct{}

func (args) Kind() string { return "retention" }

type worker struct {
	river.WorkerDefaults[args]
	s *Service
}

func (w *worker) Timeout(*river.Job[args]) time.Duration { return w.s.cfg.RunLimit + 30*time.Second }

func (w *worker) Work(ctx context.Context, j *river.Job[args]) error {
	run, cancel := context.WithTimeout(ctx, w.s.cfg.RunLimit)
	defer cancel()
	c, err := w.s.Run(run)
	if err != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && run.Err() != nil {
		w.s.log.Info("retention pass stopped at its time limit; the next run continues it",
			"content_purged", c.ContentPurged, "metadata_purged", c.MetadataPurged)
		return nil
	}
	return err
}

// Run makes one pass over every organization with a retention setting and
// returns what it did. It goes on past an organization that fails and
// returns the failures together; it stops when ctx ends.
func (s *Service) Run(ctx context.Context) (Counts, error) {
	var total Counts
	policies, err := s.cfg.Store.RetentionPolicies(ctx)
	if err != nil {
		return total, fmt.Errorf("retention: %w", err)
	}
	now := s.now()
	var errs []error
	for _, p := range policies {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("retention: %w", err)
		}
		c, err := s.runOrg(ctx, p, now)
		total.add(c)
		if c.ContentPurged+c.MetadataPurged > 0 {
			s.log.Info("retention enforced", "org_id", p.OrgID, "content_purged", c.ContentPurged, "metadata_purged", c.MetadataPurged,
				"content_deferred", c.ContentDeferred, "metadata_deferred", c.MetadataDeferred)
		} else if c.ContentDeferred+c.MetadataDeferred > 0 {
			s.log.Debug("retention waits for pending work", "org_id", p.OrgID,
				"content_deferred", c.ContentDeferred, "metadata_deferred", c.MetadataDeferred)
		}
		if err != nil {
			if ctx.Err() != nil {
				return total, fmt.Errorf("retention: organization %s: %w", p.OrgID, err)
			}
			s.log.Warn("retention of an organization failed; the next run tries again", "org_id", p.OrgID, "error", err)
			errs = append(errs, fmt.Errorf("organization %s: %w", p.OrgID, err))
		}
	}
	if len(errs) > 0 {
		return total, fmt.Errorf("retention: %w", errors.Join(errs...))
	}
	return total, nil
}

// runOrg purges one organization's due content, then its due metadata.
func (s *Service) runOrg(ctx context.Context, p store.RetentionPolicy, now time.Time) (Counts, error) {
	var c Counts
	if p.ContentDays != nil && *p.ContentDays > 0 {
		before := now.Add(-time.Duration(*p.ContentDays) * day)
		err := s.page(ctx, p.OrgID, before, s.cfg.Store.ContentDue, func(dc store.DueCall) (store.PurgeOutcome, error) {
			return s.purgeContent(ctx, p.OrgID, dc)
		}, &c.ContentPurged, &c.ContentDeferred)
		if err != nil {
			return c, fmt.Errorf("content: %w", err)
		}
	}
	if p.MetadataDays != nil && *p.MetadataDays > 0 {
		before := now.Add(-time.Duration(*p.MetadataDays) * day)
		err := s.page(ctx, p.OrgID, before, s.cfg.Store.MetadataDue, func(dc store.DueCall) (store.PurgeOutcome, error) {
			return s.cfg.Store.PurgeMetadata(ctx, p.OrgID, dc.ID)
		}, &c.MetadataPurged, &c.MetadataDeferred)
		if err != nil {
			return c, fmt.Errorf("metadata: %w", err)
		}
	}
	return c, nil
}

type dueFunc func(ctx context.Context, orgID string, before time.Time, after store.DueCall, limit int) ([]store.DueCall, error)

// page lists the organization's due calls a batch at a time and purges
// each, counting the outcomes. It stops at the first failure.
func (s *Service) page(ctx context.Context, orgID string, before time.Time, due dueFunc,
	purge func(store.DueCall) (store.PurgeOutcome, error), purged, deferred *int) error {
	var after store.DueCall
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		calls, err := due(ctx, orgID, before, after, s.cfg.Batch)
		if err != nil {
			return err
		}
		for _, dc := range calls {
			out, err := purge(dc)
			switch {
			case fault.KindOf(err) == fault.NotFound:
				// Gone since it was listed (its organization deleted).
			case err != nil:
				return err
			case out == store.Purged:
				*purged++
			case out == store.PurgeDeferred:
				*deferred++
			}
		}
		if len(calls) < s.cfg.Batch {
			return nil
		}
		after = calls[len(calls)-1]
	}
}

// purgeContent deletes the call's recording object, then its content.
func (s *Service) purgeContent(ctx context.Context, orgID string, dc store.DueCall) (store.PurgeOutcome, error) {
	if dc.RecordingKey != nil {
		err := s.cfg.Blobs.Delete(ctx, *dc.RecordingKey)
		switch {
		case err == nil, errors.Is(err, blob.ErrNotFound):
		case errors.Is(err, blob.ErrInvalidKey):
			// No store holds an object under such a key: nothing to delete.
		default:
			return 0, fmt.Errorf("delete a recording: %w", redact(err, *dc.RecordingKey, dc.ID))
		}
	}
	return s.cfg.Store.PurgeContent(ctx, orgID, dc.ID, dc.RecordingKey)
}

// redacted is an error whose message has a recording's key and its call's
// id taken out (an inbound call's id can hold the caller's number); Is and
// As still see the error.
type redacted struct {
	err   error
	names []string
}

func redact(err error, key, callID string) error {
	return &redacted{err: err, names: []string{key, callID, url.PathEscape(callID), url.QueryEscape(callID)}}
}

func (r *redacted) Error() string {
	msg := r.err.Error()
	for _, n := range r.names {
		if n != "" {
			msg = strings.ReplaceAll(msg, n, "…")
		}
	}
	return msg
}

func (r *redacted) Unwrap() error { return r.err }

// Package billing settles call usage into organizations' balances.
//
// A call is billed when it ends: its usage log, written in the transaction
// that records the end, carries the minutes it cost and the organization
// that pays (store.EndCall). The balance an organization sees, and the one
// inbound calls are checked against, is its stored balance minus the
// minutes of its unsettled usage logs, so the call's minutes are gone from
// the balance the moment the call's end commits. The stored balance itself
// is not touched on that path: every call of an organization would then
// queue for a lock on one row, which under load caps the ends per second at
// one commit each (measured on PostgreSQL: answered calls fell to about 100
// per second). This package's periodic job folds the unsettled logs into
// the stored balances every few seconds, in one transaction, so the set of
// unsettled logs a balance sums stays small.
package billing

import (
	"context"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
)

// Plan is the plan every organization is on, answered as an organization's
// "plan" (SDK-OLD reads it): a self-hosted Parley has no subscription plans.
const Plan = "self-hosted"

// Store settles usage.
type Store interface {
	SettleUsage(ctx context.Context) (int, error)
}

// Queue is the job's queue: its own, so that a long maintenance job never
// delays a settlement.
const Queue = "billing"

// Config configures settlement.
type Config struct {
	Store Store
	// Interval is how often usage is settled (default 2 s).
	Interval time.Duration
	Logger   *slog.Logger
}

// Service is the settlement job.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New builds the service.
func New(cfg Config) *Service {
	if cfg.Interval <= 0 {
		cfg.Interval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, log: cfg.Logger}
}

// Queues are the job queues this service needs, with their workers.
func (s *Service) Queues() map[string]int { return map[string]int{Queue: 1} }

// Register adds the settlement worker.
func (s *Service) Register(w *river.Workers) { river.AddWorker(w, &worker{s: s}) }

// Periodic is the settlement schedule (run by the queue's leader only).
func (s *Service) Periodic() []*river.PeriodicJob {
	return []*river.PeriodicJob{river.NewPeriodicJob(river.PeriodicInterval(s.cfg.Interval),
		func() (river.JobArgs, *river.InsertOpts) {
			return args{}, &river.InsertOpts{Queue: Queue, MaxAttempts: 1, UniqueOpts: river.UniqueOpts{
				ByArgs: true,
				ByState: []rivertype.JobState{rivertype.JobStateAvailable, rivertype.JobStatePending,
					rivertype.JobStateRunning, rivertype.JobStateScheduled},
			}}
		}, &river.PeriodicJobOpts{RunOnStart: true})}
}

// Settle settles once.
func (s *Service) Settle(ctx context.Context) (int, error) {
	n, err := s.cfg.Store.SettleUsage(ctx)
	if n > 0 {
		s.log.Debug("usage settled", "usage_logs", n)
	}
	return n, err
}

type args struct{}

func (args) Kind() string { return "billing_settle" }

type worker struct {
	river.WorkerDefaults[args]
	s *Service
}

func (w *worker) Work(ctx context.Context, _ *river.Job[args]) error {
	_, err := w.s.Settle(ctx)
	return err
}

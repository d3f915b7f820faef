// Package recovery ends the calls a crash left live.
//
// Every process life of a node is a boot (store.Boot): it is recorded when
// `parley serve` starts, heartbeats while it runs and is marked stopped when
// it stops cleanly. The engine stamps each call with the boot that runs it.
// A boot is over when it stopped, when its heartbeat is older than
// DeadAfter, or when the same node started again since; the live calls of a
// boot that is over are orphans, since the process that ran them is gone.
//
// Every node sweeps for orphans when it starts (its own earlier lives first,
// so a restarted node ends what it left within seconds) and then on every
// heartbeat (any node's, so a node that never comes back has its calls
// ended by the others). An orphan is ended like any call: one transaction
// with its final status (ended-with-error when it had been answered,
// failed when it had not), end_reason server_stopped_unexpectedly, a
// duration up to its last persisted activity (the later of its own last
// write and its boot's last heartbeat), its usage and minutes, its
// status-update webhook and its post-call jobs (summary, analysis and the
// end-of-call report). The end is conditional on the call still being live
// and still owned by that boot, so several nodes sweeping at once end each
// orphan exactly once, and a live node's calls are never touched: its boot
// is not over.
package recovery

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
	"github.com/parley-voice/parley/internal/store"
	"github.com/parley-voice/parley/internal/webhook"
)

// Store is what recovery needs from storage.
type Store interface {
	StartBoot(ctx context.Context, nodeID string) (*store.Boot, error)
	Heartbeat(ctx context.Context, bootID string) error
	StopBoot(ctx context.Context, bootID string) error
	BootsOver(ctx context.Context, staleBefore time.Time, nodeID string) ([]store.Boot, error)
	LiveCallsOf(ctx context.Context, bootID string, limit int) ([]store.Call, error)
	GetNumber(ctx context.Context, orgID, id string) (*store.Number, error)
	EndCall(ctx context.Context, e store.CallEnd) error
}

// AfterCall queues a call's post-call work in the transaction that ends it.
type AfterCall interface {
	Schedule(ctx context.Context, tx *sql.Tx, orgID, callID, recording string) error
}

// Notifier wakes the webhook outbox dispatcher.
type Notifier interface{ Notify() }

// Config configures recovery.
type Config struct {
	NodeID string
	Store  Store
	// AfterCall queues the post-call work of answered orphans; nil: none.
	AfterCall AfterCall
	Outbox    Notifier
	// Heartbeat is how often the boot's heartbeat is written and orphans
	// are looked for (default 5 s).
	Heartbeat time.Duration
	// DeadAfter is how old a boot's last heartbeat is when the boot is taken
	// for dead (default 60 s). Keep it well above Heartbeat: a live node
	// whose heartbeats are late would lose its calls.
	DeadAfter time.Duration
	// AdoptUnowned also ends live calls that name no boot (made by a
	// version that did not record boots). Set it only where one node uses
	// the database (SQLite).
	AdoptUnowned bool
	Logger       *slog.Logger
	Now          func() time.Time
}

// Service records this node's boot and ends orphaned calls.
type Service struct {
	cfg  Config
	log  *slog.Logger
	now  func() time.Time
	boot *store.Boot
}

// New builds the service; Start records the boot.
func New(cfg Config) *Service {
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 5 * time.Second
	}
	if cfg.DeadAfter <= 0 {
		cfg.DeadAfter = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger, now: cfg.Now}
}

// Start records this process life and returns its boot id, which the
// engine stamps on every call it runs.
func (s *Service) Start(ctx context.Context) (string, error) {
	b, err := s.cfg.Store.StartBoot(ctx, s.cfg.NodeID)
	if err != nil {
		return "", err
	}
	s.boot = b
	return b.ID, nil
}

// Run ends orphans at once, then heartbeats and sweeps until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	if s.boot == nil {
		return errors.New("recovery: Run before Start")
	}
	s.sweepAndLog(ctx)
	t := time.NewTicker(s.cfg.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := s.cfg.Store.Heartbeat(ctx, s.boot.ID); err != nil && ctx.Err() == nil {
				s.log.Warn("heartbeat", "error", err)
			}
			s.sweepAndLog(ctx)
		}
	}
}

// Stop records that this boot ended cleanly.
func (s *Service) Stop(ctx context.Context) error {
	if s.boot == nil {
		return nil
	}
	return s.cfg.Store.StopBoot(ctx, s.boot.ID)
}

func (s *Service) sweepAndLog(ctx context.Context) {
	n, err := s.Sweep(ctx)
	if err != nil && ctx.Err() == nil {
		s.log.Error("end orphaned calls", "error", err, "ended", n)
	}
}

// sweepBatch is how many calls of one boot are read at a time.
const sweepBatch = 100

// Sweep ends every orphaned call once and returns how many it ended.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	boots, err := s.cfg.Store.BootsOver(ctx, s.now().Add(-s.cfg.DeadAfter), "")
	if err != nil {
		return 0, err
	}
	if s.cfg.AdoptUnowned {
		boots = append(boots, store.Boot{})
	}
	ended := 0
	var errs []error
	for _, b := range boots {
		if b.ID == s.bootID() {
			continue // this process is alive
		}
		n, err := s.endBoot(ctx, b)
		ended += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	return ended, errors.Join(errs...)
}

func (s *Service) bootID() string {
	if s.boot == nil {
		return ""
	}
	return s.boot.ID
}

// endBoot ends the live calls of a boot that is over.
func (s *Service) endBoot(ctx context.Context, b store.Boot) (int, error) {
	ended := 0
	seen := map[string]bool{}
	for {
		calls, err := s.cfg.Store.LiveCallsOf(ctx, b.ID, sweepBatch)
		if err != nil {
			return ended, err
		}
		progressed := false
		for i := range calls {
			c := &calls[i]
			if seen[c.ID] {
				continue
			}
			seen[c.ID] = true
			progressed = true
			err := s.end(ctx, b, c)
			switch {
			case err == nil:
				ended++
			case errors.Is(err, store.ErrEnded), fault.KindOf(err) == fault.NotFound:
				// Another node ended it first, or it ended on its own.
			default:
				return ended, fmt.Errorf("end orphaned call %s: %w", c.ID, err)
			}
		}
		if len(calls) < sweepBatch || !progressed {
			return ended, nil
		}
	}
}

// end ends one orphan.
func (s *Service) end(ctx context.Context, b store.Boot, c *store.Call) error {
	now := s.now().UTC()
	last := c.UpdatedAt
	if b.HeartbeatAt.After(last) {
		last = b.HeartbeatAt
	}
	if last.After(now) {
		last = now
	}
	e := store.CallEnd{OrgID: c.OrgID, ID: c.ID, EndReason: call.EndServerLost, EndedAt: last, BootID: b.ID,
		Error: "the server running the call stopped unexpectedly"}
	answered := c.Status == call.StatusInProgress && c.StartedAt != nil
	if answered {
		secs := int(math.Ceil(last.Sub(*c.StartedAt).Seconds()))
		secs = max(secs, 0)
		e.Status, e.Duration = call.StatusEndedWithError, &secs
		e.Usage = &store.UsageLog{OrgID: c.OrgID, CallID: &c.ID, DurationSec: secs, CallType: c.Direction.UsageType(),
			PhoneNumber: c.PhoneNumber, AgentName: c.AgentName, BusinessName: c.BusinessName}
		if s.cfg.AfterCall != nil {
			e.InTx = func(ctx context.Context, tx *sql.Tx) error {
				return s.cfg.AfterCall.Schedule(ctx, tx, c.OrgID, c.ID, "")
			}
		}
	} else {
		e.Status = call.StatusFailed
	}
	ev, err := s.statusEvent(ctx, c, e)
	if err != nil {
		return err
	}
	if ev != nil {
		e.Events = []store.OutboxEvent{*ev}
	}
	if err := s.cfg.Store.EndCall(ctx, e); err != nil {
		return err
	}
	if ev != nil && s.cfg.Outbox != nil {
		s.cfg.Outbox.Notify()
	}
	s.log.Info("orphaned call ended", "call_id", c.ID, "org_id", c.OrgID, "boot", b.ID, "node", b.NodeID,
		"status", e.Status.String(), "duration_s", e.Duration, "last_activity", last)
	return nil
}

// statusEvent is the status-update announcing the orphan's end, to the
// webhook the call was started with; nil when it does not take them.
func (s *Service) statusEvent(ctx context.Context, c *store.Call, e store.CallEnd) (*store.OutboxEvent, error) {
	target, err := webhook.ParseTarget(c.Webhook)
	if err != nil {
		return nil, fmt.Errorf("read the call's webhook target: %w", err)
	}
	if !target.Wants(webhook.EventStatusUpdate) {
		return nil, nil
	}
	ended := *c
	ended.Status = e.Status
	// Without the number's name if it cannot be read: the end matters more.
	env, _ := webhook.StoredEnvelope(ctx, s.cfg.Store, &ended)
	ev := &store.OutboxEvent{
		ID: webhook.EventID(c.ID, webhook.EventStatusUpdate, e.Status.String()), OrgID: c.OrgID, CallID: &c.ID,
		EventType: webhook.EventStatusUpdate, URL: target.URL,
		Payload: env.Body(webhook.EventStatusUpdate, s.now(), map[string]any{"end_reason": string(e.EndReason), "error": e.Error}),
	}
	if target.Secret != "" {
		ev.Secret = &target.Secret
	}
	return ev, nil
}

package webhook

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/parley-voice/parley/internal/secret"
	"github.com/parley-voice/parley/internal/store"
)

// Outbox is what the dispatcher needs from storage (*store.DB satisfies it).
type Outbox interface {
	ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]store.OutboxEvent, error)
	MarkDelivered(ctx context.Context, id string, at time.Time) error
	RetryEvent(ctx context.Context, id string, next time.Time, lastErr string) error
	FailEvent(ctx context.Context, id string, at time.Time, lastErr string) error
	LogDelivery(ctx context.Context, d *store.Delivery) error
}

var _ Outbox = (*store.DB)(nil)

// Opener opens sealed secrets (*secret.Keyring satisfies it).
type Opener interface {
	Open(sealed string, b secret.Binding) ([]byte, error)
}

var _ Opener = (*secret.Keyring)(nil)

// SecretBinding is how an event's signing secret is sealed in the outbox.
func SecretBinding(orgID string) secret.Binding {
	return secret.Binding{OrgID: orgID, Table: "webhook_outbox", Field: "secret"}
}

// writeTimeout bounds the store writes that close an attempt. They run
// detached from Run's context, so a graceful stop still records the outcome.
const writeTimeout = 10 * time.Second

// DispatcherConfig configures a Dispatcher. Zero values take the defaults.
type DispatcherConfig struct {
	Workers int           // concurrent deliveries (default 4)
	Poll    time.Duration // how often to look for due events when not notified (default 1s)
	// Lease is how long a claim holds an event (default 30s). It must exceed
	// Timeout; a shorter one is raised to 3×Timeout.
	Lease       time.Duration
	Timeout     time.Duration // per attempt (default 10s)
	MaxAttempts int           // attempts before an event fails for good (default 12)
	// Backoff is the delay before the attempt after attempt n (1-based);
	// default DefaultBackoff.
	Backoff func(attempt int) time.Duration
	Logger  *slog.Logger     // nil discards
	Now     func() time.Time // nil means time.Now
}

// DefaultBackoff waits 1s·2^(attempt-1), capped at 10 minutes, then moves the
// result by up to ±20% at random so receivers recovering from an outage are
// not hit by every retry at once.
func DefaultBackoff(attempt int) time.Duration {
	const maxDelay = 10 * time.Minute
	d := maxDelay
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 20 {
		d = min(time.Second<<(attempt-1), maxDelay)
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// Dispatcher delivers the outbox: it claims due events, posts them with a
// Sender, logs every attempt and records the outcome.
type Dispatcher struct {
	out  Outbox
	open Opener
	send *Sender
	cfg  DispatcherConfig
	log  *slog.Logger
	wake chan struct{}
}

// NewDispatcher returns a dispatcher over o. open opens events' sealed
// secrets; it may be nil when no event is signed.
func NewDispatcher(o Outbox, open Opener, s *Sender, cfg DispatcherConfig) *Dispatcher {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Lease <= cfg.Timeout {
		cfg.Lease = 3 * cfg.Timeout
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 12
	}
	if cfg.Backoff == nil {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{out: o, open: open, send: s, cfg: cfg, log: log, wake: make(chan struct{}, 1)}
}

// Notify wakes the dispatcher at once; call it after committing new events.
// It never blocks.
func (d *Dispatcher) Notify() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then returns nil after the attempts in flight
// have finished; each is bounded by Timeout, and its outcome is recorded even
// though ctx has ended. Run a Dispatcher once at a time.
func (d *Dispatcher) Run(ctx context.Context) error {
	jobs := make(chan store.OutboxEvent)
	// done reports a finished delivery, and whether it was a call's event
	// (which may have let the call's next event go: see ClaimEvents).
	done := make(chan bool, d.cfg.Workers)
	var wg sync.WaitGroup
	for range d.cfg.Workers {
		wg.Go(func() {
			for ev := range jobs {
				d.deliver(ctx, ev)
				done <- ev.CallID != nil
			}
		})
	}
	defer wg.Wait()
	defer close(jobs)

	idle := d.cfg.Workers
	poll := time.NewTimer(d.cfg.Poll)
	defer poll.Stop()
	look := true // whether events may be due now
	for {
		if look && idle > 0 {
			evs, err := d.out.ClaimEvents(ctx, d.cfg.Now(), idle, d.cfg.Lease)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				d.log.Warn("claim webhook events", "err", err)
			}
			for _, ev := range evs {
				jobs <- ev // a worker is idle, so this does not wait long
				idle--
			}
			// A full batch suggests more are due: claim again as soon as a
			// worker frees up. Otherwise wait for Notify or the next poll.
			look = err == nil && idle == 0
			if !look {
				poll.Reset(d.cfg.Poll)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case next := <-done:
			idle++
			look = look || next
		case <-d.wake:
			look = true
		case <-poll.C:
			look = true
		}
	}
}

// deliver makes one attempt at ev. It runs to the end even when ctx ends: the
// post is bounded by Timeout and the writes by writeTimeout.
func (d *Dispatcher) deliver(ctx context.Context, ev store.OutboxEvent) {
	actx := context.WithoutCancel(ctx)
	start := d.cfg.Now()
	var key string
	if ev.Secret != nil {
		var err error
		if d.open == nil {
			err = errors.New("no keyring to open it")
		} else {
			var pt []byte
			pt, err = d.open.Open(*ev.Secret, SecretBinding(ev.OrgID))
			key = string(pt)
		}
		if err != nil {
			d.finish(actx, ev, start, Response{}, fmt.Errorf("webhook secret cannot be opened: %w", err), true)
			return
		}
	}
	sctx, cancel := context.WithTimeout(actx, d.cfg.Timeout)
	resp, err := d.send.Send(sctx, Request{ID: ev.ID, Event: ev.EventType, URL: ev.URL, Secret: key, Body: ev.Payload, Attempt: ev.Attempts})
	cancel()
	// A destination the URL guard refuses stays refused: no retry.
	d.finish(actx, ev, start, resp, err, errors.Is(err, ErrRefused))
}

// finish logs the attempt and records its outcome: delivered, retry later, or
// failed for good (permanent errors such as a secret that cannot be opened or
// a destination the URL guard refuses, 410 Gone, attempts exhausted).
func (d *Dispatcher) finish(ctx context.Context, ev store.OutboxEvent, start time.Time, resp Response, sendErr error, permanent bool) {
	ctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	log := d.log.With("event_id", ev.ID, "event", ev.EventType, "org_id", ev.OrgID, "host", host(ev.URL), "attempt", ev.Attempts)
	dl := &store.Delivery{OrgID: ev.OrgID, EventID: ev.ID, EventType: ev.EventType, CallID: ev.CallID, URL: ev.URL,
		Attempt: ev.Attempts, Duration: resp.Duration, CreatedAt: start}
	if resp.Status != 0 {
		st := resp.Status
		dl.StatusCode = &st
	}
	var msg string
	if sendErr != nil {
		msg = sendErr.Error()
		dl.Error = &msg
	}
	if err := d.out.LogDelivery(ctx, dl); err != nil {
		log.Error("log webhook delivery", "err", err)
	}
	now := d.cfg.Now()
	var err error
	switch {
	case resp.Status >= 200 && resp.Status <= 299:
		err = d.out.MarkDelivered(ctx, ev.ID, now)
		log.Info("webhook delivered", "status", resp.Status, "duration", resp.Duration)
	case permanent:
		err = d.out.FailEvent(ctx, ev.ID, now, msg)
		log.Warn("webhook failed", "err", msg)
	case resp.Status == http.StatusGone:
		err = d.out.FailEvent(ctx, ev.ID, now, "receiver answered 410 Gone (unsubscribed): "+msg)
		log.Info("webhook receiver gone; not retrying", "status", resp.Status)
	case ev.Attempts >= d.cfg.MaxAttempts:
		err = d.out.FailEvent(ctx, ev.ID, now, fmt.Sprintf("gave up after %d attempts: %s", ev.Attempts, msg))
		log.Warn("webhook failed; attempts exhausted", "status", resp.Status, "err", msg)
	default:
		next := now.Add(d.cfg.Backoff(ev.Attempts))
		err = d.out.RetryEvent(ctx, ev.ID, next, msg)
		log.Info("webhook attempt failed; will retry", "status", resp.Status, "err", msg, "next_attempt_at", next)
	}
	if err != nil {
		// The lease runs out and the event is claimed again: at least once.
		log.Error("record webhook outcome", "err", err)
	}
}

// host returns the host of a webhook URL, for logs: paths and queries may
// carry credentials.
func host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "?"
	}
	return u.Host
}

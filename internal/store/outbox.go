package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// OutboxEvent is a webhook waiting to be delivered (or delivered). Events are
// written in the same transaction as the state change they announce, so an
// event exists exactly when its change was committed; a worker delivers them
// at least once.
type OutboxEvent struct {
	ID     string // stable event id, sent with every attempt; NewID when empty
	OrgID  string
	CallID *string
	// Seq orders a call's events (1, 2, …); 0 for events not tied to a call.
	Seq       int
	EventType string // assistant-request, tool-calls, status-update, end-of-call-report
	URL       string
	// Secret is the sealed signing secret (nil: send unsigned).
	Secret  *string
	Payload []byte // the exact body to send
	// Attempts made so far; NextAttemptAt is when the next one is due.
	Attempts      int
	NextAttemptAt time.Time
	DeliveredAt   *time.Time
	FailedAt      *time.Time // gave up
	LastError     *string
	CreatedAt     time.Time
}

// insertEvents adds events to the outbox inside the caller's transaction.
func (db *DB) insertEvents(ctx context.Context, q querier, evs []OutboxEvent) error {
	now := db.now()
	for i := range evs {
		e := &evs[i]
		if e.ID == "" {
			e.ID = NewID()
		}
		if e.CreatedAt.IsZero() {
			e.CreatedAt = now
		}
		if e.NextAttemptAt.IsZero() {
			e.NextAttemptAt = e.CreatedAt
		}
		if e.CallID != nil && e.Seq == 0 {
			// Numbered after the call's last event, so it is delivered after them.
			var last sql.NullInt64
			if err := q.QueryRowContext(ctx, db.q(`SELECT MAX(seq) FROM webhook_outbox WHERE call_id = ?`), *e.CallID).Scan(&last); err != nil {
				return fmt.Errorf("number webhook event of call %s: %w", *e.CallID, err)
			}
			e.Seq = int(last.Int64) + 1
		}
		_, err := q.ExecContext(ctx, db.q(`INSERT INTO webhook_outbox (id, org_id, call_id, seq, event_type, url, secret, payload, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)`),
			e.ID, e.OrgID, nullStr(e.CallID), e.Seq, e.EventType, e.URL, nullStr(e.Secret), string(e.Payload), ms(e.NextAttemptAt), ms(e.CreatedAt))
		if err != nil {
			return fmt.Errorf("insert webhook event %s: %w", e.EventType, err)
		}
	}
	return nil
}

// EnqueueEvents adds events to the outbox on their own (no state change).
func (db *DB) EnqueueEvents(ctx context.Context, evs ...OutboxEvent) error {
	if len(evs) == 0 {
		return nil
	}
	return db.insertEvents(ctx, db.write, evs)
}

// The outbox worker's side: claim due events under a lease, then record how
// the attempt went. A claim increments attempts and pushes next_attempt_at to
// the end of the lease in the same transaction, so an event whose worker dies
// mid-delivery becomes due again when the lease runs out (at-least-once).

const eventColumns = `id, org_id, call_id, seq, event_type, url, secret, payload, attempts, next_attempt_at, delivered_at, failed_at, last_error, created_at`

func scanEvent(row interface{ Scan(...any) error }) (*OutboxEvent, error) {
	var e OutboxEvent
	var callID, sec, lastErr sql.NullString
	var payload string
	var next, created int64
	var delivered, failed sql.NullInt64
	if err := row.Scan(&e.ID, &e.OrgID, &callID, &e.Seq, &e.EventType, &e.URL, &sec, &payload, &e.Attempts, &next, &delivered, &failed, &lastErr, &created); err != nil {
		return nil, err
	}
	e.CallID, e.Secret, e.LastError = strPtr(callID), strPtr(sec), strPtr(lastErr)
	e.Payload = []byte(payload)
	e.NextAttemptAt, e.CreatedAt = fromMS(next), fromMS(created)
	e.DeliveredAt, e.FailedAt = fromNullMS(delivered), fromNullMS(failed)
	return &e, nil
}

// ClaimEvents returns up to limit due events (neither delivered nor failed,
// next_attempt_at <= now), oldest due first, and in the same transaction
// increments their attempts and moves next_attempt_at to now+lease. The
// returned events carry the updated values: Attempts is the number of the
// attempt the caller is about to make. Concurrent claimers, in one process or
// several, get disjoint events (PostgreSQL skips rows another claim holds;
// SQLite has one writer).
//
// One call's events to one URL go out one at a time, in seq order: an
// event is not claimed while an earlier one of its call and URL is still
// pending (due later, or claimed and in flight). Receivers see a call's
// status changes in the order they happened; once an event is delivered or
// has failed for good, the next one goes.
func (db *DB) ClaimEvents(ctx context.Context, now time.Time, limit int, lease time.Duration) ([]OutboxEvent, error) {
	if limit <= 0 {
		return nil, nil
	}
	if lease <= 0 {
		return nil, fmt.Errorf("claim webhook events: lease must be positive, got %v", lease)
	}
	until := now.Add(lease)
	var out []OutboxEvent
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		out = out[:0]
		rows, err := db.w(tx).QueryContext(ctx, db.q(`SELECT `+eventColumns+` FROM webhook_outbox o
			WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
			AND (call_id IS NULL OR NOT EXISTS (SELECT 1 FROM webhook_outbox p
				WHERE p.call_id = o.call_id AND p.url = o.url AND p.seq < o.seq
				AND p.delivered_at IS NULL AND p.failed_at IS NULL))
			ORDER BY next_attempt_at, created_at, seq, id LIMIT ? `+db.drv.SkipLocked()), ms(now), limit)
		if err != nil {
			return fmt.Errorf("select due webhook events: %w", err)
		}
		for rows.Next() {
			e, err := scanEvent(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("select due webhook events: %w", err)
			}
			out = append(out, *e)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("select due webhook events: %w", err)
		}
		if err := rows.Err(); err != nil {
			return fmt.Errorf("select due webhook events: %w", err)
		}
		if len(out) == 0 {
			return nil
		}
		args := make([]any, 0, len(out)+1)
		args = append(args, ms(until))
		for _, e := range out {
			args = append(args, e.ID)
		}
		in := strings.Repeat("?, ", len(out)-1) + "?"
		res, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_at = ? WHERE id IN (`+in+`)`), args...)
		if err != nil {
			return fmt.Errorf("lease webhook events: %w", err)
		}
		if n, err := res.RowsAffected(); err == nil && n != int64(len(out)) {
			return fmt.Errorf("lease webhook events: updated %d of %d claimed rows", n, len(out))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook events: %w", err)
	}
	for i := range out {
		out[i].Attempts++
		out[i].NextAttemptAt = fromMS(ms(until))
	}
	return out, nil
}

// finishEvent runs an UPDATE of one pending event. When no row changed it
// tells a missing event (fault.NotFound) from one that is already delivered or
// failed, which it leaves alone: with at-least-once delivery a slow worker may
// report on an event another worker has finished since.
func (db *DB) finishEvent(ctx context.Context, what, id, query string, args ...any) error {
	res, err := db.exec(ctx, db.q(query), args...)
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return nil
	}
	var one int
	err = db.write.QueryRowContext(ctx, db.q(`SELECT 1 FROM webhook_outbox WHERE id = ?`), id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fault.NotFoundf("webhook event %s not found", id)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	return nil
}

// MarkDelivered records that the event was acknowledged (any 2xx). An event
// already delivered keeps its first delivery time; an acknowledgement wins
// over a concurrent worker's FailEvent.
func (db *DB) MarkDelivered(ctx context.Context, id string, at time.Time) error {
	return db.finishEvent(ctx, "mark webhook event delivered", id,
		`UPDATE webhook_outbox SET delivered_at = ?, failed_at = NULL, last_error = NULL WHERE id = ? AND delivered_at IS NULL`, ms(at), id)
}

// RetryEvent schedules the next attempt of a pending event at next and records
// why the last one failed. Delivered and failed events are left alone.
func (db *DB) RetryEvent(ctx context.Context, id string, next time.Time, lastErr string) error {
	return db.finishEvent(ctx, "reschedule webhook event", id,
		`UPDATE webhook_outbox SET next_attempt_at = ?, last_error = ? WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL`, ms(next), lastErr, id)
}

// FailEvent gives up on a pending event for good (attempts exhausted, receiver
// gone, secret unusable), recording why. Delivered events are left alone.
func (db *DB) FailEvent(ctx context.Context, id string, at time.Time, lastErr string) error {
	return db.finishEvent(ctx, "fail webhook event", id,
		`UPDATE webhook_outbox SET failed_at = ?, last_error = ? WHERE id = ? AND delivered_at IS NULL AND failed_at IS NULL`, ms(at), lastErr, id)
}

// GetEvent returns one of the organization's webhook events.
func (db *DB) GetEvent(ctx context.Context, orgID, id string) (*OutboxEvent, error) {
	e, err := scanEvent(db.read.QueryRowContext(ctx, db.q(`SELECT `+eventColumns+` FROM webhook_outbox WHERE id = ? AND org_id = ?`), id, orgID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fault.NotFoundf("webhook event %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get webhook event: %w", err)
	}
	return e, nil
}

// EventFilter selects webhook events for a list. Empty fields match all.
type EventFilter struct {
	CallID    string
	EventType string
	Page      Page
}

// ListEvents returns the organization's webhook events matching f, newest
// first, and the total that match.
func (db *DB) ListEvents(ctx context.Context, orgID string, f EventFilter) ([]OutboxEvent, int, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if f.CallID != "" {
		where, args = append(where, "call_id = ?"), append(args, f.CallID)
	}
	if f.EventType != "" {
		where, args = append(where, "event_type = ?"), append(args, f.EventType)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhook_outbox WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count webhook events: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+eventColumns+` FROM webhook_outbox WHERE `+cond+` ORDER BY created_at DESC, seq DESC, id DESC LIMIT ? OFFSET ?`), append(args, f.Page.Limit, f.Page.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list webhook events: %w", err)
	}
	defer rows.Close()
	out := []OutboxEvent{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, 0, fmt.Errorf("list webhook events: %w", err)
		}
		out = append(out, *e)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list webhook events: %w", err)
	}
	return out, total, nil
}

// Delivery is one attempt to deliver a webhook event, successful or not.
type Delivery struct {
	ID, OrgID, EventID, EventType string
	CallID                        *string
	URL                           string
	Attempt                       int
	StatusCode                    *int    // nil when no HTTP response arrived
	Error                         *string // nil on success
	Duration                      time.Duration
	CreatedAt                     time.Time
}

const deliveryColumns = `id, org_id, event_id, event_type, call_id, url, attempt, status_code, error, duration_ms, created_at`

// LogDelivery records an attempt. ID defaults to NewID and CreatedAt to now;
// Duration is kept to the millisecond.
func (db *DB) LogDelivery(ctx context.Context, d *Delivery) error {
	if d.ID == "" {
		d.ID = NewID()
	}
	if d.CreatedAt.IsZero() {
		d.CreatedAt = db.now().UTC().Truncate(time.Millisecond)
	}
	_, err := db.exec(ctx, db.q(`INSERT INTO webhook_deliveries (`+deliveryColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		d.ID, d.OrgID, d.EventID, d.EventType, nullStr(d.CallID), d.URL, d.Attempt, nullInt(d.StatusCode), nullStr(d.Error), d.Duration.Milliseconds(), ms(d.CreatedAt))
	if err != nil {
		return fmt.Errorf("log webhook delivery of event %s: %w", d.EventID, err)
	}
	return nil
}

// DeliveryFilter selects delivery attempts for a list. Empty fields match all.
type DeliveryFilter struct {
	EventID string
	CallID  string
	Page    Page
}

// ListDeliveries returns the organization's delivery attempts matching f,
// newest first, and the total that match.
func (db *DB) ListDeliveries(ctx context.Context, orgID string, f DeliveryFilter) ([]Delivery, int, error) {
	where := []string{"org_id = ?"}
	args := []any{orgID}
	if f.EventID != "" {
		where, args = append(where, "event_id = ?"), append(args, f.EventID)
	}
	if f.CallID != "" {
		where, args = append(where, "call_id = ?"), append(args, f.CallID)
	}
	cond := strings.Join(where, " AND ")
	var total int
	if err := db.read.QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhook_deliveries WHERE `+cond), args...).Scan(&total); err != nil {
		return nil, 0, fmt.Errorf("count webhook deliveries: %w", err)
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+deliveryColumns+` FROM webhook_deliveries WHERE `+cond+` ORDER BY created_at DESC, attempt DESC, id DESC LIMIT ? OFFSET ?`), append(args, f.Page.Limit, f.Page.Offset)...)
	if err != nil {
		return nil, 0, fmt.Errorf("list webhook deliveries: %w", err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var callID, errS sql.NullString
		var status sql.NullInt64
		var dur, created int64
		if err := rows.Scan(&d.ID, &d.OrgID, &d.EventID, &d.EventType, &callID, &d.URL, &d.Attempt, &status, &errS, &dur, &created); err != nil {
			return nil, 0, fmt.Errorf("list webhook deliveries: %w", err)
		}
		d.CallID, d.StatusCode, d.Error = strPtr(callID), intPtr(status), strPtr(errS)
		d.Duration, d.CreatedAt = time.Duration(dur)*time.Millisecond, fromMS(created)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("list webhook deliveries: %w", err)
	}
	return out, total, nil
}

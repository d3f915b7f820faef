package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
)

// The live-call engine moves a call through its life with these writes.
// Each is scoped by organization like every other query.

// StartCall marks an answered call in progress and queues evs with it.
func (db *DB) StartCall(ctx context.Context, orgID, id string, at time.Time, evs ...OutboxEvent) error {
	return db.execWithEvents(ctx, evs, func(res sql.Result, err error) error { return oneRow(res, err, "start call", id) },
		db.q(`UPDATE calls SET status = ?, started_at = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
		call.StatusInProgress.String(), ms(at), ms(db.now()), id, orgID)
}

// SetCallStatus moves a call to a non-final status (ringing, say) and
// queues evs with the change.
func (db *DB) SetCallStatus(ctx context.Context, orgID, id string, st call.Status, evs ...OutboxEvent) error {
	if st.Final() {
		return fmt.Errorf("set call status %s: %s is final; use EndCall", id, st)
	}
	return db.execWithEvents(ctx, evs, func(res sql.Result, err error) error { return oneRow(res, err, "set call status", id) },
		db.q(`UPDATE calls SET status = ?, updated_at = ? WHERE id = ? AND org_id = ?`), st.String(), ms(db.now()), id, orgID)
}

// execWithEvents runs one write statement, judged by check, and queues evs
// in the same transaction. Without events the statement runs on its own
// (DB.exec: one round trip on PostgreSQL instead of three).
func (db *DB) execWithEvents(ctx context.Context, evs []OutboxEvent, check func(sql.Result, error) error, query string, args ...any) error {
	if len(evs) == 0 {
		return check(db.exec(ctx, query, args...))
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		if err := check(db.w(tx).ExecContext(ctx, query, args...)); err != nil {
			return err
		}
		return db.insertEvents(ctx, db.w(tx), evs)
	})
}

// SaveTranscript stores the transcript and turn figures so far; the engine
// calls it as each turn completes, so a crash loses at most the turn in flight.
func (db *DB) SaveTranscript(ctx context.Context, orgID, id string, messages, metrics json.RawMessage) error {
	res, err := db.exec(ctx, db.q(`UPDATE calls SET messages = ?, metrics = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
		rawOrNil(messages), rawOrNil(metrics), ms(db.now()), id, orgID)
	return oneRow(res, err, "save transcript", id)
}

// CallEnd is the final state of a call.
type CallEnd struct {
	OrgID, ID string
	Status    call.Status
	EndReason call.EndReason
	Error     string // for failed and ended-with-error calls
	EndedAt   time.Time
	// Duration is set for answered calls.
	Duration *int
	Messages json.RawMessage
	Metrics  json.RawMessage
	// Usage is written in the same transaction, and its minutes are taken
	// from the paying organization's balance (answered calls are billed).
	Usage *UsageLog
	// Events are queued in the same transaction (status-update, end-of-call-report).
	Events []OutboxEvent
	// BootID, when set, ends the call only while that process life of a
	// node still owns it (crash recovery ending an orphan).
	BootID string
	// Recording is RecordingPending when the call left a recording to upload.
	Recording RecordingState
	// Consent is the caller's recording-consent answer, when asked.
	Consent string
	// ContentExpiresAt, when set, is when the call's content is deleted.
	ContentExpiresAt *time.Time
	// Summary, when set, is written with the end (a summary that needs no
	// model, for a call with no post-call work).
	Summary string
	// InTx runs inside the transaction after the writes above (the engine
	// queues the call's post-call jobs there), so they commit together.
	InTx TxFunc
}

// TxFunc does more work inside a store transaction, so that it commits or
// rolls back with the store's own writes (a job queued with a state change).
type TxFunc func(ctx context.Context, tx *sql.Tx) error

// ErrEnded is returned (wrapped) by EndCall when the call had already ended:
// its end was recorded before, by this engine or by crash recovery.
var ErrEnded = errors.New("call has already ended")

// liveStatuses are the statuses of a call that has not ended.
const liveStatuses = `('connecting', 'ringing', 'dialing', 'in-progress')`

// BilledMinutes is what a call of secs seconds costs: calls are billed per
// second (their duration is rounded up to the whole second when it is
// measured), in minutes.
func BilledMinutes(secs int) float64 { return float64(secs) / 60 }

// EndCall writes a call's final state, its usage log (which takes its minutes
// from the paying organization's balance) and its webhook events atomically. Only a
// live call is ended: a second EndCall of the same call (a retry whose first
// commit succeeded, or a race with crash recovery) changes nothing and
// returns ErrEnded, so a call is never billed twice.
func (db *DB) EndCall(ctx context.Context, e CallEnd) error {
	if !e.Status.Final() {
		return fmt.Errorf("end call %s: status %s is not final", e.ID, e.Status)
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var reason, errS *string
		if e.EndReason != "" {
			r := string(e.EndReason)
			reason = &r
		}
		if e.Error != "" {
			errS = &e.Error
		}
		var consent *string
		if e.Consent != "" {
			consent = &e.Consent
		}
		query := `UPDATE calls SET status = ?, end_reason = ?, error = ?, ended_at = ?, duration_seconds = ?,
			messages = COALESCE(?, messages), metrics = COALESCE(?, metrics), recording_state = COALESCE(?, recording_state),
			consent = COALESCE(?, consent), content_expires_at = COALESCE(?, content_expires_at), summary = COALESCE(?, summary), updated_at = ?
			WHERE id = ? AND org_id = ? AND status IN ` + liveStatuses
		args := []any{e.Status.String(), nullStr(reason), nullStr(errS), ms(e.EndedAt), nullInt(e.Duration),
			rawOrNil(e.Messages), rawOrNil(e.Metrics), emptyNil(string(e.Recording)), nullStr(consent), msPtr(e.ContentExpiresAt),
			emptyNil(e.Summary), ms(db.now()), e.ID, e.OrgID}
		if e.BootID != "" {
			query, args = query+` AND boot_id = ?`, append(args, e.BootID)
		}
		res, err := db.w(tx).ExecContext(ctx, db.q(query), args...)
		if err != nil {
			return fmt.Errorf("end call %s: %w", e.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var st string
			err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT status FROM calls WHERE id = ? AND org_id = ?`), e.ID, e.OrgID).Scan(&st)
			if errors.Is(err, sql.ErrNoRows) {
				return fault.NotFoundf("call %s not found", e.ID)
			}
			if err != nil {
				return fmt.Errorf("end call %s: %w", e.ID, err)
			}
			return fmt.Errorf("end call %s (%s): %w", e.ID, st, ErrEnded)
		}
		if err := db.insertEvents(ctx, db.w(tx), e.Events); err != nil {
			return err
		}
		if e.InTx != nil {
			if err := e.InTx(ctx, tx); err != nil {
				return err
			}
		}
		if e.Usage != nil {
			return db.bill(ctx, tx, e.Usage, e.EndedAt)
		}
		return nil
	})
}

// bill writes a call's usage log with its figures: what it cost and which
// organization pays (a child organization's parent). The log lowers the
// payer's balance at once (the balance is the stored one minus unsettled
// usage; SettleUsage folds it in later), so ending a call never waits for a
// lock on its organization's row, which every other call's end would want.
func (db *DB) bill(ctx context.Context, tx *sql.Tx, u *UsageLog, at time.Time) error {
	if u.CreatedAt.IsZero() {
		u.CreatedAt = at
	}
	if u.ID == "" {
		u.ID = NewID()
	}
	u.MinutesUsed = BilledMinutes(u.DurationSec)
	// The payer is found by the insert itself: one statement, one round trip.
	var payer string
	err := db.w(tx).QueryRowContext(ctx, db.q(`INSERT INTO usage_logs (`+usageColumns+`)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, COALESCE(parent_id, id), ? FROM organizations WHERE id = ? RETURNING billed_org_id`),
		u.ID, u.OrgID, nullStr(u.CallID), u.DurationSec, u.CallType, u.BYOKSTT, u.BYOKLLM, u.BYOKTTS, nullStr(u.PhoneNumber), nullStr(u.AgentName), nullStr(u.BusinessName),
		u.MinutesUsed, ms(u.CreatedAt), u.OrgID).Scan(&payer)
	if err != nil {
		return fmt.Errorf("bill call %s: %w", deref(u.CallID), err)
	}
	u.BilledOrgID = &payer
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func oneRow(res sql.Result, err error, what, id string) error {
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fault.NotFoundf("call %s not found", id)
	}
	return nil
}

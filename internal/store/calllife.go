package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/parley-voice/parley/internal/call"
	"github.com/parley-voice/parley/internal/fault"
)

// The live-call engine moves a call through its life with these writes.
// Each is scoped by organization like every other query.

// StartCall marks an answered call in progress and queues evs with it.
func (db *DB) StartCall(ctx context.Context, orgID, id string, at time.Time, evs ...OutboxEvent) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE calls SET status = ?, started_at = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			call.StatusInProgress.String(), ms(at), ms(db.now()), id, orgID)
		if err := oneRow(res, err, "start call", id); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, evs)
	})
}

// SetCallStatus moves a call to a non-final status (ringing, say) and
// queues evs with the change.
func (db *DB) SetCallStatus(ctx context.Context, orgID, id string, st call.Status, evs ...OutboxEvent) error {
	if st.Final() {
		return fmt.Errorf("set call status %s: %s is final; use EndCall", id, st)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, db.q(`UPDATE calls SET status = ?, updated_at = ? WHERE id = ? AND org_id = ?`), st.String(), ms(db.now()), id, orgID)
		if err := oneRow(res, err, "set call status", id); err != nil {
			return err
		}
		return db.insertEvents(ctx, tx, evs)
	})
}

// SaveTranscript stores the transcript and turn figures so far; the engine
// calls it as each turn completes, so a crash loses at most the turn in flight.
func (db *DB) SaveTranscript(ctx context.Context, orgID, id string, messages, metrics json.RawMessage) error {
	res, err := db.write.ExecContext(ctx, db.q(`UPDATE calls SET messages = ?, metrics = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
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
	// Usage is written in the same transaction (answered calls are billed).
	Usage *UsageLog
	// Events are queued in the same transaction (status-update, end-of-call-report).
	Events []OutboxEvent
	// Recording is RecordingPending when the call left a recording to upload.
	Recording RecordingState
	// Consent is the caller's recording-consent answer, when asked.
	Consent string
	// ContentExpiresAt, when set, is when the call's content is deleted.
	ContentExpiresAt *time.Time
	// InTx runs inside the transaction after the writes above (the engine
	// queues the call's post-call jobs there), so they commit together.
	InTx TxFunc
}

// TxFunc does more work inside a store transaction, so that it commits or
// rolls back with the store's own writes (a job queued with a state change).
type TxFunc func(ctx context.Context, tx *sql.Tx) error

// EndCall writes a call's final state, its usage log and its webhook events atomically.
func (db *DB) EndCall(ctx context.Context, e CallEnd) error {
	if !e.Status.Final() {
		return fmt.Errorf("end call %s: status %s is not final", e.ID, e.Status)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
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
		res, err := tx.ExecContext(ctx, db.q(`UPDATE calls SET status = ?, end_reason = ?, error = ?, ended_at = ?, duration_seconds = ?,
			messages = COALESCE(?, messages), metrics = COALESCE(?, metrics), recording_state = COALESCE(?, recording_state),
			consent = COALESCE(?, consent), content_expires_at = COALESCE(?, content_expires_at), updated_at = ? WHERE id = ? AND org_id = ?`),
			e.Status.String(), nullStr(reason), nullStr(errS), ms(e.EndedAt), nullInt(e.Duration),
			rawOrNil(e.Messages), rawOrNil(e.Metrics), emptyNil(string(e.Recording)), nullStr(consent), msPtr(e.ContentExpiresAt),
			ms(db.now()), e.ID, e.OrgID)
		if err := oneRow(res, err, "end call", e.ID); err != nil {
			return err
		}
		if e.Usage != nil {
			if e.Usage.CreatedAt.IsZero() {
				e.Usage.CreatedAt = e.EndedAt
			}
			if err := db.insertUsage(ctx, tx, e.Usage); err != nil {
				return err
			}
		}
		if err := db.insertEvents(ctx, tx, e.Events); err != nil {
			return err
		}
		if e.InTx != nil {
			return e.InTx(ctx, tx)
		}
		return nil
	})
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

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

// StartCall marks an answered call in progress.
func (db *DB) StartCall(ctx context.Context, orgID, id string, at time.Time) error {
	res, err := db.write.ExecContext(ctx, db.q(`UPDATE calls SET status = ?, started_at = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
		call.StatusInProgress.String(), ms(at), ms(db.now()), id, orgID)
	return oneRow(res, err, "start call", id)
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
}

// EndCall writes a call's final state and its usage log atomically.
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
		res, err := tx.ExecContext(ctx, db.q(`UPDATE calls SET status = ?, end_reason = ?, error = ?, ended_at = ?, duration_seconds = ?,
			messages = COALESCE(?, messages), metrics = COALESCE(?, metrics), updated_at = ? WHERE id = ? AND org_id = ?`),
			e.Status.String(), nullStr(reason), nullStr(errS), ms(e.EndedAt), nullInt(e.Duration),
			rawOrNil(e.Messages), rawOrNil(e.Metrics), ms(db.now()), e.ID, e.OrgID)
		if err := oneRow(res, err, "end call", e.ID); err != nil {
			return err
		}
		if e.Usage != nil {
			if e.Usage.CreatedAt.IsZero() {
				e.Usage.CreatedAt = e.EndedAt
			}
			return db.insertUsage(ctx, tx, e.Usage)
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

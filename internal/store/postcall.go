package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Post-call work writes its results onto the call row. Each write is one
// statement (or one transaction with the job bookkeeping the caller passes
// as also), so a step that ran is not run again after a crash or a retry.

// SaveSummary stores the call's AI summary.
func (db *DB) SaveSummary(ctx context.Context, orgID, id, summary string) error {
	res, err := db.exec(ctx, db.q(`UPDATE calls SET summary = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
		summary, ms(db.now()), id, orgID)
	return oneRow(res, err, "save summary of call", id)
}

// SaveAnalysis stores the structured analysis: its result (a JSON object),
// or, when it failed, why. Exactly one of result and errMsg is set; the
// other is cleared.
func (db *DB) SaveAnalysis(ctx context.Context, orgID, id string, result json.RawMessage, errMsg string) error {
	var e *string
	if errMsg != "" {
		e, result = &errMsg, nil
	}
	res, err := db.exec(ctx, db.q(`UPDATE calls SET analysis_result = ?, analysis_error = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
		rawOrNil(result), nullStr(e), ms(db.now()), id, orgID)
	return oneRow(res, err, "save analysis of call", id)
}

// FinishRecording records where a call's recording ended up: ready under
// key, or failed (key nil). also runs in the same transaction.
func (db *DB) FinishRecording(ctx context.Context, orgID, id string, state RecordingState, key *string, also TxFunc) error {
	if state != RecordingReady && state != RecordingFailed {
		return fmt.Errorf("finish recording of call %s: state %q is not final", id, state)
	}
	return db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		res, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE calls SET recording_state = ?, recording_key = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			string(state), nullStr(key), ms(db.now()), id, orgID)
		if err := oneRow(res, err, "finish recording of call", id); err != nil {
			return err
		}
		if also != nil {
			return also(ctx, tx)
		}
		return nil
	})
}

// InsertEventOnce queues ev unless an event with its id exists already, and
// reports whether it inserted it. Post-call events use ids derived from the
// call, so a step that runs twice (at-least-once jobs) queues one event. An
// event of a call with Seq 0 is numbered after the call's last event. also
// runs in the same transaction.
func (db *DB) InsertEventOnce(ctx context.Context, ev OutboxEvent, also TxFunc) (bool, error) {
	if ev.ID == "" {
		return false, fmt.Errorf("insert webhook event once: the event needs its id")
	}
	inserted := false
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var n int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhook_outbox WHERE id = ?`), ev.ID).Scan(&n); err != nil {
			return fmt.Errorf("look for webhook event %s: %w", ev.ID, err)
		}
		if n == 0 {
			if err := db.insertEvents(ctx, db.w(tx), []OutboxEvent{ev}); err != nil {
				return err
			}
			inserted = true
		}
		if also != nil {
			return also(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return inserted, nil
}

// ExpiredCall is a call whose content is due for deletion.
type ExpiredCall struct {
	OrgID, ID    string
	RecordingKey *string
}

// ExpiredContent returns up to limit calls whose content expired at or
// before now and still has content to delete, oldest expiry first.
func (db *DB) ExpiredContent(ctx context.Context, now time.Time, limit int) ([]ExpiredCall, error) {
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT org_id, id, recording_key FROM calls
		WHERE content_expires_at IS NOT NULL AND content_expires_at <= ?
		AND (messages IS NOT NULL OR summary IS NOT NULL OR analysis_result IS NOT NULL OR analysis_error IS NOT NULL OR recording_key IS NOT NULL)
		ORDER BY content_expires_at, id LIMIT ?`), ms(now), limit)
	if err != nil {
		return nil, fmt.Errorf("list calls with expired content: %w", err)
	}
	defer rows.Close()
	var out []ExpiredCall
	for rows.Next() {
		var c ExpiredCall
		var key sql.NullString
		if err := rows.Scan(&c.OrgID, &c.ID, &key); err != nil {
			return nil, fmt.Errorf("list calls with expired content: %w", err)
		}
		c.RecordingKey = strPtr(key)
		out = append(out, c)
	}
	return out, rows.Err()
}

// ClearContent deletes a call's content (spec §12.8): transcript, summary,
// analysis and the recording reference. What the call was (who, when, how
// long, how it ended, its latency figures) stays.
func (db *DB) ClearContent(ctx context.Context, orgID, id string) error {
	res, err := db.exec(ctx, db.q(`UPDATE calls SET messages = NULL, summary = NULL, analysis_result = NULL,
		analysis_error = NULL, recording_key = NULL, recording_state = NULL, updated_at = ? WHERE id = ? AND org_id = ?`), ms(db.now()), id, orgID)
	return oneRow(res, err, "clear content of call", id)
}

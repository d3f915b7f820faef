package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/parley-voice/parley/internal/fault"
)

// Retention (spec §7.14, §12.8). An organization's content_retention_days
// and metadata_retention_days say how long after a call ended its content
// (transcript, summary, analysis, recording) and its metadata (the caller's
// number, the campaign link, the webhook events) are kept; NULL keeps them
// for ever. Each call records when each part was purged (content_purged_at,
// metadata_purged_at), so a pass lists only calls it has not finished.
//
// A purge is one transaction and idempotent. It never deletes a webhook
// event that is still pending delivery, and never forgets a recording it
// has not seen deleted: it purges what it can and leaves the call due
// (PurgeDeferred), to be finished by a later pass.
//
// Inbound call ids can hold the caller's number, so the errors of these
// methods never name a call.

// RetentionPolicy is an organization's retention settings, in days; nil
// keeps that part for ever.
type RetentionPolicy struct {
	OrgID        string
	ContentDays  *int
	MetadataDays *int
}

// DueCall is an ended call whose content or metadata is due for purging.
type DueCall struct {
	ID      string
	EndedAt time.Time
	// RecordingKey is the object of the call's recording (ContentDue only):
	// delete it, then pass the key to PurgeContent.
	RecordingKey *string
}

// PurgeOutcome says what a purge did.
type PurgeOutcome int

const (
	// Purged: the part is gone and the call is marked; it is not due again.
	Purged PurgeOutcome = iota + 1
	// PurgeDeferred: what could go went, but something still pending (a
	// webhook event in delivery, a recording upload, a recording that
	// appeared after it was listed) keeps the call due for a later pass.
	PurgeDeferred
	// AlreadyPurged: an earlier (or concurrent) purge finished the call.
	AlreadyPurged
)

func (o PurgeOutcome) String() string {
	switch o {
	case Purged:
		return "purged"
	case PurgeDeferred:
		return "deferred"
	case AlreadyPurged:
		return "already purged"
	}
	return fmt.Sprintf("PurgeOutcome(%d)", int(o))
}

// eventEndOfCallReport is the webhook event whose payload carries the
// call's content (transcript, summary, analysis; spec §9.7).
const eventEndOfCallReport = "end-of-call-report"

// RetentionPolicies returns the organizations with a retention setting (a
// child organization has its own, its parent's does not apply), by id.
func (db *DB) RetentionPolicies(ctx context.Context) ([]RetentionPolicy, error) {
	rows, err := db.read.QueryContext(ctx, `SELECT id, content_retention_days, metadata_retention_days FROM organizations
		WHERE content_retention_days IS NOT NULL OR metadata_retention_days IS NOT NULL ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list retention policies: %w", err)
	}
	defer rows.Close()
	var out []RetentionPolicy
	for rows.Next() {
		var p RetentionPolicy
		var content, metadata sql.NullInt64
		if err := rows.Scan(&p.OrgID, &content, &metadata); err != nil {
			return nil, fmt.Errorf("list retention policies: %w", err)
		}
		p.ContentDays, p.MetadataDays = intPtr(content), intPtr(metadata)
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list retention policies: %w", err)
	}
	return out, nil
}

// ContentDue returns up to limit of the organization's calls that ended at
// or before before and whose content is not purged yet, in (EndedAt, ID)
// order, starting after the call after (the zero DueCall: from the start).
// Pass the last call of a page to get the next; a deferred call stays due,
// so paging by position rather than by purge state ends a pass.
func (db *DB) ContentDue(ctx context.Context, orgID string, before time.Time, after DueCall, limit int) ([]DueCall, error) {
	return db.due(ctx, "content", `SELECT id, ended_at, recording_key FROM calls
		WHERE org_id = ? AND content_purged_at IS NULL AND ended_at IS NOT NULL AND ended_at <= ?
		AND ended_at >= ? AND (ended_at > ? OR id > ?)
		ORDER BY ended_at, id LIMIT ?`, orgID, before, after, limit)
}

// MetadataDue is ContentDue for the calls whose metadata is not purged yet.
func (db *DB) MetadataDue(ctx context.Context, orgID string, before time.Time, after DueCall, limit int) ([]DueCall, error) {
	return db.due(ctx, "metadata", `SELECT id, ended_at, NULL FROM calls
		WHERE org_id = ? AND metadata_purged_at IS NULL AND ended_at IS NOT NULL AND ended_at <= ?
		AND ended_at >= ? AND (ended_at > ? OR id > ?)
		ORDER BY ended_at, id LIMIT ?`, orgID, before, after, limit)
}

func (db *DB) due(ctx context.Context, what, query, orgID string, before time.Time, after DueCall, limit int) ([]DueCall, error) {
	if limit <= 0 {
		return nil, nil
	}
	from := int64(math.MinInt64)
	if !after.EndedAt.IsZero() || after.ID != "" {
		from = ms(after.EndedAt)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query), orgID, ms(before), from, from, after.ID, limit)
	if err != nil {
		return nil, fmt.Errorf("list calls with %s due for purging: %w", what, err)
	}
	defer rows.Close()
	var out []DueCall
	for rows.Next() {
		var c DueCall
		var ended int64
		var key sql.NullString
		if err := rows.Scan(&c.ID, &ended, &key); err != nil {
			return nil, fmt.Errorf("list calls with %s due for purging: %w", what, err)
		}
		c.EndedAt, c.RecordingKey = fromMS(ended), strPtr(key)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list calls with %s due for purging: %w", what, err)
	}
	return out, nil
}

// errNoEndedCall is what a purge of a missing call, another organization's
// call or a call still live answers.
func errNoEndedCall() error { return fault.NotFoundf("no such ended call") }

// PurgeContent deletes an ended call's content: transcript, summary,
// analysis result and error, the recording reference and its state, and the
// call's end-of-call-report webhook events (their payload holds the
// transcript) that are delivered or failed. What the call was (who, when,
// how long, how it ended, its latency figures) stays.
//
// deletedKey is the recording object the caller deleted from the blob store
// (nil: none). The recording reference is cleared only when it is that key
// (or none) and no upload is pending; otherwise it stays and the call stays
// due (PurgeDeferred), so a recording is never forgotten while stored. So is
// a call whose end-of-call report is still pending delivery.
func (db *DB) PurgeContent(ctx context.Context, orgID, id string, deletedKey *string) (PurgeOutcome, error) {
	var out PurgeOutcome
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var key, state sql.NullString
		var purged sql.NullInt64
		err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT recording_key, recording_state, content_purged_at FROM calls
			WHERE id = ? AND org_id = ? AND ended_at IS NOT NULL`), id, orgID).Scan(&key, &state, &purged)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoEndedCall()
		}
		if err != nil {
			return fmt.Errorf("purge content: read the call: %w", err)
		}
		if purged.Valid {
			out = AlreadyPurged
			return nil
		}
		now := ms(db.now())
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM webhook_outbox WHERE org_id = ? AND call_id = ? AND event_type = ?
			AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)`), orgID, id, eventEndOfCallReport); err != nil {
			return fmt.Errorf("purge content: delete delivered end-of-call reports: %w", err)
		}
		var pending int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhook_outbox WHERE org_id = ? AND call_id = ? AND event_type = ?`),
			orgID, id, eventEndOfCallReport).Scan(&pending); err != nil {
			return fmt.Errorf("purge content: count pending end-of-call reports: %w", err)
		}
		recordingGone := (!key.Valid || (deletedKey != nil && key.String == *deletedKey)) && state.String != string(RecordingPending)
		done := recordingGone && pending == 0
		var mark any
		if done {
			mark = now
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE calls SET messages = NULL, summary = NULL, analysis_result = NULL, analysis_error = NULL,
			recording_url = NULL,
			recording_key = CASE WHEN ? THEN NULL ELSE recording_key END,
			recording_state = CASE WHEN ? THEN NULL ELSE recording_state END,
			content_purged_at = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			recordingGone, recordingGone, mark, now, id, orgID); err != nil {
			return fmt.Errorf("purge content: clear the call: %w", err)
		}
		out = PurgeDeferred
		if done {
			out = Purged
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return out, nil
}

// PurgeMetadata deletes an ended call's metadata: the caller's number, the
// link from its campaign lead, and its webhook events (and their delivery
// attempts) that are delivered or failed. An event still pending delivery
// stays, with its attempts, and keeps the call due (PurgeDeferred) until a
// later pass finds it finished.
func (db *DB) PurgeMetadata(ctx context.Context, orgID, id string) (PurgeOutcome, error) {
	var out PurgeOutcome
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		var purged sql.NullInt64
		err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT metadata_purged_at FROM calls WHERE id = ? AND org_id = ? AND ended_at IS NOT NULL`),
			id, orgID).Scan(&purged)
		if errors.Is(err, sql.ErrNoRows) {
			return errNoEndedCall()
		}
		if err != nil {
			return fmt.Errorf("purge metadata: read the call: %w", err)
		}
		if purged.Valid {
			out = AlreadyPurged
			return nil
		}
		now := ms(db.now())
		if _, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE campaign_leads SET call_id = NULL, updated_at = ? WHERE org_id = ? AND call_id = ?`),
			now, orgID, id); err != nil {
			return fmt.Errorf("purge metadata: unlink the campaign lead: %w", err)
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM webhook_deliveries WHERE org_id = ? AND call_id = ?
			AND event_id NOT IN (SELECT id FROM webhook_outbox WHERE org_id = ? AND call_id = ? AND delivered_at IS NULL AND failed_at IS NULL)`),
			orgID, id, orgID, id); err != nil {
			return fmt.Errorf("purge metadata: delete webhook delivery attempts: %w", err)
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`DELETE FROM webhook_outbox WHERE org_id = ? AND call_id = ?
			AND (delivered_at IS NOT NULL OR failed_at IS NOT NULL)`), orgID, id); err != nil {
			return fmt.Errorf("purge metadata: delete webhook events: %w", err)
		}
		var pending int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM webhook_outbox WHERE org_id = ? AND call_id = ?`), orgID, id).Scan(&pending); err != nil {
			return fmt.Errorf("purge metadata: count pending webhook events: %w", err)
		}
		var mark any
		if pending == 0 {
			mark = now
		}
		if _, err := db.w(tx).ExecContext(ctx, db.q(`UPDATE calls SET caller_phone = NULL, metadata_purged_at = ?, updated_at = ? WHERE id = ? AND org_id = ?`),
			mark, now, id, orgID); err != nil {
			return fmt.Errorf("purge metadata: clear the call: %w", err)
		}
		out = PurgeDeferred
		if pending == 0 {
			out = Purged
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return out, nil
}

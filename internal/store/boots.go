package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// A boot is one process life of a node: it starts when `parley serve`
// starts and is over when the process stops, cleanly (StopBoot) or not (its
// heartbeat goes stale, or the same node starts again). Calls name the boot
// that runs them, so the live calls of a boot that is over are orphans that
// nothing will ever end unless crash recovery does.

// Boot is one process life of a node.
type Boot struct {
	ID          string
	NodeID      string
	StartedAt   time.Time
	HeartbeatAt time.Time
	StoppedAt   *time.Time
}

// StartBoot records that node starts a new life and returns its id.
func (db *DB) StartBoot(ctx context.Context, nodeID string) (*Boot, error) {
	now := db.now().UTC().Truncate(time.Millisecond)
	b := &Boot{ID: NewID(), NodeID: nodeID, StartedAt: now, HeartbeatAt: now}
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		// A node's lives are ordered by their start: a later life starts
		// at least a millisecond after the one before, clock or not.
		var last sql.NullInt64
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT MAX(started_at) FROM node_boots WHERE node_id = ?`), nodeID).Scan(&last); err != nil {
			return err
		}
		if last.Valid && last.Int64 >= ms(b.StartedAt) {
			b.StartedAt = fromMS(last.Int64 + 1)
		}
		_, err := db.w(tx).ExecContext(ctx, db.q(`INSERT INTO node_boots (id, node_id, started_at, heartbeat_at) VALUES (?, ?, ?, ?)`), b.ID, nodeID, ms(b.StartedAt), ms(now))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("record the start of node %s: %w", nodeID, err)
	}
	return b, nil
}

// Heartbeat records that a boot is still alive.
func (db *DB) Heartbeat(ctx context.Context, bootID string) error {
	_, err := db.exec(ctx, db.q(`UPDATE node_boots SET heartbeat_at = ? WHERE id = ?`), ms(db.now()), bootID)
	if err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// StopBoot records that a boot ended cleanly.
func (db *DB) StopBoot(ctx context.Context, bootID string) error {
	now := ms(db.now())
	_, err := db.exec(ctx, db.q(`UPDATE node_boots SET heartbeat_at = ?, stopped_at = ? WHERE id = ?`), now, now, bootID)
	if err != nil {
		return fmt.Errorf("record the stop of boot %s: %w", bootID, err)
	}
	return nil
}

// BootsOver returns the boots that are over and still own live calls: those
// stopped, those whose heartbeat is older than staleBefore, and those whose
// node started again since. nodeID, when not empty, keeps only that node's.
func (db *DB) BootsOver(ctx context.Context, staleBefore time.Time, nodeID string) ([]Boot, error) {
	query := `SELECT b.id, b.node_id, b.started_at, b.heartbeat_at, b.stopped_at FROM node_boots b
		WHERE (b.stopped_at IS NOT NULL OR b.heartbeat_at < ?
			OR EXISTS (SELECT 1 FROM node_boots n WHERE n.node_id = b.node_id AND n.started_at > b.started_at))
		AND EXISTS (SELECT 1 FROM calls c WHERE c.boot_id = b.id AND c.status IN ` + liveStatuses + `)`
	args := []any{ms(staleBefore)}
	if nodeID != "" {
		query, args = query+` AND b.node_id = ?`, append(args, nodeID)
	}
	rows, err := db.read.QueryContext(ctx, db.q(query+` ORDER BY b.started_at, b.id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list boots that are over: %w", err)
	}
	defer rows.Close()
	var out []Boot
	for rows.Next() {
		var b Boot
		var started, beat int64
		var stopped sql.NullInt64
		if err := rows.Scan(&b.ID, &b.NodeID, &started, &beat, &stopped); err != nil {
			return nil, fmt.Errorf("list boots that are over: %w", err)
		}
		b.StartedAt, b.HeartbeatAt, b.StoppedAt = fromMS(started), fromMS(beat), fromNullMS(stopped)
		out = append(out, b)
	}
	return out, rows.Err()
}

// LiveCallsOf returns up to limit live calls run by a boot, oldest first;
// bootID "" returns live calls that name no boot (made before boots were
// recorded).
func (db *DB) LiveCallsOf(ctx context.Context, bootID string, limit int) ([]Call, error) {
	cond, args := `boot_id = ?`, []any{bootID, limit}
	if bootID == "" {
		cond, args = `boot_id IS NULL`, []any{limit}
	}
	rows, err := db.read.QueryContext(ctx, db.q(`SELECT `+callColumns+` FROM calls WHERE `+cond+` AND status IN `+liveStatuses+` ORDER BY created_at, id LIMIT ?`), args...)
	if err != nil {
		return nil, fmt.Errorf("list live calls: %w", err)
	}
	defer rows.Close()
	var out []Call
	for rows.Next() {
		c, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("list live calls: %w", err)
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

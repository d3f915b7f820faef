package store

import (
	"context"
	"fmt"
)

// Scrub rewrites the database files so that values replaced or deleted
// before it are gone from them: on SQLite the WAL is checkpointed, the file
// rebuilt (VACUUM, which drops free pages and free space inside pages) and
// the WAL truncated. PostgreSQL keeps old row versions until its own vacuum
// reuses them, never in a dump; Scrub does nothing there. Run it after
// rewriting secrets that were stored in clear (a one-off at startup: VACUUM
// takes time proportional to the database and blocks writers meanwhile).
func (db *DB) Scrub(ctx context.Context) error {
	if db.drv.Name() != "sqlite" {
		return nil
	}
	for _, q := range []string{`PRAGMA wal_checkpoint(TRUNCATE)`, `VACUUM`, `PRAGMA wal_checkpoint(TRUNCATE)`} {
		if _, err := db.write.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("scrub the database (%s): %w", q, err)
		}
	}
	return nil
}

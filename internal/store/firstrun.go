package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// firstOrgLock is the PostgreSQL advisory lock key that serialises
// CreateFirstOrg across nodes ("parley first org" in ASCII, truncated).
const firstOrgLock int64 = 0x7061726c6579_666f

// CreateFirstOrg creates o (a top-level organization) with its first API key
// only when the store has no organization at all, and reports whether it
// did. Nodes starting at once on one empty PostgreSQL database create one
// organization between them: the check and the insert run in one
// transaction holding a transaction-scoped advisory lock. SQLite has a single
// writer, which serialises them the same way.
func (db *DB) CreateFirstOrg(ctx context.Context, o *Org, key *APIKey) (bool, error) {
	now := db.now()
	created := false
	err := db.tx(ctx, func(ctx context.Context, tx *sql.Tx) error {
		created = false
		if db.Driver() == "postgres" {
			if _, err := db.w(tx).ExecContext(ctx, db.q(`SELECT pg_advisory_xact_lock(?)`), firstOrgLock); err != nil {
				return fmt.Errorf("lock for the first organization: %w", err)
			}
		}
		var n int
		if err := db.w(tx).QueryRowContext(ctx, db.q(`SELECT COUNT(*) FROM organizations`)).Scan(&n); err != nil {
			return fmt.Errorf("count organizations: %w", err)
		}
		if n > 0 {
			return nil
		}
		if o.ID == "" {
			o.ID = NewID()
		}
		o.CreatedAt, o.UpdatedAt = now.UTC().Truncate(time.Millisecond), now.UTC().Truncate(time.Millisecond)
		if err := db.insertOrg(ctx, tx, o, key, now); err != nil {
			return err
		}
		created = true
		return nil
	})
	return created && err == nil, err
}
